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
 * - uses EC2's progress (snapshots) while it moves steadily: far from the end it waits up to half
 *   the estimated remaining time, but never more than 0.3 x the time already waited (an estimate
 *   read off accelerating or stepwise progress can be several times too long); near the end it
 *   polls at the estimated completion; as soon as progress stalls it falls back to the base
 *   schedule, so a snapshot that sits at 0 % then jumps is still seen quickly;
 * - can hold off after its first poll when a wait is known to take long (region copies: no
 *   second poll before 60 s);
 * - treats `Invalid*.NotFound` right after creation as eventual consistency, backs off on
 *   throttling that outlived the SDK's retries, and fails fast on anything else;
 * - runs on an injectable clock, so benchmarks can replay long waits in virtual time.
 *
 * @packageDocumentation
 */
import { WaitFailedError, WaitTimeoutError, ConfigError } from '../errors.js';
import type { Phase, ResourceRefs } from '../errors.js';
import type { Logger, PollingConfig, WaitKind, WaitPolicy } from '../types.js';
import { sleep, throwIfAborted } from '../internal/abort.js';
import type { Ctx } from '../internal/logger.js';
import { NOT_FOUND_CODES, awsErrorCode, isThrottlingError } from './aws-errors.js';

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

/**
 * A wait policy with every field decided.
 * @public
 */
export interface ResolvedWaitPolicy {
  /** Give up after this long. */
  readonly timeoutMs: number;
  /** Shortest delay between two polls. */
  readonly minDelayMs: number;
  /** Longest delay between two polls (equal to `minDelayMs` for a fixed Packer-style delay). */
  readonly maxDelayMs: number;
  /**
   * Shortest time between the first poll (always made at once) and the second; 0 lets the
   * schedule decide. Never longer than `timeoutMs`.
   */
  readonly firstDelayMs: number;
}

/**
 * Default policy of every wait.
 *
 * @remarks
 * Timeouts are never shorter than Packer's budgets, and longer where Packer's are known to be
 * too short: volume 10 min (Packer 15 s x 40); attach/detach 5 min (Packer 5 s x 40 = 200 s, but
 * attachments taking over 3 min are on record); snapshot and region copy 2 h (Packer 30 min; a
 * first snapshot of a large volume and cross-region copies routinely take longer); image 1 h
 * (Packer 30 min).
 *
 * Min delays of 1.6 s give short waits a mean lag of about 0.8 s (a lag is on average half a
 * delay), safely under a second, for fewer calls than 1 s would cost. Max delays bound the lag on
 * long waits. A region copy takes minutes on EC2 (it copies every snapshot of the image), so
 * after a first poll at once (it finds a copy that is already there, as on a test double, and
 * makes an eventual-consistency miss visible early) the second poll waits until 60 s: polls in
 * the first minute of a copy cannot find it done, they only spend the account's Describe budget.
 *
 * @example
 * ```ts
 * import { DEFAULT_WAIT_POLICIES, defineConfig } from 'ami-chroot';
 *
 * console.log(DEFAULT_WAIT_POLICIES.snapshotCompleted); // { timeoutMs: 7200000, minDelayMs: 1600, maxDelayMs: 120000, firstDelayMs: 0 }
 * // A 2 TiB root volume: twice the default snapshot budget, the rest unchanged.
 * export default defineConfig({
 *   sourceAmi: 'ami-0123456789abcdef0',
 *   amiName: 'data {{timestamp}}',
 *   rootVolumeSize: 2048,
 *   polling: { waits: { snapshotCompleted: { timeoutMs: 2 * DEFAULT_WAIT_POLICIES.snapshotCompleted.timeoutMs } } },
 * });
 * ```
 * @public
 */
