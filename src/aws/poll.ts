/**
 * The one poller behind every AWS wait (volume available/attached/detached/deleted, snapshot
 * completed, image available, region copies).
 *
 * Why not the SDK's `waitUntil*`: they start at 15 s between polls (a volume ready in 2 s costs
 * 15 s), retry on every error including 403 until the deadline, report no progress, and keep a
 * timer alive after an abort. This poller:
 * - polls on a schedule that grows with the time already waited, `clamp(k x elapsed, min, max)`
 *   with small jitter, so the expected lag stays a small fraction of the wait (about 2 % with
 *   k = 0.04) while short waits keep a sub-second mean lag (minDelay 1.6-2 s);
 * - uses EC2's progress (snapshots, and region copies through their snapshots) while it moves steadily: far from the end it waits up to half
 *   the estimated remaining time, but never more than 0.3 x the time already waited (an estimate
 *   read off accelerating or stepwise progress can be several times too long); near the end it
 *   polls at the estimated completion; as soon as progress stalls it falls back to the base
 *   schedule, so a snapshot that sits at 0 % then jumps is still seen quickly;
 * - can hold off after its first poll when a policy says a wait is known to take long
 *   (`firstDelayMs`; no default wait does);
 * - reads through a process-wide batch (`shared-poller.ts`), so concurrent waits share calls;
 * - treats `Invalid*.NotFound` right after creation as eventual consistency, backs off on
 *   throttling that outlived the SDK's retries, and fails fast on anything else;
 * - runs on an injectable clock, so benchmarks can replay long waits in virtual time.
 *
 * @packageDocumentation
 */
import { WaitFailedError, WaitTimeoutError } from '../errors.js';
import type { Phase, ResourceRefs } from '../errors.js';
import type { WaitKind } from '../types.js';
import { sleep, throwIfAborted } from '../internal/abort.js';
import type { Ctx } from '../internal/ctx.js';
import { NOT_FOUND_CODES, awsErrorCode, isThrottlingError } from './aws-errors.js';
import { DELAY_JITTER, delayGrowth, scheduleDelay } from './poll-policy.js';
import type { ResolvedWaitPolicy } from './poll-policy.js';
import { BATCH_SLACK } from './shared-poller.js';

/**
 * A source of time. The default is the real one (`performance.now()` and an unref'd, abortable
 * timer); benchmarks and tests pass a virtual clock.
 * @internal
 */
