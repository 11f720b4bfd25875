/**
 * What the EBS direct primitives share: the block size, checksums, the EBS client lookup, and the
 * pool that moves blocks in parallel and shrinks its concurrency when EBS throttles.
 *
 * @packageDocumentation
 */
import { createHash } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { EBSClient } from '@aws-sdk/client-ebs';
import { ConfigError } from '../../errors.js';
import { anySignal, sleep, throwIfAborted } from '../../internal/abort.js';
import type { Ctx } from '../../internal/ctx.js';
import { httpStatusOf, isThrottlingError } from '../aws-errors.js';
import type { AwsAccess } from '../clients.js';
import { clientConfig } from '../clients.js';
import { send } from '../call.js';
import type { CallMeta, OutputOf } from '../call.js';
import { ebsSdkNow } from '../sdk.js';

/**
 * The EBS direct APIs' block size: 512 KiB, the only `DataLength` PutSnapshotBlock accepts.
 *
 * @example
 * ```ts
 * import { EBS_BLOCK_SIZE } from 'ami-chroot/aws';
 *
 * // The block holding byte offset 5 GiB of a volume:
 * console.log((5 * 1024 ** 3) / EBS_BLOCK_SIZE); // 10240
 * ```
 * @public
 */
export const EBS_BLOCK_SIZE = 524_288;

/**
 * An EBS client, or a function that returns the client of a region.
 * @public
 */
export type EbsProvider = EBSClient | ((region: string) => EBSClient);

/**
 * The EBS client and region a primitive talks to.
 * @internal
 */
export async function ebsFor(
  provider: EbsProvider,
  region: string | undefined,
): Promise<{ client: EBSClient; region: string }> {
  if (typeof provider === 'function') {
    if (!region)
      throw new ConfigError([{ path: 'region', message: 'a region is needed when ebs is a function of the region' }]);
    return { client: provider(region), region };
  }
  const own = await provider.config.region();
  if (region && region !== own) {
    throw new ConfigError([
      {
        path: 'region',
        value: region,
        message: `the EBS client given talks to ${own}, not ${region}; pass a client for ${region} or a function (region) => EBSClient`,
      },
    ]);
  }
  return { client: provider, region: own };
}

/**
 * An EBS direct client for these access options. It makes one attempt per request: the block pool
 * retries, and it must see throttling to lower its concurrency (SDK retries would hide it).
 *
 * @example
 * ```ts
 * import { createEbsClient } from 'ami-chroot/aws';
 *
 * const ebs = createEbsClient({ region: 'eu-west-1', profile: 'images' });
 * console.log(await ebs.config.region()); // 'eu-west-1'
 * ebs.destroy();
 * ```
 * @param access - the same access options as {@link createAwsClients}; `customEndpointEc2` is not used:
 *   EBS direct is another service with its own endpoint
 * @param endpoint - an EBS direct endpoint (the test EC2 serves both on one port); without it the
 *   SDK's: `AWS_ENDPOINT_URL_EBS`, `AWS_ENDPOINT_URL`, the profile's `services` section, else AWS's
 * @public
 */
export function createEbsClient(access: AwsAccess & { readonly region: string }, endpoint?: string): EBSClient {
  return new (ebsSdkNow().EBSClient)({
    ...clientConfig(access, access.region),
    maxAttempts: 1,
    ...(endpoint === undefined ? {} : { endpoint }),
  });
}

/** Base64 SHA-256 of a block, the form EBS uses in `x-amz-Checksum`. @internal */
export function blockChecksum(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('base64');
}

const ZEROS = new Uint8Array(EBS_BLOCK_SIZE);

/** True when every byte is zero (a memcmp against a zero block; a JS loop is 50x slower). @internal */
export function isZeroBlock(data: Uint8Array): boolean {
  if (data.byteLength > ZEROS.byteLength) return data.every((b) => b === 0);
  return Buffer.compare(data, ZEROS.subarray(0, data.byteLength)) === 0;
}

/** What the pool did. @public */
export interface TransferStats {
  /** Highest number of requests in flight at once. */
  readonly peakConcurrency: number;
  /** Concurrency when the transfer ended. */
  readonly finalConcurrency: number;
  /** Requests EBS throttled (each was retried). */
  readonly throttled: number;
  /** Requests retried after another transient failure (5xx, network, bad checksum). */
  readonly retried: number;
}

/** A failure worth another attempt (beyond throttling). @internal */
export function isTransient(error: unknown): boolean {
  if ((error as { transient?: unknown } | undefined)?.transient === true) return true;
  const status = httpStatusOf(error);
  if (status !== undefined) return status >= 500;
  const message = error instanceof Error ? error.message : '';
  return /ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|socket hang up|timeout/i.test(message);
}