export const DEFAULT_WAIT_POLICIES: Readonly<Record<WaitKind, ResolvedWaitPolicy>> = Object.freeze({
  volumeAvailable: { timeoutMs: 10 * 60_000, minDelayMs: 1_600, maxDelayMs: 10_000, firstDelayMs: 0 },
  volumeAttached: { timeoutMs: 5 * 60_000, minDelayMs: 1_600, maxDelayMs: 5_000, firstDelayMs: 0 },
  volumeDetached: { timeoutMs: 5 * 60_000, minDelayMs: 1_600, maxDelayMs: 5_000, firstDelayMs: 0 },
  volumeDeleted: { timeoutMs: 5 * 60_000, minDelayMs: 2_000, maxDelayMs: 10_000, firstDelayMs: 0 },
  snapshotCompleted: { timeoutMs: 2 * 3_600_000, minDelayMs: 1_600, maxDelayMs: 120_000, firstDelayMs: 0 },
  imageAvailable: { timeoutMs: 3_600_000, minDelayMs: 1_600, maxDelayMs: 30_000, firstDelayMs: 0 },
  copyAvailable: { timeoutMs: 2 * 3_600_000, minDelayMs: 2_000, maxDelayMs: 120_000, firstDelayMs: 60_000 },
});

// Packer's per-wait delay, used to turn a bare `maxAttempts` into a time budget the way Packer would.
const PACKER_DELAY_MS: Readonly<Record<WaitKind, number>> = {
  volumeAvailable: 15_000,
  volumeAttached: 5_000,
  volumeDetached: 5_000,
  volumeDeleted: 15_000,
  snapshotCompleted: 15_000,
  imageAvailable: 15_000,
  copyAvailable: 15_000,
};

/** Growth of the delay with time waited: delay = k x elapsed, so the mean lag is about k/2. @internal */
export const DELAY_GROWTH = 0.04;
/**
 * Growth per wait where it differs from {@link DELAY_GROWTH}. Copies: 0.035, because their polls
 * start late (see `firstDelayMs`) and so the lag stays under 2 % of the wait with fewer calls.
 * @internal
 */
export const DELAY_GROWTH_BY_KIND: Readonly<Partial<Record<WaitKind, number>>> = Object.freeze({
  copyAvailable: 0.035,
});
/**
 * The most a progress estimate may stretch a delay, as a share of the time already waited. An
 * estimate taken early, or from progress that accelerates or moves in steps, can be several times
 * too long; with this cap a wrong estimate costs at most 30 % of the wait so far.
 * @internal
 */
export const ETA_STRETCH_CAP = 0.3;
/** Relative jitter applied to every delay (+/-). @internal */
export const DELAY_JITTER = 0.1;
/** How long `Invalid*.NotFound` counts as eventual consistency after creation. @internal */
export const CONSISTENCY_GRACE_MS = 120_000;
/** Upper bound of the backoff after throttling. @internal */
export const THROTTLE_MAX_DELAY_MS = 60_000;

function positiveIntegerFromEnv(
  env: Readonly<Record<string, string | undefined>>,
  name: string,
  logger: Pick<Logger, 'warn'> | undefined,
): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) {
    // Packer ignores a bad value with a log line; so do we, rather than failing a build over it.
    logger?.warn(`Ignoring ${name}=${JSON.stringify(raw)}: expected a positive whole number.`);
    return undefined;
  }
  return value;
}

function checkPositive(path: string, value: number | undefined): void {
  if (value === undefined) return;
  if (!Number.isFinite(value) || value <= 0) {
    throw new ConfigError([{ path, value, message: 'must be a positive number of milliseconds (or attempts)' }]);
  }
}

function checkNonNegative(path: string, value: number | undefined): void {
  if (value === undefined) return;
  if (!Number.isFinite(value) || value < 0) {
    throw new ConfigError([{ path, value, message: 'must be 0 or a positive number of milliseconds' }]);
  }
}

/**
 * Delay growth k of a wait (delay = k x elapsed).
 * @internal
 */
