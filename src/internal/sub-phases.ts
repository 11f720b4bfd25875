/**
 * Sub-phases of a primitive (mountChroot's pre-mount, chroot-mounts, ...): run through the
 * build's hooked, timed steps when a build calls it, reported as phase events when called alone.
 */
import type { Phase } from '../errors.js';
import type { Ctx } from './ctx.js';

/** Runs one phase of work. @internal */
export type PhaseRunner = <T>(phase: Phase, fn: () => Promise<T>) => Promise<T>;

// A symbol, not an option: callers of the public API never see or set it.
const RUNNER: unique symbol = Symbol('ami-chroot.phaseRunner');

/** `options` with the build's phase runner attached. @internal */
export function withPhaseRunner<O extends object>(options: O, runner: PhaseRunner): O {
  return { ...options, [RUNNER]: runner };
}

/** The runner attached to `options`, or one that only reports phase-start and phase-end. @internal */
export function phaseRunnerOf(options: object, ctx: Ctx): PhaseRunner {
  const attached = (options as { [RUNNER]?: PhaseRunner })[RUNNER];
  if (attached) return attached;
  return async (phase, fn) => {
    const start = performance.now();
    ctx.emit({ type: 'phase-start', phase });
    let ok = false;
    try {
      const value = await fn();
      ok = true;
      return value;
    } finally {
      ctx.emit({ type: 'phase-end', phase, durationMs: performance.now() - start, ok });
    }
  };
}
