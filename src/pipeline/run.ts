/**
 * The run lifecycle that buildAmi and buildImage share: start (signal, context, hooked phases),
 * the platform check, the provision wrapper, and the failure path (keep or unwind, then rethrow).
 */
import {
  AmiChrootError,
  ProvisionError,
  UnsupportedPlatformError,
  attachCleanupErrors,
  isAbortError,
} from '../errors.js';
import type { Phase, ResourceRefs } from '../errors.js';
import type { CleanupStack } from '../internal/cleanup-stack.js';
import { createChroot } from '../chroot/chroot.js';
import type { Chroot } from '../chroot/chroot.js';
import type { MountedChroot } from '../chroot/mount.js';
import type { OperationOptions } from '../types.js';
import { PhaseTracker, stampPhase } from '../internal/phases.js';
import { anySignal } from '../internal/abort.js';
import { defined } from '../internal/defined.js';
import { toCtx } from '../internal/ctx.js';
import type { Ctx } from '../internal/ctx.js';
import { messageOf } from '../internal/to-error.js';

/** Hooks around phases (the public `BuildHooks` shape). @internal */
export interface PhaseHooks {
  readonly before?: (phase: Phase, signal: AbortSignal) => Promise<void> | void;
  readonly after?: (phase: Phase, signal: AbortSignal) => Promise<void> | void;
}

/** One build run: its signal, context, phase tracker and hooked phase runner. @internal */
export interface Run {
  readonly ctx: Ctx;
  /** Aborted by the caller's signal, and by `end()`. */
  readonly signal: AbortSignal;
  readonly phases: PhaseTracker;
  /** The options every primitive of the run receives (the run's signal, the caller's logger and listener). */
  readonly operation: OperationOptions;
  /**
   * Runs a phase with the user's hooks around it. A resource created inside `fn` must register its
   * undo inside `fn` too, so a throwing `after` hook cannot leave it unowned.
   */
  readonly step: <T>(phase: Phase, fn: () => Promise<T>) => Promise<T>;
  /** Ends the run: no timer or listener of it outlives this. */
  readonly end: () => void;
}

/**
 * The start of a run: one internal controller that the caller's signal aborts and `end()` aborts
 * too; the context, the phase tracker and the hooked steps hang off its signal.
 * @internal
 */
export function startRun(options: OperationOptions & { readonly hooks?: PhaseHooks | undefined }): Run {
  const internal = new AbortController();
  const signal = anySignal(options.signal, internal.signal)!;
  const ctx: Ctx = { ...toCtx(options), signal };
  const phases = new PhaseTracker(ctx);
  const hooks = options.hooks;
  return {
    ctx,
    signal,
    phases,
    operation: { signal, ...defined({ logger: options.logger, onProgress: options.onProgress }) },
    step: (phase, fn) =>
      phases.run(phase, async () => {
        await hooks?.before?.(phase, signal);
        const value = await fn();
        await hooks?.after?.(phase, signal);
        return value;
      }),
    end: () => internal.abort(),
  };
}

/** Fails before any side effect when the host cannot mount and chroot. @internal */
export function checkPlatform(what: string, needs: string): void {
  if (process.platform !== 'linux') {
    throw new UnsupportedPlatformError(
      `${what} needs Linux (${needs}, mount, chroot); this is ${process.platform}. Run it on a Linux host, as root.`,
      { phase: 'validate' },
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
 * The `provision` phase: the user's callback on a chroot of `mounted`. A failure of the user's
 * own code becomes a {@link ProvisionError} naming the resources; library errors and aborts pass.
 * @internal
 */
export function runProvision<I>(
  run: Run,
  mounted: MountedChroot,
  provision: (chroot: Chroot, info: I) => Promise<void> | void,
  info: I,
  resources: ResourceRefs,
): Promise<void> {
  return run.step('provision', async () => {
    const chroot = createChroot(
      { root: mounted.root, env: mounted.env, commandWrapper: mounted.commandWrapper },
      run.operation,
    );
    try {
      await provision(chroot, info);
    } catch (error) {
      if (run.signal.aborted || error instanceof AmiChrootError) throw error;
      throw new ProvisionError(`The provision callback failed: ${messageOf(error)}`, {
        cause: error,
        resources: { ...resources, mountPath: mounted.root },
      });
    }
  });
}

/**
 * The failure path of a run: stamps the phase, then either keeps everything (`keepOnError`, for
 * failures only: an abort means stop and clean up) or unwinds the stack. Returns the error to
 * throw, with the cleanup failures attached.
 * @internal
 */
export async function failRun(run: Run, stack: CleanupStack, error: unknown, keepOnError = false): Promise<unknown> {
  const phase = run.phases.current;
  if (phase) stampPhase(error, phase);
  if (keepOnError && !run.signal.aborted && !isAbortError(error)) {
    const kept = stack.keepAll();
    run.ctx.logger.warn(
      `keepOnError: leaving everything for inspection. Not undone:\n${kept.map((k) => `  - ${k}`).join('\n')}\n` +
        `Run cleanupOrphans() and recoverHost() when done.`,
    );
    run.ctx.emit({ type: 'cleanup', step: `keepOnError: kept ${kept.length} resource(s)`, status: 'skipped' });
    return error;
  }
  // Cleanup runs even (above all) after an abort; each undo has its own time limit.
  const cleanupErrors = await run.phases.run('cleanup', () => stack.unwind('failure'), { checkAbort: false });
  return attachCleanupErrors(error, cleanupErrors);
}
