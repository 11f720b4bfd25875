/**
 * Sub-phases of a primitive (mountChroot's pre-mount, snapshotAndRegister's snapshot, ...): run
 * through the build's hooked, timed steps when a build calls it, tracked on their own when called alone.
 */
import type { Phase } from '../errors.js';
import type { Ctx } from './ctx.js';
import { PhaseTracker } from './phases.js';

/** Runs one phase of work. @internal */
export type PhaseRunner = <T>(phase: Phase, fn: () => Promise<T>) => Promise<T>;

// A symbol, not an option: callers of the public API never see or set it.
const RUNNER: unique symbol = Symbol('ami-chroot.phaseRunner');

/** `options` with the build's phase runner attached. @internal */
export function withPhaseRunner<O extends object>(options: O, runner: PhaseRunner): O {
  return { ...options, [RUNNER]: runner };
}

/**
 * The runner attached to `options`, or a tracker of the primitive's own (the same events, logs
 * and error stamps as a build's phases, without hooks).
 * @internal
 */
export function phaseRunnerOf(options: object, ctx: Ctx): PhaseRunner {
  const attached = (options as { [RUNNER]?: PhaseRunner })[RUNNER];
  if (attached) return attached;
  const tracker = new PhaseTracker(ctx);
  return (phase, fn) => tracker.run(phase, fn);
}