export interface PollClock {
  /** Milliseconds on a monotonic scale. */
  now(): number;
  /** Resolves after `ms`, or rejects with `signal.reason` when the signal aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/**
 * The real clock.
 * @internal
 */
export const realClock: PollClock = {
  now: () => performance.now(),
  sleep: (ms, signal) => sleep(ms, signal),
};

/** How long `Invalid*.NotFound` counts as eventual consistency after creation. @internal */
export const CONSISTENCY_GRACE_MS = 120_000;
/** Upper bound of the backoff after throttling. @internal */
export const THROTTLE_MAX_DELAY_MS = 60_000;

/**
 * What one Describe response means for a wait: done (with the value to return), still going
 * (with the state and, for snapshots, the percentage), or failed for good.
 * @internal
 */
export type PollVerdict<V> =
  | { readonly done: true; readonly value: V; readonly state?: string }
  | {
      readonly done: false;
      readonly state: string;
      readonly progress?: number;
      /** The reading that can settle the wait is due this soon: poll no later than that. */
      readonly readAgainInMs?: number;
    }
  | { readonly failed: true; readonly state: string; readonly message: string };

/**
 * Options of {@link pollUntil}.
 * @internal
 */
export interface PollOptions<T, V> {
  /** One Describe call of this wait's own. Receives the abort signal to hand to the SDK. Give this or `read`. */
  readonly describe?: (signal: AbortSignal | undefined) => Promise<T>;
  /**
   * One reading taken `delayMs` from now, or up to `slackMs` earlier when a call shared with
   * other waits is made then (see `shared-poller.ts`). Replaces `describe` plus the sleep before it.
   */
  readonly read?: (delayMs: number, slackMs: number, signal: AbortSignal | undefined) => Promise<T>;
  /** Interprets one response. */
  readonly evaluate: (response: T) => PollVerdict<V>;
  /** What is awaited, for messages: `volume vol-1 to be available`. */
  readonly waitingFor: string;
  /** The resource id, for events. */
  readonly id: string;
  /** The kind of wait (decides the not-found codes and the snapshot-progress events). */
  readonly kind: WaitKind;
  /** The resolved policy (see {@link resolveWaitPolicy}). */
  readonly policy: ResolvedWaitPolicy;
  /** Signal, logger and event sink. */
  readonly ctx: Ctx;
  /** Region, for snapshot-progress events. */
  readonly region?: string;
  /** Phase named by errors. */
  readonly phase?: Phase;
  /** Resources named by errors. */
  readonly resources?: ResourceRefs;
  /** Error codes that mean "not visible yet" right after creation. @defaultValue by kind */
  readonly notFoundCodes?: readonly string[];
  /** How long after `createdAt` those codes are tolerated. @defaultValue 120 000 */
  readonly consistencyGraceMs?: number;
  /** When the resource was created, on `clock`'s scale. @defaultValue the start of the wait */
  readonly createdAt?: number;
  /** Time source. @defaultValue the real clock */
  readonly clock?: PollClock;
  /** Random numbers in [0, 1) for jitter. @defaultValue Math.random */
  readonly random?: () => number;
  /** Delay growth k in delay = k x elapsed. @defaultValue {@link delayGrowth} of `kind` */
  readonly growth?: number;
}

/**
 * The outcome of a successful wait.
 * @internal
 */
export interface PollResult<V> {
  /** The value `evaluate` returned with `done: true`. */
  readonly value: V;
  /** Describe calls made, including throttled and not-found ones. */
  readonly polls: number;
  /** Time waited, on the clock's scale. */
  readonly elapsedMs: number;
}

function defaultNotFoundCodes(kind: WaitKind): readonly string[] {
  switch (kind) {
    case 'volumeAvailable':
    case 'volumeAttached':
    case 'volumeDetached':
    case 'volumeDeleted':
      return [NOT_FOUND_CODES.volume];
    case 'snapshotCompleted':
      return [NOT_FOUND_CODES.snapshot];
    case 'imageAvailable':
    case 'copyAvailable':
      return [NOT_FOUND_CODES.image];
  }
}

function describeState(state: string, progress: number | undefined): string {
  return progress === undefined ? state : `${state} (${progress}%)`;
}

/**
 * Polls `describe` until `evaluate` says done, a failure state is reached, the policy's timeout
 * expires or the signal aborts.
 *
 * @throws {@link WaitTimeoutError} naming `waitingFor`, the limit and the last state
 * @throws {@link WaitFailedError} when `evaluate` reports a failure state
 * @throws the signal's reason on abort; any error `describe` throws that is neither throttling
 *   nor an early not-found, unchanged
 * @internal
 */
export async function pollUntil<T, V>(options: PollOptions<T, V>): Promise<PollResult<V>> {
  const { ctx, policy, waitingFor, id, kind } = options;
  const { signal, logger } = ctx;
  const clock = options.clock ?? realClock;
  const random = options.random ?? Math.random;
  const notFoundCodes = options.notFoundCodes ?? defaultNotFoundCodes(kind);
  const graceMs = options.consistencyGraceMs ?? CONSISTENCY_GRACE_MS;
  const errorOptions = {
    ...(options.phase === undefined ? {} : { phase: options.phase }),
    ...(options.resources === undefined ? {} : { resources: options.resources }),
  };

  throwIfAborted(signal);
  const start = clock.now();
  const deadline = start + policy.timeoutMs;
  const createdAt = options.createdAt ?? start;

  let polls = 0;
  let lastState: string | undefined;
  let lastProgress: number | undefined;
  let reported: string | undefined;
  let throttleStreak = 0;
  // Progress rate estimation: the last sample taken before progress started moving.
  let anchor: { t: number; p: number } | undefined;

  const report = (state: string, progress: number | undefined): void => {
    const label = describeState(state, progress);
    if (label === reported) return;
    if (kind === 'snapshotCompleted' && progress !== undefined && progress !== lastProgress) {
      ctx.emit({ type: 'snapshot-progress', snapshotId: id, region: options.region ?? '', percent: progress });
    }
    reported = label;
    ctx.emit({ type: 'wait', waitingFor, id, state: label, polls, elapsedMs: clock.now() - start });
  };

  const { describe } = options;
  const read =
    options.read ??
    (describe &&
      (async (delayMs: number, _slackMs: number, s: AbortSignal | undefined): Promise<T> => {
        if (delayMs > 0) await clock.sleep(delayMs, s);
        return describe(s);
      }));
  if (!read) throw new TypeError('pollUntil needs describe or read');

  let delay = 0;
  for (;;) {
    polls++;
    let nextDelay: number | undefined;
    let readAgainInMs: number | undefined;
    let progressMoving = false;
    try {
      const response = await read(delay, delay * BATCH_SLACK, signal);
      throttleStreak = 0;
      const verdict = options.evaluate(response);
      if ('failed' in verdict) {
        report(verdict.state, undefined);
        throw new WaitFailedError(
          `${waitingFor} failed: it reached state "${verdict.state}". ${verdict.message}`,
          verdict.state,
          errorOptions,
        );
      }
      if (verdict.done) {
        if (kind === 'snapshotCompleted' && lastProgress !== 100) {
          ctx.emit({ type: 'snapshot-progress', snapshotId: id, region: options.region ?? '', percent: 100 });
          lastProgress = 100;
        }
        report(verdict.state ?? 'done', undefined);
        const elapsedMs = clock.now() - start;
        logger.debug(`Done waiting for ${waitingFor} after ${polls} poll(s), ${Math.round(elapsedMs)} ms`);
        return { value: verdict.value, polls, elapsedMs };
      }
      const now = clock.now();
      const progress = verdict.progress;
      if (progress !== undefined) {
        if (lastProgress === undefined || progress < lastProgress || (anchor !== undefined && progress === anchor.p)) {
          anchor = { t: now, p: progress };
        } else if (progress > lastProgress) {
          progressMoving = true;
        }
      }
      report(verdict.state, progress);
      readAgainInMs = verdict.readAgainInMs;
      lastState = verdict.state;
      if (progress !== undefined) lastProgress = progress;
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (error instanceof WaitFailedError) throw error;
      const code = awsErrorCode(error);
      if (isThrottlingError(error)) {
        throttleStreak++;
        // Own backoff rather than p-retry: it must run on the injected clock and respect the deadline.
        const ceiling = Math.min(THROTTLE_MAX_DELAY_MS, Math.max(policy.minDelayMs, 1_000) * 2 ** throttleStreak);
        nextDelay = ceiling / 2 + (random() * ceiling) / 2;
        logger.warn(
          `EC2 is throttling while waiting for ${waitingFor} (${code ?? 'HTTP 503'}, ${throttleStreak} in a row); ` +
            `backing off ${Math.round(nextDelay)} ms.`,
        );
      } else if (code !== undefined && notFoundCodes.includes(code) && clock.now() - createdAt < graceMs) {
        report('not-visible-yet', undefined);
        lastState ??= 'not-visible-yet';
        logger.debug(`${waitingFor}: ${code} right after creation; EC2 is eventually consistent, polling on.`);
      } else {
        throw error;
      }
    }

    const now = clock.now();
    if (now >= deadline) {
      throw new WaitTimeoutError(
        waitingFor,
        policy.timeoutMs,
        lastState === undefined ? undefined : describeState(lastState, lastProgress),
        errorOptions,
      );
    }
    if (nextDelay === undefined) {
      let etaMs: number | undefined;
      if (progressMoving && anchor !== undefined && lastProgress !== undefined && lastProgress < 100) {
        const rate = (lastProgress - anchor.p) / (now - anchor.t);
        if (rate > 0) etaMs = (100 - lastProgress) / rate;
      }
      const growth = options.growth ?? delayGrowth(kind);
      nextDelay = scheduleDelay({ elapsedMs: now - start, policy, growth, etaMs });
      nextDelay *= 1 + DELAY_JITTER * (2 * random() - 1);
      if (readAgainInMs !== undefined) nextDelay = Math.min(nextDelay, Math.max(0, readAgainInMs));
    }
    // A wait known to be long: nothing to learn from polls before firstDelayMs.
    if (polls === 1 && policy.firstDelayMs > 0) nextDelay = Math.max(nextDelay, policy.firstDelayMs - (now - start));
    // The last poll lands on the deadline, so the whole budget is used.
    delay = Math.max(0, Math.min(nextDelay, deadline - now));
    logger.debug(
      `Waiting for ${waitingFor}: poll ${polls} saw ${lastState ?? 'nothing yet'}; next in ${Math.round(delay)} ms`,
    );
  }
}