export function delayGrowth(kind: WaitKind): number {
  return DELAY_GROWTH_BY_KIND[kind] ?? DELAY_GROWTH;
}

/**
 * Decides the policy of one wait from the defaults, Packer-style overrides and per-wait settings.
 *
 * @remarks
 * Precedence, field by field: `polling.waits[kind]`, then `polling.delayMs`/`polling.maxAttempts`,
 * then the environment (`AWS_POLL_DELAY_SECONDS`, `AWS_MAX_ATTEMPTS`, and the deprecated
 * `AWS_TIMEOUT_SECONDS` when no attempts are given), then {@link DEFAULT_WAIT_POLICIES}.
 * A delay makes polling fixed (min = max = delay). Delay and attempts together set the timeout
 * to delay x attempts, as in Packer; attempts alone use Packer's delay for that wait (15 s, or 5 s
 * for attach/detach). Unlike Packer, a delay alone never shortens a wait's budget (Packer then
 * drops the snapshot and image waits to 40 attempts). `firstDelayMs` comes from
 * `polling.waits[kind]` or the defaults only (a fixed delay keeps it: set it to 0 to poll at a
 * fixed pace from the start) and is clamped to the timeout.
 *
 * @example
 * ```ts
 * import { resolveWaitPolicy } from 'ami-chroot';
 *
 * // Packer's aws_polling { delay_seconds = 5, max_attempts = 40 } applied to the attach wait:
 * resolveWaitPolicy('volumeAttached', { delayMs: 5_000, maxAttempts: 40 }, {});
 * // => { timeoutMs: 200000, minDelayMs: 5000, maxDelayMs: 5000, firstDelayMs: 0 }
 * resolveWaitPolicy('snapshotCompleted'); // the defaults, unless AWS_POLL_DELAY_SECONDS / AWS_MAX_ATTEMPTS are set
 * // => { timeoutMs: 7200000, minDelayMs: 1600, maxDelayMs: 120000, firstDelayMs: 0 }
 * ```
 * @param kind - the wait
 * @param polling - the `polling` option
 * @param env - environment to read (default `process.env`)
 * @param logger - receives a warning for malformed environment values
 * @throws {@link ConfigError} for a non-positive value in `polling`
 * @public
 */
export function resolveWaitPolicy(
  kind: WaitKind,
  polling?: PollingConfig,
  env: Readonly<Record<string, string | undefined>> = process.env,
  logger?: Pick<Logger, 'warn'>,
): ResolvedWaitPolicy {
  const base = DEFAULT_WAIT_POLICIES[kind];
  checkPositive('polling.delayMs', polling?.delayMs);
  checkPositive('polling.maxAttempts', polling?.maxAttempts);
  const perWait: WaitPolicy | undefined = polling?.waits?.[kind];
  checkPositive(`polling.waits.${kind}.timeoutMs`, perWait?.timeoutMs);
  checkPositive(`polling.waits.${kind}.minDelayMs`, perWait?.minDelayMs);
  checkPositive(`polling.waits.${kind}.maxDelayMs`, perWait?.maxDelayMs);
  checkNonNegative(`polling.waits.${kind}.firstDelayMs`, perWait?.firstDelayMs);

  const envDelaySeconds = positiveIntegerFromEnv(env, 'AWS_POLL_DELAY_SECONDS', logger);
  const envAttempts = positiveIntegerFromEnv(env, 'AWS_MAX_ATTEMPTS', logger);
  const envTimeoutSeconds = positiveIntegerFromEnv(env, 'AWS_TIMEOUT_SECONDS', logger);

  const delayMs = polling?.delayMs ?? (envDelaySeconds === undefined ? undefined : envDelaySeconds * 1000);
  const attempts = polling?.maxAttempts ?? envAttempts;

  let { timeoutMs, minDelayMs, maxDelayMs } = base;
  if (delayMs !== undefined) {
    minDelayMs = delayMs;
    maxDelayMs = delayMs;
  }
  if (attempts !== undefined) {
    timeoutMs = (delayMs ?? PACKER_DELAY_MS[kind]) * attempts;
  } else if (envTimeoutSeconds !== undefined) {
    timeoutMs = envTimeoutSeconds * 1000;
  }

  if (perWait?.timeoutMs !== undefined) timeoutMs = perWait.timeoutMs;
  if (perWait?.minDelayMs !== undefined) minDelayMs = perWait.minDelayMs;
  if (perWait?.maxDelayMs !== undefined) maxDelayMs = perWait.maxDelayMs;
  if (perWait?.minDelayMs !== undefined && perWait.maxDelayMs === undefined)
    maxDelayMs = Math.max(maxDelayMs, minDelayMs);
  if (perWait?.maxDelayMs !== undefined && perWait.minDelayMs === undefined)
    minDelayMs = Math.min(minDelayMs, maxDelayMs);
  if (maxDelayMs < minDelayMs) {
    throw new ConfigError([
      {
        path: `polling.waits.${kind}.maxDelayMs`,
        value: maxDelayMs,
        message: `must not be smaller than minDelayMs (${minDelayMs})`,
      },
    ]);
  }
  const firstDelayMs = Math.min(perWait?.firstDelayMs ?? base.firstDelayMs, timeoutMs);
  return { timeoutMs, minDelayMs, maxDelayMs, firstDelayMs };
}

