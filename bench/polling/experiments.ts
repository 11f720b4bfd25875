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
import {
  DEFAULT_WAIT_POLICIES,
  DELAY_JITTER,
  delayGrowth,
  scheduleDelay,
  type ResolvedWaitPolicy,
} from '../../src/aws/poll-policy.js';
import type { Rng } from '../lib/prng.js';
import type { Strategy, WaitOutcome } from './policies.js';
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
  /**
   * Delay before the first poll, per kind (the library always polls at once; this replaces that
   * first poll, and the policy's `firstDelayMs` then no longer applies).
   */
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
  const growth = config.growthByKind?.[kind] ?? config.growth ?? delayGrowth(kind);
  const schedule = config.schedule ?? librarySchedule;
  const done = doneState(kind);
  const deadline = policy.timeoutMs;
  const initialDelayMs = config.initialDelayMs?.[kind];
  const firstDelayMs = initialDelayMs === undefined ? policy.firstDelayMs : 0;
  let now = Math.min(initialDelayMs ?? 0, deadline);
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
    if (calls === 1 && firstDelayMs > 0) nextDelay = Math.max(nextDelay, firstDelayMs - now);
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

/**
 * EXPERIMENT: the schedule before the stretch cap (ETA_STRETCH_CAP): half the estimated remaining
 * time, bounded by maxDelayMs only.
 * @internal
 */
export function uncappedEtaSchedule(input: ScheduleInput): number {
  const { policy, elapsedMs, etaMs } = input;
  const base = Math.min(policy.maxDelayMs, Math.max(policy.minDelayMs, input.growth * elapsedMs));
  if (etaMs === undefined || !Number.isFinite(etaMs)) return base;
  if (etaMs / 2 >= base) return Math.min(policy.maxDelayMs, etaMs / 2);
  return Math.max(policy.minDelayMs, Math.min(base, etaMs));
}

function withPolicies(
  changes: Partial<Record<SimKind, Partial<ResolvedWaitPolicy>>>,
): Partial<Record<SimKind, ResolvedWaitPolicy>> {
  const out: Partial<Record<SimKind, ResolvedWaitPolicy>> = {};
  for (const [kind, change] of Object.entries(changes) as [SimKind, Partial<ResolvedWaitPolicy>][]) {
    out[kind] = { ...DEFAULT_WAIT_POLICIES[kind], ...change };
  }
  return out;
}

/** The library's defaults before issue 7's tuning (min delays 1 s / 2 s, copies polled from the start). */
const PREVIOUS_POLICIES = withPolicies({
  volumeAvailable: { minDelayMs: 1_000 },
  volumeAttached: { minDelayMs: 1_000 },
  volumeDetached: { minDelayMs: 1_000 },
  snapshotCompleted: { minDelayMs: 2_000 },
  imageAvailable: { minDelayMs: 2_000 },
  copyAvailable: { firstDelayMs: 0 },
});

/**
 * The experimental strategies compared with `--experiments`. Ids start with `x-`; each differs
 * from the library in one named way.
 * @internal
 */
export function experimentStrategies(): Strategy[] {
  return [
    experimentStrategy(
      'x-before-tuning',
      'EXPERIMENT the poller before issue 7 (min delays 1-2 s, uncapped progress stretch, copies polled from 0 s at growth 0.04)',
      {
        schedule: uncappedEtaSchedule,
        policies: PREVIOUS_POLICIES,
        growthByKind: { copyAvailable: 0.04 },
      },
    ),
    experimentStrategy('x-uncapped-eta', 'EXPERIMENT progress stretch not capped by the time waited', {
      schedule: uncappedEtaSchedule,
    }),
    // Looser caps save calls but let a wrong estimate overshoot short snapshots (p99 over 3 s).
    experimentStrategy('x-eta-cap-0.5', 'EXPERIMENT progress stretch capped at 0.5 x elapsed instead of 0.3', {
      schedule: cappedEtaSchedule(0.5),
    }),
    // The copy's lag budget: 0.04 saves calls but sits on the 2 % line.
    experimentStrategy('x-copy-growth-0.04', 'EXPERIMENT copies: growth 0.04 instead of 0.035', {
      growthByKind: { copyAvailable: 0.04 },
    }),
    experimentStrategy(
      'x-copy-first-at-60',
      'EXPERIMENT copies: first poll at 60 s instead of at once + second at 60 s',
      {
        initialDelayMs: { copyAvailable: 60_000 },
      },
    ),
  ];
}
