/**
 * What buildAmi and buildImage share: the hooked phase runner, the platform check, and mounting a
 * device with the chroot options of a resolved config.
 */
import { basename } from 'node:path';
import { UnsupportedPlatformError } from '../errors.js';
import type { Phase } from '../errors.js';
import type { CleanupStack, Undo } from '../internal/cleanup-stack.js';
import type { ResolvedConfig, TemplateClock } from '../config/types.js';
import { mountChroot } from '../chroot/mount.js';
import type { MountedChroot } from '../chroot/mount.js';
import type { OperationOptions } from '../types.js';
import { PhaseTracker } from './phases.js';
import { anySignal } from '../internal/abort.js';
import { toCtx } from '../internal/logger.js';
import type { Ctx } from '../internal/logger.js';

/** Strips undefined values so optional inputs stay absent (exactOptionalPropertyTypes). @internal */
export function defined<T extends object>(o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]?: Exclude<T[K], undefined>;
  };
}

/** Hooks around phases (the public `BuildHooks` shape). @internal */
export interface PhaseHooks {
  readonly before?: (phase: Phase, signal: AbortSignal) => Promise<void> | void;
  readonly after?: (phase: Phase, signal: AbortSignal) => Promise<void> | void;
}

/**
 * A phase runner that calls the user's hooks around each phase. A resource created inside `fn`
 * must register its undo inside `fn` too, so a throwing `after` hook cannot leave it unowned.
 * @internal
 */
export function hookedSteps(phases: PhaseTracker, hooks: PhaseHooks | undefined, signal: AbortSignal) {
  return <T>(phase: Phase, fn: () => Promise<T>): Promise<T> =>
    phases.run(phase, async () => {
      await hooks?.before?.(phase, signal);
      const value = await fn();
      await hooks?.after?.(phase, signal);
      return value;
    });
}

/** Fails before any side effect when the host cannot mount and chroot. @internal */
export function checkPlatform(what: string, needs: string): void {
  if (process.platform !== 'linux') {
    throw new UnsupportedPlatformError(
      `${what} needs Linux (${needs}, mount, chroot); this is ${process.platform}. Run it on a Linux host, as root.`,
      {
        phase: 'validate',
      },
    );
  }
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new UnsupportedPlatformError(
      `${what} needs root for ${needs}, mount and chroot: run it as root (e.g. with sudo).`,
      { phase: 'validate' },
    );
  }
}

/**
 * Mounts `device` with the chroot options of a resolved config (mount path, partition, options,
 * pre/post-mount commands, chroot mounts, copy files, service guard, command wrapper) and
 * registers the unmount on `stack` the moment the mount exists.
 * @internal
 */
export async function mountWithConfig(
  cfg: Pick<
    ResolvedConfig,
    | 'commandWrapper'
    | 'mountPath'
    | 'mountPartition'
    | 'mountOptions'
    | 'preMountCommands'
    | 'postMountCommands'
    | 'chrootMounts'
    | 'copyFiles'
    | 'serviceGuard'
  >,
  device: string,
  context: {
    readonly clock: TemplateClock;
    readonly stack: CleanupStack;
    readonly stateDir: string | false;
    readonly operation: OperationOptions;
  },
): Promise<{ mounted: MountedChroot; unmount: Undo }> {
  const { clock, stack } = context;
  const commandWrapper =
    cfg.commandWrapper.source === '{{.Command}}'
      ? undefined
      : (command: string) => cfg.commandWrapper.render({ Command: command }, clock);
  const mounted = await mountChroot(
    {
      device,
      mountPath: cfg.mountPath.render({ Device: basename(device) }, clock),
      mountPartition: cfg.mountPartition,
      mountOptions: cfg.mountOptions,
      preMountCommands: (d) => cfg.preMountCommands.map((t) => t.render({ Device: d.Device }, clock)),
      postMountCommands: (d) =>
        cfg.postMountCommands.map((t) => t.render({ Device: d.Device, MountPath: d.MountPath }, clock)),
      chrootMounts: cfg.chrootMounts.map((m) => [m.fsType, m.source, m.target] as const),
      copyFiles: cfg.copyFiles,
      serviceGuard: cfg.serviceGuard,
      commandWrapper,
      stateDir: context.stateDir,
    },
    context.operation,
  );
  const unmount = stack.defer(`unmount ${mounted.root}`, (s) => mounted.unmount({ signal: s }));
  return { mounted, unmount };
}

/**
 * The start of a run (buildAmi, buildImage): one internal controller that the caller's signal
 * aborts and `end()` aborts too, so no timer or listener outlives the run; the context and the
 * phase tracker hang off its signal.
 * @internal
 */
export function startRun(options: OperationOptions): {
  readonly ctx: Ctx;
  readonly signal: AbortSignal;
  readonly phases: PhaseTracker;
  readonly end: () => void;
} {
  const internal = new AbortController();
  const signal = anySignal(options.signal, internal.signal)!;
  const ctx: Ctx = { ...toCtx(options), signal };
  return { ctx, signal, phases: new PhaseTracker(ctx), end: () => internal.abort() };
}
