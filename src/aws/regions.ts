/**
 * Copying the finished image to other regions, all at once, and undoing the copies that succeeded
 * when any region fails (after every copy has settled).
 *
 * @packageDocumentation
 */
import { inspect } from 'node:util';
import { ec2Sdk } from './sdk.js';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { ConfigError, RegionCopyError, attachCleanupErrors } from '../errors.js';
import type { RegionOutcome } from '../errors.js';
import { cleanupSignal, throwIfAborted } from '../internal/abort.js';
import { toCtx } from '../internal/ctx.js';
import type { Ctx } from '../internal/ctx.js';
import { idempotent } from '../internal/once.js';
import { send } from './call.js';
import { ec2InRegion } from './common.js';
import { copyImageRequest, copyKmsKeyId } from './copy-request.js';
import type { AwsOperationOptions } from './common.js';
import { waitCopyAvailable } from './copy-wait.js';
import { applySharing, describeImage, protectImages, snapshotIdsOf } from './image-settings.js';
import { removeImage } from './image-removal.js';
import type { ImageSharing } from './image-settings.js';
import { messageOf, toError } from '../internal/to-error.js';
import { realClock } from './poll.js';

/**
 * Input of {@link copyToRegions}.
 * @public
 */
export interface CopyToRegionsInput extends ImageSharing {
  /** The image to copy. */
  readonly sourceImageId: string;
  /** Its region (the build region). */
  readonly sourceRegion: string;
  /** Target regions (`amiRegions`); the source region and duplicates are skipped. */
  readonly regions: readonly string[];
  /** Name of the copies (`amiName`). */
  readonly name: string;
  /** Description of the copies. */
  readonly description?: string;
  /** Encrypt the copies (`encryptBoot`); unset keeps the source's encryption. */
  readonly encryptBoot?: boolean;
  /**
   * The build region's KMS key (`kmsKeyId`). A key id or ARN exists in one region only, so it is
   * used in a copy region only when it is region-independent: a multi-region key id (`mrk-…`) or
   * an alias name (`alias/…`). Other regions use their `regionKmsKeyIds` entry, else the
   * account's default EBS key (Packer's rule).
   */
  readonly kmsKeyId?: string;
  /** KMS key per region (`regionKmsKeyIds`); an empty string means the region's default key. */
  readonly regionKmsKeyIds?: Readonly<Record<string, string>>;
  /** Tags for the copies and their snapshots, rendered (`tags`). */
  readonly tags?: Readonly<Record<string, string>>;
  /** Snapshot tags, rendered; they win over `tags` on snapshots (`snapshotTags`). */
  readonly snapshotTags?: Readonly<Record<string, string>>;
  /** Build id; adds the `ami-chroot:build-id` and `ami-chroot:created-by` tags. */
  readonly buildId?: string;
  /** Skip checking the regions with DescribeRegions first (`skipRegionValidation`). @defaultValue false */
  readonly skipRegionValidation?: boolean;
  /** Time-based copy: minutes the copy must complete in (`snapshotCopyDurationMinutes`). */
  readonly snapshotCopyDurationMinutes?: number;
}

/**
 * The copies, by region. `undo()` deregisters every copy and deletes its snapshots (the undo
 * after a later failure); it is idempotent. Disposing it does the same: use `await using` only
 * for copies you mean to throw away.
 * @public
 */
export interface RegionCopies extends AsyncDisposable {
  /** Image id per region. */
  readonly images: Readonly<Record<string, string>>;
  /** Snapshot ids per region. */
  readonly snapshots: Readonly<Record<string, readonly string[]>>;
  /** Deregisters every copy and deletes its snapshots. Never uses the copying call's signal. */
  undo(options?: { readonly signal?: AbortSignal }): Promise<void>;
}

/**
 * Checks that each region exists and is enabled for the account.
 * @throws {@link ConfigError} naming the bad regions and listing the valid ones
 * @internal
 */
