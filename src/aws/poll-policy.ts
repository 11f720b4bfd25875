/**
 * Wait policies: how long each AWS wait may take and how often it polls. The defaults, the
 * Packer-style overrides (`aws_polling`, `AWS_POLL_DELAY_SECONDS`, `AWS_MAX_ATTEMPTS`), and the
 * schedule that turns a policy, the time waited and a progress estimate into the next delay.
 *
 * Pure functions and constants: the poller that applies them lives in `poll.ts`, so benchmarks
 * and experiments can evaluate a schedule without running a wait.
 *
 * @packageDocumentation
 */
import { ConfigError } from '../errors.js';
import type { Logger, PollingConfig, WaitKind, WaitPolicy } from '../types.js';

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
 * long waits. A region copy is polled like the other waits from the start (a small image copied
 * to a nearby region can be done in seconds); its wait reads the progress of the copy's
 * snapshots, which stretches the delays of a long copy, so it costs no more calls than the 60 s
 * hold-off it had before. `firstDelayMs` remains for a wait known to take long.
 *
 * @example
 * ```ts
 * import { defineConfig } from 'ami-chroot';
 * import { DEFAULT_WAIT_POLICIES } from 'ami-chroot/aws';
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
  copyAvailable: { timeoutMs: 2 * 3_600_000, minDelayMs: 1_600, maxDelayMs: 120_000, firstDelayMs: 0 },
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
 * Growth per wait where it differs from {@link DELAY_GROWTH}. Copies: 0.045, because a copy's
 * lag under two minutes is worth less than a snapshot's (the build is done; only the copy is
 * waited for), and the polling benchmark keeps its mean lag under 2 % of the wait with it.
 * @internal
 */
export const DELAY_GROWTH_BY_KIND: Readonly<Partial<Record<WaitKind, number>>> = Object.freeze({
  copyAvailable: 0.045,
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

/** The longest delay a Node timer holds; a longer one fires at once (and the poller would spin). */
const MAX_TIMER_MS = 2_147_483_647;

function checkPositive(path: string, value: number | undefined): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new ConfigError([{ path, value, message: 'must be a positive number of milliseconds (or attempts)' }]);
  }
  checkTimer(path, value);
}

function checkNonNegative(path: string, value: number | undefined): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new ConfigError([{ path, value, message: 'must be 0 or a positive number of milliseconds' }]);
  }
  checkTimer(path, value);
}

function checkTimer(path: string, value: number): void {
  if (path.endsWith('Ms') && value > MAX_TIMER_MS)
    throw new ConfigError([
      { path, value, message: `must be at most ${MAX_TIMER_MS} ms (what a timer can hold, about 24.8 days)` },
    ]);
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
 * import { resolveWaitPolicy } from 'ami-chroot/aws';
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
  if (typeof kind !== 'string' || !Object.hasOwn(DEFAULT_WAIT_POLICIES, kind))
    throw new ConfigError([
      { path: 'kind', value: kind, message: `must be one of ${Object.keys(DEFAULT_WAIT_POLICIES).join(', ')}` },
    ]);
  if (polling !== undefined && (typeof polling !== 'object' || polling === null))
    throw new ConfigError([
      { path: 'polling', value: polling, message: 'must be an object { delayMs, maxAttempts, waits }' },
    ]);
  if (polling?.waits !== undefined && (typeof polling.waits !== 'object' || polling.waits === null))
    throw new ConfigError([
      { path: 'polling.waits', value: polling.waits, message: 'must be an object of wait kinds to policies' },
    ]);
  if (typeof env !== 'object' || env === null)
    throw new ConfigError([{ path: 'env', value: env, message: 'must be an object like process.env' }]);
  const base = DEFAULT_WAIT_POLICIES[kind];
  checkPositive('polling.delayMs', polling?.delayMs);
  checkPositive('polling.maxAttempts', polling?.maxAttempts);
  const perWait: WaitPolicy | undefined =
    polling?.waits && Object.hasOwn(polling.waits, kind) ? polling.waits[kind] : undefined;
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
