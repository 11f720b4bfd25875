/**
 * EXPERIMENTS, not the library's behaviour. Alternative polling schedules evaluated on the same
 * timelines as the real poller, to back proposals for src/aws/poll.ts with numbers.
 * Run with `npx tsx bench/polling.ts --experiments`.
 *
 * Policy and growth changes go through the real `pollUntil` (it accepts both). Changes to the
 * shape of `scheduleDelay` or to the progress estimate need the loop itself, so
 * `experimentalPoll` is a copy of pollUntil's scheduling core (no errors, events or throttling:
 * the simulation has none) with the schedule made pluggable. A unit test checks that, with the
 * library's schedule, it makes exactly the same calls at exactly the same times as pollUntil.
 */
import { DEFAULT_WAIT_POLICIES, DELAY_GROWTH, DELAY_JITTER, scheduleDelay, type ResolvedWaitPolicy } from '../../src/aws/poll.js';
import type { Rng } from '../lib/prng.js';
import { oursStrategy, type Strategy, type WaitOutcome } from './policies.js';
import { doneState, type SimKind, type Timeline } from './timelines.js';

/**
 * What a schedule sees when it picks the next delay.
 * @internal
 */
export interface ScheduleInput {
  readonly kind: SimKind;
  readonly elapsedMs: number;
  readonly policy: ResolvedWaitPolicy;
  readonly growth: number;
  /** Estimated time to completion from progress, when progress moved on this poll. */
  readonly etaMs: number | undefined;
}

/**
 * A variant of the poller.
 * @internal
 */
export interface ExperimentConfig {
  readonly policies?: Partial<Readonly<Record<SimKind, ResolvedWaitPolicy>>>;
  readonly growth?: number;
  /** Growth per kind, over `growth`. */
  readonly growthByKind?: Partial<Readonly<Record<SimKind, number>>>;
  readonly schedule?: (input: ScheduleInput) => number;
  /** Delay before the first poll, per kind. */
  readonly initialDelayMs?: Partial<Readonly<Record<SimKind, number>>>;
}

const librarySchedule = (input: ScheduleInput): number =>
  scheduleDelay({ elapsedMs: input.elapsedMs, policy: input.policy, growth: input.growth, etaMs: input.etaMs });

/**
 * pollUntil's scheduling core with a pluggable schedule (see the module comment).
 * @internal
 */
export function experimentalPoll(timeline: Timeline, rng: Rng, config: ExperimentConfig = {}): WaitOutcome {
  const kind = timeline.kind;
  const policy = config.policies?.[kind] ?? DEFAULT_WAIT_POLICIES[kind];
  const growth = config.growthByKind?.[kind] ?? config.growth ?? DELAY_GROWTH;
  const schedule = config.schedule ?? librarySchedule;
  const done = doneState(kind);
  const deadline = policy.timeoutMs;
  let now = Math.min(config.initialDelayMs?.[kind] ?? 0, deadline);
  let calls = 0;
  let lastProgress: number | undefined;
  let anchor: { t: number; p: number } | undefined;
  for (;;) {
    calls++;
    const seen = timeline.at(now);
    if (seen.state === done) return { detectedAtMs: now, calls };
    let progressMoving = false;
    const progress = seen.progress;
    if (progress !== undefined) {
      if (lastProgress === undefined || progress < lastProgress || (anchor !== undefined && progress === anchor.p)) {
        anchor = { t: now, p: progress };
      } else if (progress > lastProgress) {
        progressMoving = true;
      }
      lastProgress = progress;
    }
    if (now >= deadline) return { detectedAtMs: undefined, calls };
    let etaMs: number | undefined;
    if (progressMoving && anchor !== undefined && lastProgress !== undefined && lastProgress < 100) {
      const rate = (lastProgress - anchor.p) / (now - anchor.t);
      if (rate > 0) etaMs = (100 - lastProgress) / rate;
    }
    let nextDelay = schedule({
      kind,
      elapsedMs: now,
      policy,
      growth,
      etaMs,
    });
    nextDelay *= 1 + DELAY_JITTER * (2 * rng.next() - 1);
    now += Math.max(0, Math.min(nextDelay, deadline - now));
  }
}