export async function validateRegions(
  ec2: EC2Client,
  regions: readonly string[],
  ctx: Ctx,
  region: string,
): Promise<void> {
  const { DescribeRegionsCommand } = await ec2Sdk();
  if (regions.length === 0) return;
  const out = await send(ec2, new DescribeRegionsCommand({}), ctx, { phase: 'copy', region });
  const known = new Set((out.Regions ?? []).map((r) => r.RegionName).filter((r): r is string => typeof r === 'string'));
  const bad = regions.filter((r) => !known.has(r));
  if (bad.length > 0) {
    throw new ConfigError(
      bad.map((r) => ({
        path: 'amiRegions',
        value: r,
        message: `${r} is not a region enabled for this account (enabled: ${[...known].sort().join(', ')}); fix the name, enable the region, or set skipRegionValidation`,
      })),
    );
  }
}

interface Copy {
  readonly region: string;
  imageId?: string;
  snapshotIds?: string[];
  remove?: (signal: AbortSignal) => Promise<void>;
}

/**
 * Copies an image to every region at once, with name, tags (on create), KMS keys, launch and
 * snapshot permissions and deprecation applied in each region.
 *
 * @remarks
 * Unless `skipRegionValidation`, the regions are checked first. If any region fails (or the
 * call is aborted), every copy is allowed to settle, then the copies that exist are removed
 * (unless `keepOnError`), and a {@link RegionCopyError} reports each region's outcome.
 * `options.ec2` must give a client per region (e.g. `clients.ec2`).
 *
 * @example
 * ```ts
 * import { copyToRegions, createAwsClients } from 'ami-chroot/aws';
 *
 * const clients = createAwsClients({ region: 'us-east-1' });
 * const copies = await copyToRegions(
 *   {
 *     sourceImageId: 'ami-0123456789abcdef0',
 *     sourceRegion: 'us-east-1',
 *     regions: ['eu-west-1', 'ap-southeast-2'],
 *     name: 'web 2026-01-01',
 *     encryptBoot: true,
 *     regionKmsKeyIds: { 'eu-west-1': 'alias/images' },
 *   },
 *   { ec2: clients.ec2 }, // a client per region
 * );
 * console.log(copies.images); // { 'eu-west-1': 'ami-0…', 'ap-southeast-2': 'ami-0…' }
 * // If a later step of your pipeline fails: await copies.undo(); (`await using` throws them away at the end of the scope)
 * ```
 * @throws {@link RegionCopyError} one or more regions failed; `outcomes` has them all
 * @throws {@link ConfigError} an unknown region, or a single EC2 client for several regions
 * @public
 */
export async function copyToRegions(input: CopyToRegionsInput, options: AwsOperationOptions): Promise<RegionCopies> {
  const ctx = toCtx(options);
  throwIfAborted(ctx.signal);
  const regions = [...new Set(input.regions)].filter((r) => r !== input.sourceRegion);
  const ec2Of = ec2InRegion(options.ec2, input.sourceRegion);
  if (regions.length === 0) {
    const undo = async (): Promise<void> => {};
    return { images: {}, snapshots: {}, undo, [Symbol.asyncDispose]: undo };
  }
  // A single client cannot serve other regions: say so before any call.
  if (typeof options.ec2 !== 'function') for (const region of regions) ec2Of(region);
  if (!input.skipRegionValidation) await validateRegions(ec2Of(input.sourceRegion), regions, ctx, input.sourceRegion);

  const run: CopyRun = { input, options, ctx, ec2Of, regions };
  const copies: Copy[] = regions.map((region) => ({ region }));
  // Settle every copy before deciding anything: undoing while copies are in flight would strand them.
  const settled: PromiseSettledResult<void>[] = await Promise.allSettled(copies.map((copy) => copyOne(run, copy)));
  const allCopied = !settled.some((r) => r.status === 'rejected');
  if (input.deregistrationProtection?.enabled && allCopied) {
    const images = Object.fromEntries(copies.map((c) => [c.region, c.imageId!]));
    try {
      await protectImages(ec2Of, images, input.deregistrationProtection, ctx);
    } catch (error) {
      settled[0] = { status: 'rejected', reason: error };
    }
  }
  const failures = settled.flatMap((s, i) =>
    s.status === 'rejected' ? [{ copy: copies[i]!, error: s.reason as unknown }] : [],
  );
  if (failures.length > 0) return compensate(run, copies, failures);

  const images: Record<string, string> = {};
  const snapshots: Record<string, string[]> = {};
  for (const c of copies) {
    images[c.region] = c.imageId!;
    snapshots[c.region] = c.snapshotIds ?? [];
  }
  const undoAll = idempotent((signal: AbortSignal) => undoCopies(copies, ctx, signal));
  const handle: RegionCopies = {
    images,
    snapshots,
    undo: (opts = {}) => undoAll(opts.signal ?? cleanupSignal(options.cleanupTimeoutMs ?? 600_000)),
    [Symbol.asyncDispose]: () => handle.undo(),
  };
  return handle;
}