/**
 * What one Describe response means for a wait: done (with the value to return), still going
 * (with the state and, for snapshots, the percentage), or failed for good.
 * @internal
 */
export type PollVerdict<V> =
  | { readonly done: true; readonly value: V; readonly state?: string }
  | { readonly done: false; readonly state: string; readonly progress?: number }
  | { readonly failed: true; readonly state: string; readonly message: string };

/**
 * Options of {@link pollUntil}.
 * @internal
 */
export interface PollOptions<T, V> {
  /** One Describe call. Receives the abort signal to hand to the SDK. */
  readonly describe: (signal: AbortSignal | undefined) => Promise<T>;
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
 * The delay before the next poll, before jitter.
 * @internal
 */
export function scheduleDelay(args: {
  readonly elapsedMs: number;
  readonly policy: ResolvedWaitPolicy;
  readonly growth?: number;
  /** Estimated time to completion from the progress rate, when progress is moving. */
  readonly etaMs?: number | undefined;
}): number {
  const { policy } = args;
  const base = Math.min(policy.maxDelayMs, Math.max(policy.minDelayMs, (args.growth ?? DELAY_GROWTH) * args.elapsedMs));
  const eta = args.etaMs;
  if (eta === undefined || !Number.isFinite(eta)) return base;
  // Far from the end: half the remaining time (halving towards the estimate costs few calls), but
  // only as far as the time already waited vouches for the estimate.
  if (eta / 2 >= base) return Math.min(policy.maxDelayMs, eta / 2, Math.max(base, ETA_STRETCH_CAP * args.elapsedMs));
  // Close to it: poll when it should be done rather than a whole base delay later.
  return Math.max(policy.minDelayMs, Math.min(base, eta));
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

  for (;;) {
    polls++;
    let nextDelay: number | undefined;
    let progressMoving = false;
    try {
      const response = await options.describe(signal);
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
    }
    // A wait known to be long: nothing to learn from polls before firstDelayMs.
    if (polls === 1 && policy.firstDelayMs > 0) nextDelay = Math.max(nextDelay, policy.firstDelayMs - (now - start));
    // The last poll lands on the deadline, so the whole budget is used.
    const delay = Math.max(0, Math.min(nextDelay, deadline - now));
    logger.debug(
      `Waiting for ${waitingFor}: poll ${polls} saw ${lastState ?? 'nothing yet'}; next in ${Math.round(delay)} ms`,
    );
    await clock.sleep(delay, signal);
  }
}
