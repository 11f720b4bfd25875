/**
 * Mounting a device with the chroot options of a resolved config (buildAmi, buildImage): the
 * templates rendered, the unmount registered on the run's cleanup stack the moment it exists.
 */
import { withPhaseRunner } from '../internal/sub-phases.js';
import { basename } from 'node:path';
import type { CleanupStack, Undo } from '../internal/cleanup-stack.js';
import type { ResolvedConfig, TemplateClock } from '../config/types.js';
import { mountChroot } from '../chroot/mount.js';
import type { MountedChroot } from '../chroot/mount.js';
import type { OperationOptions } from '../types.js';
import type { Run } from './run.js';

/** The chroot options of a resolved config. @internal */
export type ChrootOptions = Pick<
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
>;

/**
 * The partition to mount: the configured one; unset, the whole device (`'0'`) for a paravirtual
 * image, whose filesystem has no partition table (Packer mounts those whole), else `'1'`.
 * `virtualizationType` is the AMI's: `amiVirtualizationType`, else the source's.
 * @internal
 */
export function mountPartitionFor(configured: string | undefined, virtualizationType: string | undefined): string {
  if (configured !== undefined) return configured;
  return virtualizationType === 'paravirtual' ? '0' : '1';
}

/** What mounting needs besides the config: the template clock, the run's undo stack, the journal dir. @internal */
export interface MountContext {
  readonly clock: TemplateClock;
  readonly stack: CleanupStack;
  readonly stateDir: string | false;
  /** The image's virtualization type, for the default partition. @defaultValue hvm */
  readonly virtualizationType?: string | undefined;
}

/**
 * Mounts `device` with the chroot options of a resolved config (mount path, partition, options,
 * pre/post-mount commands, chroot mounts, copy files, service guard, command wrapper) and
 * registers the unmount on `stack` the moment the mount exists.
 * @internal
 */
export async function mountWithConfig(
  cfg: ChrootOptions,
  device: string,
  context: MountContext & { readonly operation: OperationOptions },
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
      mountPartition: mountPartitionFor(cfg.mountPartition, context.virtualizationType),
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
  const unmount = stack.defer(`unmount ${mounted.root}`, (s) => mounted.unmount({ signal: s }), {
    resource: { kind: 'mount', id: mounted.root },
  });
  return { mounted, unmount };
}

/**
 * The `mount` phase of a run: {@link mountWithConfig} inside the hooked step, so the unmount is
 * registered before an `after` hook can fail.
 * @internal
 */
export function mountStep(
  run: Run,
  cfg: ChrootOptions,
  device: string,
  context: MountContext,
): Promise<{ mounted: MountedChroot; unmount: Undo }> {
  return run.step('mount', () =>
    mountWithConfig(cfg, device, {
      ...context,
      // pre-mount, post-mount, chroot-mounts, copy-files and service-guard run as hooked phases.
      operation: withPhaseRunner(run.operation, run.step),
    }),
  );
}
