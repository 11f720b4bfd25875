/**
 * The three ways of waiting compared by the polling benchmark, each run against a simulated
 * resource on a virtual clock:
 * - ours: the library's real `pollUntil` with its default policy per wait, unchanged;
 * - Packer: a fixed delay with the first poll immediate, as aws-sdk-go v1's `request.Waiter`
 *   (used by Packer's SDK waiters and by its own attach/detach loops) does it;
 * - the AWS SDK v3 waiter: a re-implementation of smithy's `runPolling` schedule (see
 *   `sdkV3Delay`), because the real one sleeps on real timers and can't use a virtual clock.
 */
import { pollUntil, type PollClock, type PollVerdict } from '../../src/aws/poll.js';
import { DEFAULT_WAIT_POLICIES, type ResolvedWaitPolicy } from '../../src/aws/poll-policy.js';
import { WaitTimeoutError } from '../../src/errors.js';
import { toCtx } from '../../src/internal/ctx.js';
import type { Rng } from '../lib/prng.js';
import { doneState, type SimKind, type SimState, type Timeline } from './timelines.js';

/**
 * How one wait ended on the virtual clock.
 * @internal
 */
export interface WaitOutcome {
  /** When the poller saw the awaited state, in ms since the wait began; undefined on timeout. */
  readonly detectedAtMs: number | undefined;
  /** Describe calls made. */
  readonly calls: number;
}

/**
 * A waiting strategy under test.
 * @internal
 */
export interface Strategy {
  /** Short id used in JSON and tables. */
  readonly id: string;
  /** What it is, for the table's legend. */
  readonly description: string;
  /** Waits for `timeline` to reach its done state; `rng` feeds any jitter. */
  wait(timeline: Timeline, rng: Rng): Promise<WaitOutcome>;
  /**
   * Describe calls a build makes on the awaited resources outside the waits, because the wait
   * does not hand back what the next step needs. Counted in the per-build totals. @defaultValue 0
   */
  readonly extraCallsPerBuild?: number;
}

/**
 * A clock where sleeping moves time forward at once: a discrete-event loop with a single process,
 * which is all one wait is. Hours of polling replay in microseconds.
 * @internal
 */
export class VirtualClock implements PollClock {
  #now = 0;

  now(): number {
    return this.#now;
  }

  async sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw signal.reason;
    this.#now += Math.max(0, ms);
  }
}

/** A Describe call against the timeline at the clock's current time, counting calls. */
function describer(timeline: Timeline, clock: PollClock): { describe: () => Promise<SimState>; calls: () => number } {
  let calls = 0;
  return {
    describe: async () => {
      calls++;
      return timeline.at(clock.now());
    },
    calls: () => calls,
  };
}

// The library's logger would print warnings to the console; a benchmark has nothing to warn about.
const silentCtx = toCtx({ logger: { warn: () => {}, error: () => {} } });

/**
 * The library's poller, run unchanged. `policy` and `growth` default to the library's own
 * defaults; passing them evaluates alternatives (experiments) with the same code.
 * @internal
 */
export function oursStrategy(
  options: {
    readonly id?: string;
    readonly description?: string;
    readonly policies?: Partial<Readonly<Record<SimKind, ResolvedWaitPolicy>>>;
    readonly growth?: number;
  } = {},
): Strategy {
  return {
    id: options.id ?? 'ours',
    description: options.description ?? 'ami-chroot pollUntil with DEFAULT_WAIT_POLICIES',
    // A copy's wait reads its snapshots for progress, then its image once they are completed: one
    // DescribeImages more than the polls counted on the simulated copy.
    extraCallsPerBuild: 1,
    async wait(timeline, rng) {
      const clock = new VirtualClock();
      const { describe, calls } = describer(timeline, clock);
      const done = doneState(timeline.kind);
      const evaluate = (r: SimState): PollVerdict<true> =>
        r.state === done
          ? { done: true, value: true, state: r.state }
          : r.progress === undefined
            ? { done: false, state: r.state }
            : { done: false, state: r.state, progress: r.progress };
      try {
        await pollUntil({
          describe,
          evaluate,
          waitingFor: `${timeline.kind} (simulated)`,
          id: 'sim-1',
          kind: timeline.kind,
          policy: options.policies?.[timeline.kind] ?? DEFAULT_WAIT_POLICIES[timeline.kind],
          ctx: silentCtx,
          clock,
          random: () => rng.next(),
          ...(options.growth === undefined ? {} : { growth: options.growth }),
        });
        return { detectedAtMs: clock.now(), calls: calls() };
      } catch (error) {
        if (error instanceof WaitTimeoutError) return { detectedAtMs: undefined, calls: calls() };
        throw error;
      }
    },
  };
}