/** What every copy of one copyToRegions call shares. */
interface CopyRun {
  readonly input: CopyToRegionsInput;
  readonly options: AwsOperationOptions;
  readonly ctx: Ctx;
  readonly ec2Of: (region: string) => EC2Client;
  /** The target regions, in the caller's order. */
  readonly regions: readonly string[];
}

/** Copies into one region, waits for the copy and shares it; registers the copy's removal on `copy`. */
async function copyOne(run: CopyRun, copy: Copy): Promise<void> {
  const { input, options, ctx, ec2Of } = run;
  const { CopyImageCommand } = await ec2Sdk();
  const { region } = copy;
  const ec2 = ec2Of(region);
  const kmsKeyId = copyKmsKeyId(input, region);
  if (input.kmsKeyId && !kmsKeyId && input.regionKmsKeyIds?.[region] === undefined)
    ctx.logger.warn(
      `kmsKeyId ${input.kmsKeyId} belongs to ${input.sourceRegion}; the copy in ${region} is encrypted with the account's default EBS key (set regionKmsKeyIds['${region}'] to choose one)`,
    );
  ctx.logger.info(`Copying ${input.sourceImageId} to ${region}`);
  const out = await send(ec2, new CopyImageCommand(copyImageRequest(input, region)), ctx, {
    phase: 'copy',
    region,
    resources: { imageId: input.sourceImageId },
  });
  const imageId = out.ImageId;
  if (!imageId) throw new Error(`CopyImage to ${region} returned no ImageId`);
  copy.imageId = imageId;
  copy.remove = idempotent(async (signal: AbortSignal) => {
    const c: Ctx = { ...ctx, signal };
    const snaps =
      copy.snapshotIds ?? snapshotIdsOf(await describeImage(ec2, imageId, c, region, signal).catch(() => undefined));
    // The copy's snapshots are ours even while it is pending or not yet describable.
    await removeImage(ec2, imageId, snaps, c, region, {
      unprotect: input.deregistrationProtection?.enabled ?? false,
      ownSnapshots: true,
    });
  });
  ctx.emit({ type: 'resource', action: 'created', kind: 'image', id: imageId, region });
  ctx.emit({ type: 'copy', region, imageId, state: 'started' });
  const image = await waitCopyAvailable(ec2, imageId, ctx, region, options, (options.clock ?? realClock).now());
  copy.snapshotIds = snapshotIdsOf(image);
  // Protection comes last, once every region succeeded (below): a protected copy cannot be undone.
  const { deregistrationProtection: _later, ...sharing } = input;
  await applySharing(ec2, imageId, copy.snapshotIds, sharing, ctx, region);
  ctx.emit({ type: 'copy', region, imageId, state: 'available' });
  ctx.logger.info(`Copy ${imageId} is available in ${region}`);
}