/**
 * A strategy running {@link experimentalPoll} with `config`.
 * @internal
 */
export function experimentStrategy(id: string, description: string, config: ExperimentConfig): Strategy {
  return { id, description, wait: async (timeline, rng) => experimentalPoll(timeline, rng, config) };
}

/**
 * EXPERIMENT: trust a progress estimate only as far as the time already waited supports it.
 * The library stretches the delay to half the estimated remaining time, up to maxDelayMs; an
 * estimate taken early, or from an accelerating or stepwise figure, can be several times too
 * long, and the poll then lands long after completion. Here the stretch is capped at `cap` x
 * elapsed, so a wrong estimate costs at most that share of the wait.
 * @internal
 */
export function cappedEtaSchedule(cap: number): (input: ScheduleInput) => number {
  return (input) => {
    const { policy, elapsedMs, etaMs } = input;
    const base = Math.min(policy.maxDelayMs, Math.max(policy.minDelayMs, input.growth * elapsedMs));
    if (etaMs === undefined || !Number.isFinite(etaMs)) return base;
    const stretchCap = Math.max(base, cap * elapsedMs);
    if (etaMs / 2 >= base) return Math.min(policy.maxDelayMs, etaMs / 2, stretchCap);
    return Math.max(policy.minDelayMs, Math.min(base, etaMs));
  };
}

function withPolicies(changes: Partial<Record<SimKind, Partial<ResolvedWaitPolicy>>>): Partial<Record<SimKind, ResolvedWaitPolicy>> {
  const out: Partial<Record<SimKind, ResolvedWaitPolicy>> = {};
  for (const [kind, change] of Object.entries(changes) as [SimKind, Partial<ResolvedWaitPolicy>][]) {
    out[kind] = { ...DEFAULT_WAIT_POLICIES[kind], ...change };
  }
  return out;
}

/**
 * Min delays of 1.6 s: a mean lag of about 0.8 s, safely under 1 s, on every short wait (2 s
 * gives 1.00 s on images and short snapshots), and fewer calls on volume waits than 1 s.
 * (1.8 s for snapshots saves 3 calls per build but leaves short snapshots at 0.95-0.97 s.)
 */
const MIN_DELAYS = withPolicies({
  volumeAvailable: { minDelayMs: 1_600 },
  volumeAttached: { minDelayMs: 1_600 },
  volumeDetached: { minDelayMs: 1_600 },
  snapshotCompleted: { minDelayMs: 1_600 },
  imageAvailable: { minDelayMs: 1_600 },
});

/**
 * The experimental strategies compared with `--experiments`. Ids start with `x-`. Each changes
 * one thing, then `x-proposed` combines them.
 * @internal
 */
export function experimentStrategies(): Strategy[] {
  return [
    experimentStrategy('x-eta-cap', 'EXPERIMENT progress-based stretch capped at 0.3 x elapsed', { schedule: cappedEtaSchedule(0.3) }),
    oursStrategy({
      id: 'x-min-delays',
      description: 'EXPERIMENT minDelay 1.6 s for volume, attach, detach, snapshot and image',
      policies: MIN_DELAYS,
    }),
    experimentStrategy('x-copy-late', 'EXPERIMENT copies: first poll at 60 s, growth 0.035', {
      initialDelayMs: { copyAvailable: 60_000 },
      growthByKind: { copyAvailable: 0.035 },
    }),
    experimentStrategy('x-proposed', 'EXPERIMENT x-eta-cap + x-min-delays + x-copy-late', {
      schedule: cappedEtaSchedule(0.3),
      policies: MIN_DELAYS,
      initialDelayMs: { copyAvailable: 60_000 },
      growthByKind: { copyAvailable: 0.035 },
    }),
  ];
}