/**
 * Packer's delay and attempts per wait (packer-chroot.md §2): SDK waiters at 15 s x 40 for the
 * volume, Packer's own attach/detach loops at 5 s x 40, and 15 s x 120 for snapshot and images.
 * @internal
 */
export const PACKER_POLICY: Readonly<Record<SimKind, { readonly delayMs: number; readonly maxAttempts: number }>> = {
  volumeAvailable: { delayMs: 15_000, maxAttempts: 40 },
  volumeAttached: { delayMs: 5_000, maxAttempts: 40 },
  volumeDetached: { delayMs: 5_000, maxAttempts: 40 },
  snapshotCompleted: { delayMs: 15_000, maxAttempts: 120 },
  imageAvailable: { delayMs: 15_000, maxAttempts: 120 },
  copyAvailable: { delayMs: 15_000, maxAttempts: 120 },
};

/**
 * aws-sdk-go v1 `request.Waiter.WaitWithContext`: attempt 1 is immediate; after each attempt that
 * is not the last, sleep the constant delay. (The real loop also spends the request's latency
 * between polls; the simulation makes calls instantaneous for every strategy alike.)
 * @internal
 */
export function packerStrategy(): Strategy {
  return {
    id: 'packer',
    description:
      'Packer: fixed delay (volume 15 s, attach/detach 5 s, snapshot/image/copy 15 s), first poll immediate; +1 DescribeImages per copy',
    // StepAMIRegionCopy (common/step_ami_region_copy.go) calls DescribeImages once more after
    // WaitUntilAMIAvailable to read the copy's snapshot ids: the v1 waiter returns no response.
    // Ours takes them from the poll that saw the copy available.
    extraCallsPerBuild: 1,
    async wait(timeline) {
      const { delayMs, maxAttempts } = PACKER_POLICY[timeline.kind];
      const done = doneState(timeline.kind);
      let now = 0;
      for (let attempt = 1; ; attempt++) {
        if (timeline.at(now).state === done) return { detectedAtMs: now, calls: attempt };
        if (attempt === maxAttempts) return { detectedAtMs: undefined, calls: attempt };
        now += delayMs;
      }
    },
  };
}

/**
 * The EC2 waiters' service defaults in `@aws-sdk/client-ec2` (seconds there, ms here).
 * @internal
 */
export const SDK_V3_DEFAULTS = { minDelayMs: 15_000, maxDelayMs: 120_000 } as const;

/**
 * The delay before attempt `attempt` (1-based, counting polls already made) of smithy's waiter
 * (`@smithy/core` client/util-waiter/poller.ts, `exponentialBackoffWithJitter`): up to
 * log2(max/min)+1 attempts, uniform in [min, min(min x 2^(attempt-1), max)]; then exactly max.
 * Near the deadline the delay shrinks so the last poll lands 500 ms before it.
 * @internal
 */
export function sdkV3Delay(args: {
  readonly attempt: number;
  readonly minDelayMs: number;
  readonly maxDelayMs: number;
  readonly nowMs: number;
  readonly deadlineMs: number;
  readonly random: () => number;
}): number {
  const { attempt, minDelayMs, maxDelayMs, nowMs, deadlineMs } = args;
  const ceiling = Math.log(maxDelayMs / minDelayMs) / Math.log(2) + 1;
  if (attempt > ceiling) return maxDelayMs;
  const capped = Math.min(minDelayMs * 2 ** (attempt - 1), maxDelayMs);
  const delay = minDelayMs + args.random() * (capped - minDelayMs);
  if (nowMs + delay > deadlineMs) return Math.max(0, deadlineMs - nowMs - 500);
  return delay;
}

/**
 * A `waitUntil*` waiter of `@aws-sdk/client-ec2` with its defaults (15 s to 120 s) and, as
 * `maxWaitTime` (required, no default), the library's own timeout for the wait.
 * @internal
 */
export function sdkV3Strategy(): Strategy {
  return {
    id: 'sdk-v3',
    description:
      'AWS SDK v3 waiter defaults: first poll immediate, then 15 s, U(15,30), U(15,60), U(15,120), then 120 s',
    async wait(timeline, rng) {
      const done = doneState(timeline.kind);
      const deadlineMs = DEFAULT_WAIT_POLICIES[timeline.kind].timeoutMs;
      let now = 0;
      for (let attempt = 0; ; attempt++) {
        if (attempt > 0) {
          const delay = sdkV3Delay({ attempt, ...SDK_V3_DEFAULTS, nowMs: now, deadlineMs, random: () => rng.next() });
          if (now + delay > deadlineMs) return { detectedAtMs: undefined, calls: attempt };
          now += delay;
        }
        if (timeline.at(now).state === done) return { detectedAtMs: now, calls: attempt + 1 };
      }
    },
  };
}