/** Removes every copy that exists, all at once; throws the failures together. */
async function undoCopies(copies: readonly Copy[], ctx: Ctx, signal: AbortSignal): Promise<void> {
  const errors: Error[] = [];
  await Promise.all(
    copies.map(async (copy) => {
      if (!copy.remove) return;
      try {
        await copy.remove(signal);
        ctx.emit({
          type: 'copy',
          region: copy.region,
          ...(copy.imageId ? { imageId: copy.imageId } : {}),
          state: 'undone',
        });
      } catch (error) {
        errors.push(
          new Error(`remove copy ${copy.imageId ?? '?'} in ${copy.region}: ${messageOf(error)}`, { cause: error }),
        );
      }
    }),
  );
  if (errors.length > 0) throw new AggregateError(errors, errors.map((e) => e.message).join('; '));
}

/**
 * After a failed copy: removes every copy that exists, failed ones included (unless keepOnError),
 * then throws a RegionCopyError reporting every region.
 */
async function compensate(
  run: CopyRun,
  copies: readonly Copy[],
  failures: readonly { copy: Copy; error: unknown }[],
): Promise<never> {
  const { input, options, ctx, regions } = run;
  const outcomes: RegionOutcome[] = [];
  const cleanupErrors: Error[] = [];
  const failedRegions = new Map(failures.map((f) => [f.copy.region, f.error]));
  await Promise.all(
    copies.map(async (copy) => {
      const failure = failedRegions.get(copy.region);
      const error =
        failure === undefined ? undefined : failure instanceof Error ? failure : new Error(inspect(failure));
      const base = {
        region: copy.region,
        ...(copy.imageId ? { imageId: copy.imageId } : {}),
        ...(error ? { error } : {}),
      };
      if (error)
        ctx.emit({
          type: 'copy',
          region: copy.region,
          ...(copy.imageId ? { imageId: copy.imageId } : {}),
          state: 'failed',
        });
      if (!copy.remove) {
        outcomes.push({ ...base, status: error ? 'failed' : 'ok' });
        return;
      }
      if (options.keepOnError) {
        outcomes.push({ ...base, status: error ? 'failed' : 'kept' });
        ctx.emit({ type: 'cleanup', step: `remove copy ${copy.imageId} in ${copy.region}`, status: 'skipped' });
        return;
      }
      const step = `remove copy ${copy.imageId} in ${copy.region}`;
      ctx.emit({ type: 'cleanup', step, status: 'start' });
      try {
        await copy.remove(cleanupSignal(options.cleanupTimeoutMs ?? 600_000));
        ctx.emit({ type: 'cleanup', step, status: 'done' });
        ctx.emit({
          type: 'copy',
          region: copy.region,
          ...(copy.imageId ? { imageId: copy.imageId } : {}),
          state: 'undone',
        });
        outcomes.push({ ...base, status: error ? 'failed' : 'undone' });
      } catch (undoError) {
        const e = toError(undoError);
        ctx.emit({ type: 'cleanup', step, status: 'failed', error: e.message });
        cleanupErrors.push(new Error(`${step}: ${e.message}`, { cause: e }));
        outcomes.push({ ...base, status: error ? 'failed' : 'undo-failed' });
      }
    }),
  );
  outcomes.sort((a, b) => regions.indexOf(a.region) - regions.indexOf(b.region));

  if (ctx.signal?.aborted) throw attachCleanupErrors(ctx.signal.reason, cleanupErrors);
  const lines = outcomes.map(
    (o) =>
      `  - ${o.region}: ${o.status}${o.imageId ? ` (${o.imageId})` : ''}${o.error ? `: ${o.error.message.split('\n')[0]}` : ''}`,
  );
  const error = new RegionCopyError(
    `Copying ${input.sourceImageId} failed in ${failures.length} of ${regions.length} region(s)` +
      (options.keepOnError ? '; the copies were kept (keepOnError)' : '; the copies that existed were removed') +
      `:\n${lines.join('\n')}`,
    outcomes,
    { resources: { imageId: input.sourceImageId, region: input.sourceRegion }, cause: failures[0]!.error },
  );
  throw attachCleanupErrors(error, cleanupErrors);
}