/** Attempts per block: throttling (it resolves itself) gets more than other failures. */
const MAX_THROTTLED_ATTEMPTS = 12;
const MAX_FAILED_ATTEMPTS = 5;

/**
 * Runs `work` on every item with at most `concurrency` in flight. Throttling halves the limit and
 * retries the item after a jittered exponential backoff; a run of successes as long as the limit
 * raises it by one again (additive increase, multiplicative decrease). Other transient failures
 * are retried a few times; anything else stops the pool and is thrown.
 * @internal
 */
export async function runBlockPool<T>(
  items: Iterable<T>,
  work: (item: T, signal: AbortSignal) => Promise<void>,
  options: { readonly concurrency: number; readonly ctx: Ctx; readonly baseDelayMs?: number },
): Promise<TransferStats> {
  throwIfAborted(options.ctx.signal);
  const stop = new AbortController();
  const signal = anySignal(stop.signal, options.ctx.signal) ?? stop.signal;
  // Every request in flight listens to it (the SDK's abortSignal): far more than 10 is normal.
  setMaxListeners(0, signal);
  const iterator = items[Symbol.iterator]();
  const max = Math.max(1, Math.floor(options.concurrency));
  const base = options.baseDelayMs ?? 100;
  let limit = max;
  let active = 0;
  let streak = 0;
  let peak = 0;
  let throttled = 0;
  let retried = 0;
  let exhausted = false;
  let failure: { error: unknown } | undefined;

  return new Promise<TransferStats>((resolve, reject) => {
    const finish = (): void => {
      if (active > 0) return;
      if (failure) reject(failure.error);
      else resolve({ peakConcurrency: peak, finalConcurrency: limit, throttled, retried });
    };
    const fail = (error: unknown): void => {
      failure ??= { error: signal.aborted && options.ctx.signal?.aborted ? options.ctx.signal.reason : error };
      stop.abort(failure.error);
    };
    const attempt = async (item: T): Promise<void> => {
      for (let n = 1; ; n++) {
        try {
          await work(item, signal);
          if (++streak >= limit && limit < max) {
            limit++;
            streak = 0;
          }
          return;
        } catch (error) {
          if (signal.aborted) throw error;
          const throttle = isThrottlingError(error);
          if (!(throttle || isTransient(error)) || n >= (throttle ? MAX_THROTTLED_ATTEMPTS : MAX_FAILED_ATTEMPTS))
            throw error;
          if (throttle) {
            throttled++;
            streak = 0;
            limit = Math.max(1, Math.floor(limit / 2));
          } else retried++;
          const delay = Math.min(5_000, base * 2 ** (n - 1));
          options.ctx.logger.debug(
            `${throttle ? 'Throttled' : 'Transient failure'}; retrying in ~${delay} ms (concurrency ${limit})`,
          );
          await sleep(delay / 2 + Math.random() * (delay / 2), signal);
        }
      }
    };
    const pump = (): void => {
      while (!failure && !exhausted && active < limit) {
        const next = iterator.next();
        if (next.done) {
          exhausted = true;
          break;
        }
        active++;
        peak = Math.max(peak, active);
        attempt(next.value).then(
          () => {
            active--;
            pump();
          },
          (error: unknown) => {
            active--;
            fail(error);
            finish();
          },
        );
      }
      finish();
    };
    pump();
  });
}

/**
 * One EBS direct call outside the block pool (the list calls, StartSnapshot, CompleteSnapshot),
 * retried with a jittered exponential backoff when EBS throttles it: the client makes one attempt
 * per request (see {@link createEbsClient}), so nothing else would. Other transient failures are
 * retried too, unless `idempotent` is false (a StartSnapshot answered 5xx may have started one).
 * @internal
 */
export async function sendEbs<C extends object>(
  client: object,
  command: C,
  ctx: Ctx,
  meta: CallMeta,
  options: { readonly idempotent?: boolean; readonly baseDelayMs?: number } = {},
): Promise<OutputOf<C>> {
  const base = options.baseDelayMs ?? 200;
  for (let n = 1; ; n++) {
    try {
      return await send(client, command, ctx, meta);
    } catch (error) {
      if (ctx.signal?.aborted) throw error;
      const throttle = isThrottlingError(error);
      const again = throttle || (options.idempotent !== false && isTransient(error));
      if (!again || n >= (throttle ? MAX_THROTTLED_ATTEMPTS : MAX_FAILED_ATTEMPTS)) throw error;
      const delay = Math.min(5_000, base * 2 ** (n - 1));
      ctx.logger.debug(`${throttle ? 'Throttled' : 'Transient failure'}; retrying in ~${delay} ms`);
      await sleep(delay / 2 + Math.random() * (delay / 2), ctx.signal);
    }
  }
}
