/**
 * Simulated EC2 resources: what a Describe call would return at any moment of a wait.
 *
 * Durations come from the ranges in issue 7 (volume created in 2-10 s, attached and detached in
 * 1-5 s, snapshot 30-600 s, image available in 5-30 s), region copy 5-900 s (issue 14: short copies). EBS reports
 * snapshot progress unevenly, so snapshots follow one of several shapes, including ones that sit
 * at 0 % and then jump, and ones that sit at 99 % while still pending: an estimate drawn from the
 * progress must never make a poller blind to those.
 */
import type { WaitKind } from '../../src/types.js';
import type { Rng } from '../lib/prng.js';

/**
 * The waits one build makes, in order (the volume is deleted without waiting in a build).
 * @internal
 */
export const BUILD_WAITS = [
  'volumeAvailable',
  'volumeAttached',
  'volumeDetached',
  'snapshotCompleted',
  'imageAvailable',
  'copyAvailable',
] as const satisfies readonly WaitKind[];

/**
 * One of the benchmarked waits.
 * @internal
 */
export type SimKind = (typeof BUILD_WAITS)[number];

/**
 * What a Describe call returns, reduced to what the waits look at.
 * @internal
 */
export interface SimState {
  readonly state: string;
  /** Snapshot progress, an integer percentage as EC2 reports it. */
  readonly progress?: number;
}

/**
 * One resource's life: its state at any time since the wait began, and when it reached the
 * state the wait is for.
 * @internal
 */
export interface Timeline {
  readonly kind: SimKind;
  /** How the state (and progress) moves; see {@link SNAPSHOT_SHAPES}. */
  readonly shape: string;
  /** When the awaited state is reached, in ms since the wait began. */
  readonly doneAtMs: number;
  /** The state a Describe call at `tMs` sees. */
  at(tMs: number): SimState;
}

/**
 * Duration range of each wait, in seconds.
 * @internal
 */
export const DURATION_RANGES_S: Readonly<Record<SimKind, readonly [number, number]>> = {
  volumeAvailable: [2, 10],
  volumeAttached: [1, 5],
  volumeDetached: [1, 5],
  snapshotCompleted: [30, 600],
  imageAvailable: [5, 30],
  // Short copies too (a small image, a nearby region): a copy seen a minute late is a blind wait.
  copyAvailable: [5, 900],
};

/** The state before and at completion of each wait. */
const STATES: Readonly<Record<SimKind, readonly [pending: string, done: string]>> = {
  volumeAvailable: ['creating', 'available'],
  volumeAttached: ['attaching', 'attached'],
  volumeDetached: ['detaching', 'detached'],
  snapshotCompleted: ['pending', 'completed'],
  imageAvailable: ['pending', 'available'],
  copyAvailable: ['pending', 'available'],
};

/**
 * The terminal state of each wait (what `evaluate` treats as done).
 * @internal
 */
export function doneState(kind: SimKind): string {
  return STATES[kind][1];
}

/**
 * How snapshot progress moves, with the share of snapshots that move that way. The shares are
 * judgement, not measurement: enough of each awkward shape that a poller tuned to linear progress
 * shows its lag on the others.
 * - linear: steady from 0 to 99 %;
 * - stepwise: EBS updates the figure every so often, in uneven steps;
 * - zero-until-done: 0 % for the whole wait, then completed (common for small incremental snapshots);
 * - zero-then-jump: 0 % for 30-90 % of the wait, then a jump to 50-99 % and steady to the end;
 * - slow-start: quadratic, most of the progress in the second half;
 * - stall-at-99: steady to 99 % by 60-90 % of the wait, then 99 % until completed.
 * @internal
 */
export const SNAPSHOT_SHAPES = {
  linear: 0.25,
  stepwise: 0.25,
  'zero-until-done': 0.1,
  'zero-then-jump': 0.15,
  'slow-start': 0.15,
  'stall-at-99': 0.1,
} as const;

/**
 * A snapshot progress shape.
 * @internal
 */
export type SnapshotShape = keyof typeof SNAPSHOT_SHAPES;

/**
 * How durations are drawn from their range: `uniform` as the ranges read literally;
 * `log-uniform` weighs short waits more, closer to how EBS times are skewed.
 * @internal
 */
export type DurationDistribution = 'uniform' | 'log-uniform';

/**
 * Samples one timeline of `kind`.
 * @internal
 */
export function sampleTimeline(kind: SimKind, rng: Rng, distribution: DurationDistribution = 'uniform'): Timeline {
  const [minS, maxS] = DURATION_RANGES_S[kind];
  const durationS = distribution === 'uniform' ? rng.uniform(minS, maxS) : rng.logUniform(minS, maxS);
  // Whole milliseconds keep the JSON readable and the arithmetic exact.
  const doneAtMs = Math.round(durationS * 1000);
  const [pending, done] = STATES[kind];
  // A copy's progress is its destination snapshot's, which moves the way a snapshot's does.
  if (kind !== 'snapshotCompleted' && kind !== 'copyAvailable') {
    return {
      kind,
      shape: 'pending-then-done',
      doneAtMs,
      at: (t) => ({ state: t >= doneAtMs ? done : pending }),
    };
  }
  const shape = rng.pick(SNAPSHOT_SHAPES);
  const progress = snapshotProgress(shape, doneAtMs, rng);
  return {
    kind,
    shape,
    doneAtMs,
    at: (t) => (t >= doneAtMs ? { state: done } : { state: pending, progress: progress(t) }),
  };
}

/** Integer percentage in [0, 99] from a fraction of the wait. */
function percent(fraction: number): number {
  return Math.max(0, Math.min(99, Math.floor(fraction * 100)));
}

/**
 * Progress as a function of time (only read before `doneAtMs`), drawing any randomness now so
 * that the function itself is pure.
 */
function snapshotProgress(shape: SnapshotShape, doneAtMs: number, rng: Rng): (t: number) => number {
  switch (shape) {
    case 'linear':
      return (t) => percent(t / doneAtMs);
    case 'stepwise': {
      const steps = rng.int(3, 8);
      const times = Array.from({ length: steps }, () => rng.uniform(0, doneAtMs)).sort((a, b) => a - b);
      // Each update reports roughly where the copy is then, give or take a few points.
      const values: number[] = [];
      for (const time of times) {
        const noisy = percent(time / doneAtMs + rng.uniform(-0.05, 0.05));
        values.push(Math.max(noisy, values[values.length - 1] ?? 0));
      }
      return (t) => {
        let value = 0;
        for (let i = 0; i < times.length && times[i]! <= t; i++) value = values[i]!;
        return value;
      };
    }
    case 'zero-until-done':
      return () => 0;
    case 'zero-then-jump': {
      const jumpAt = doneAtMs * rng.uniform(0.3, 0.9);
      const jumpTo = rng.uniform(0.5, 0.99);
      return (t) => (t < jumpAt ? 0 : percent(jumpTo + ((1 - jumpTo) * (t - jumpAt)) / (doneAtMs - jumpAt)));
    }
    case 'slow-start':
      return (t) => percent((t / doneAtMs) ** 2);
    case 'stall-at-99': {
      const reach99 = doneAtMs * rng.uniform(0.6, 0.9);
      return (t) => percent((0.99 * t) / reach99);
    }
  }
}
