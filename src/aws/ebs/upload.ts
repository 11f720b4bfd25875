/**
 * `uploadSnapshot`: a local raw image (or only its changed blocks, on top of a parent snapshot)
 * written into a new snapshot through the EBS direct APIs.
 *
 * @packageDocumentation
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { ebsSdk } from '../sdk.js';
import type { EBSClient } from '@aws-sdk/client-ebs';
import { BlockTransferError, ConfigError } from '../../errors.js';
import { cleanupSignal, throwIfAborted } from '../../internal/abort.js';
import { toCtx } from '../../internal/ctx.js';
import type { Ctx } from '../../internal/ctx.js';
import { idempotent } from '../../internal/once.js';
import { send } from '../call.js';
import { ec2For, tagList, undoAfterFailure } from '../common.js';
import type { AwsOperationOptions } from '../common.js';
import { waitSnapshotCompleted } from '../images.js';
import { deleteSnapshot } from '../image-removal.js';
import { EBS_BLOCK_SIZE, blockChecksum, ebsFor, isZeroBlock, runBlockPool, sendEbs } from './blocks.js';
import type { TransferStats } from './blocks.js';
import type { EbsOperationOptions } from './download.js';

const GiB = 1024 ** 3;
const SNAPSHOT_ID = /^snap-[0-9a-f]+$/;

/**
 * Input of {@link uploadSnapshot}.
 * @public
 */
export interface UploadSnapshotInput {
  /** The raw image (a file or a block device) to upload. */
  readonly file: string;
  /** Region. @defaultValue the clients' */
  readonly region?: string;
  /** The new snapshot starts as a copy of this one (same lineage); only `changedBlocks` are written. */
  readonly parentSnapshotId?: string;
  /**
   * Block indexes (512 KiB units) that differ from the parent. Without it every block of the file
   * is considered: zero blocks are skipped, except where the parent has data they must overwrite.
   */
  readonly changedBlocks?: Iterable<number>;
  /** Volume size of the snapshot in GiB. @defaultValue the file's size rounded up to a GiB */
  readonly volumeSizeGiB?: number;
  /** Snapshot description. */
  readonly description?: string;
  /** Snapshot tags, already rendered. */
  readonly tags?: Readonly<Record<string, string>>;
  /** Build id; adds the `ami-chroot:build-id` and `ami-chroot:created-by` tags. */
  readonly buildId?: string;
  /** Encrypt a snapshot that has no parent (with a parent, the parent decides). @defaultValue false */
  readonly encrypted?: boolean;
  /** KMS key ARN for an encrypted snapshot. @defaultValue the account's default EBS key */
  readonly kmsKeyArn?: string;
  /** PutSnapshotBlock requests in flight at most; throttling lowers it for a while. @defaultValue 32 */
  readonly concurrency?: number;
}

/**
 * A completed snapshot written by {@link uploadSnapshot}. `delete()` (and disposing) deletes it.
 * @public
 */
export interface UploadedSnapshot extends AsyncDisposable {
  /** The new snapshot. */
  readonly snapshotId: string;
  /** Region. */
  readonly region: string;
  /** Its volume size in GiB. */
  readonly volumeSizeGiB: number;
  /** Blocks written (the ChangedBlocksCount of CompleteSnapshot). */
  readonly blocksWritten: number;
  /** Bytes written. */
  readonly bytesWritten: number;
  /** Blocks considered but not written (zeros with nothing to overwrite). */
  readonly blocksSkipped: number;
  /** Concurrency and retries of the transfer. */
  readonly transfer: TransferStats;
  /** Deletes the snapshot. Never uses the creating call's signal. */
  delete(options?: { readonly signal?: AbortSignal }): Promise<void>;
}

/**
 * Options of {@link uploadSnapshot}: EBS for the blocks, EC2 to wait for completion and to delete.
 * @public
 */
export type UploadSnapshotOptions = EbsOperationOptions & AwsOperationOptions;

function validate(input: UploadSnapshotInput): void {
  const issues: { path: string; value?: unknown; message: string }[] = [];
  if (typeof input.file !== 'string' || input.file === '') {
    issues.push({ path: 'file', value: input.file, message: 'must be the path of the raw image to upload' });
  }
  if (input.parentSnapshotId !== undefined && !SNAPSHOT_ID.test(input.parentSnapshotId)) {
    issues.push({
      path: 'parentSnapshotId',
      value: input.parentSnapshotId,
      message: 'must be a snapshot id such as snap-0123456789abcdef0',
    });
  }
  if (input.parentSnapshotId !== undefined && input.encrypted !== undefined) {
    issues.push({
      path: 'encrypted',
      value: input.encrypted,
      message: 'cannot be set with parentSnapshotId (EBS rejects both): the parent decides; leave it out',
    });
  }
  if (input.kmsKeyArn !== undefined && input.parentSnapshotId === undefined && input.encrypted !== true) {
    issues.push({
      path: 'kmsKeyArn',
      value: input.kmsKeyArn,
      message: 'needs encrypted: true (or an encrypted parentSnapshotId)',
    });
  }
  if (input.kmsKeyArn !== undefined && !/^arn:aws[a-z-]*:kms:/.test(input.kmsKeyArn)) {
    issues.push({
      path: 'kmsKeyArn',
      value: input.kmsKeyArn,
      message: 'must be a KMS key ARN (arn:aws:kms:region:account:key/...)',
    });
  }
  if (
    input.volumeSizeGiB !== undefined &&
    (!Number.isInteger(input.volumeSizeGiB) || input.volumeSizeGiB < 1 || input.volumeSizeGiB > 65_536)
  ) {
    issues.push({
      path: 'volumeSizeGiB',
      value: input.volumeSizeGiB,
      message: 'must be a whole number of GiB from 1 to 65536',
    });
  }
  if (
    input.concurrency !== undefined &&
    (!Number.isInteger(input.concurrency) || input.concurrency < 1 || input.concurrency > 1024)
  ) {
    issues.push({ path: 'concurrency', value: input.concurrency, message: 'must be a whole number from 1 to 1024' });
  }
  if (issues.length > 0) throw new ConfigError(issues);
}

/**
 * The aggregated checksum CompleteSnapshot takes (`LINEAR`): SHA-256 of the written blocks' own
 * SHA-256 digests (raw bytes, not their Base64), concatenated in ascending block index order.
 * @internal
 */
export function linearChecksum(checksums: ReadonlyMap<number, string>): string {
  const hash = createHash('sha256');
  for (const index of [...checksums.keys()].sort((a, b) => a - b))
    hash.update(Buffer.from(checksums.get(index)!, 'base64'));
  return hash.digest('base64');
}

/** Blocks of the parent that hold data (a zero block written there must overwrite them). */
async function parentBlocks(ebs: EBSClient, parent: string, ctx: Ctx, region: string): Promise<Set<number>> {
  const { ListSnapshotBlocksCommand } = await ebsSdk();
  const blocks = new Set<number>();
  let token: string | undefined;
  do {
    const out = await sendEbs(
      ebs,
      new ListSnapshotBlocksCommand({ SnapshotId: parent, ...(token ? { NextToken: token } : {}) }),
      ctx,
      {
        phase: 'upload',
        region,
        resources: { snapshotId: parent },
      },
    );
    for (const b of out.Blocks ?? []) if (b.BlockIndex !== undefined) blocks.add(b.BlockIndex);
    token = out.NextToken;
  } while (token);
  return blocks;
}

/**
 * Writes a raw image into a new EBS snapshot through the EBS direct APIs and waits until it is
 * completed.
 *
 * @remarks
 * StartSnapshot (tagged on create, with `parentSnapshotId`, encryption), then PutSnapshotBlock for
 * each block to write, in parallel: SHA-256 per block, concurrency halved on throttling and raised
 * again as requests succeed, transient failures retried. Zero blocks are skipped unless they
 * overwrite the parent's data. CompleteSnapshot with the count of blocks written and their
 * aggregated checksum (EBS checks the set it stored against it), then EC2
 * DescribeSnapshots until `completed`. Any failure deletes the new snapshot (unless
 * `keepOnError`). The file is never modified.
 *
 * @example
 * ```ts
 * import { createAwsClients, createEbsClient, uploadSnapshot } from 'ami-chroot/aws';
 *
 * const clients = createAwsClients({ region: 'eu-west-1' });
 * const ebs = createEbsClient({ region: 'eu-west-1' });
 * // Only blocks 12 and 13 changed since the source snapshot:
 * const snapshot = await uploadSnapshot(
 *   { file: '/var/tmp/web.raw', parentSnapshotId: 'snap-0123456789abcdef0', changedBlocks: [12, 13], buildId: 'b-1' },
 *   { ebs, ec2: clients.ec2 },
 * );
 * console.log(snapshot.snapshotId, snapshot.blocksWritten); // snap-0… 2
 * ```
 * @throws {@link ConfigError} bad input (nothing created)
 * @throws {@link BlockTransferError} EBS did not complete the snapshot
 * @throws {@link WaitFailedError} the snapshot went to `error`
 * @throws {@link AwsError} an EBS or EC2 call failed past every retry
 * @public
 */
export async function uploadSnapshot(
  input: UploadSnapshotInput,
  options: UploadSnapshotOptions,
): Promise<UploadedSnapshot> {
  const { CompleteSnapshotCommand, StartSnapshotCommand } = await ebsSdk();
  const ctx = toCtx(options);
  validate(input);
  const handle = await open(input.file, 'r').catch((error: unknown) => {
    throw new ConfigError(
      [{ path: 'file', value: input.file, message: `cannot be read: ${(error as Error).message}` }],
      { cause: error },
    );
  });
  try {
    const size = (await handle.stat()).size;
    const fileGiB = Math.max(1, Math.ceil(size / GiB));
    const volumeSizeGiB = input.volumeSizeGiB ?? fileGiB;
    if (volumeSizeGiB < fileGiB) {
      throw new ConfigError([
        {
          path: 'volumeSizeGiB',
          value: input.volumeSizeGiB,
          message: `is smaller than the file (${fileGiB} GiB); leave it out or raise it`,
        },
      ]);
    }
    const { client: ebs, region } = await ebsFor(options.ebs, input.region);
    const { client: ec2 } = await ec2For(options.ec2, region);
    throwIfAborted(ctx.signal);
    const blockCount = Math.ceil(size / EBS_BLOCK_SIZE);
    const candidates = input.changedBlocks
      ? [...new Set(input.changedBlocks)].filter((i) => Number.isInteger(i) && i >= 0).sort((a, b) => a - b)
      : Array.from({ length: blockCount }, (_, i) => i);
    const outside = candidates.find((i) => i >= blockCount);
    if (outside !== undefined) {
      throw new ConfigError([
        {
          path: 'changedBlocks',
          value: outside,
          message: `block ${outside} is past the end of the file (${blockCount} blocks)`,
        },
      ]);
    }
    // A zero block is written only where it replaces data: a changed block of the parent, or a
    // block the parent has.
    const mustOverwrite = input.parentSnapshotId
      ? input.changedBlocks
        ? new Set(candidates)
        : await parentBlocks(ebs, input.parentSnapshotId, ctx, region)
      : new Set<number>();

    const undo: { name: string; run: (signal: AbortSignal) => Promise<void> }[] = [];
    try {
      const tags = tagList(input.tags, input.buildId);
      const started = await sendEbs(
        ebs,
        new StartSnapshotCommand({
          VolumeSize: volumeSizeGiB,
          ...(input.parentSnapshotId ? { ParentSnapshotId: input.parentSnapshotId } : {}),
          ...(input.encrypted === undefined ? {} : { Encrypted: input.encrypted }),
          ...(input.kmsKeyArn ? { KmsKeyArn: input.kmsKeyArn } : {}),
          ...(input.description ? { Description: input.description } : {}),
          ...(tags.length > 0 ? { Tags: tags } : {}),
        }),
        ctx,
        { phase: 'upload', region, resources: input.parentSnapshotId ? { snapshotId: input.parentSnapshotId } : {} },
        // Throttled means not started; a 5xx may have started one, which a retry would leak.
        { idempotent: false },
      );
      const snapshotId = started.SnapshotId;
      if (!snapshotId) throw new Error('StartSnapshot returned no SnapshotId');
      const createdAt = performance.now();
      ctx.emit({ type: 'resource', action: 'created', kind: 'snapshot', id: snapshotId, region });
      const drop = idempotent((signal: AbortSignal) => deleteSnapshot(ec2, snapshotId, { ...ctx, signal }, region));
      undo.push({ name: `delete snapshot ${snapshotId}`, run: drop });
      if (started.BlockSize !== undefined && started.BlockSize !== EBS_BLOCK_SIZE) {
        throw new BlockTransferError(
          `EBS answered a block size of ${started.BlockSize} for ${snapshotId}; this uploader writes ${EBS_BLOCK_SIZE}-byte blocks. Check the EBS endpoint.`,
          { phase: 'upload', resources: { snapshotId, region } },
        );
      }

      const digests = new Map<number, string>();
      let written = 0;
      let skipped = 0;
      let bytes = 0;
      let considered = 0;
      let lastEmit = 0;
      const emit = (force: boolean): void => {
        const now = performance.now();
        if (!force && now - lastEmit < 250) return;
        lastEmit = now;
        ctx.emit({
          type: 'blocks',
          direction: 'upload',
          snapshotId,
          done: considered,
          total: candidates.length,
          bytes,
        });
      };
      ctx.logger.info(
        `Uploading up to ${candidates.length} block(s) of ${input.file} to ${snapshotId}${input.parentSnapshotId ? ` (parent ${input.parentSnapshotId})` : ''}`,
      );
      const transfer = await runBlockPool(
        candidates,
        async (index, signal) => {
          const { PutSnapshotBlockCommand } = await ebsSdk();
          const data = Buffer.alloc(EBS_BLOCK_SIZE);
          await handle.read(data, 0, EBS_BLOCK_SIZE, index * EBS_BLOCK_SIZE);
          if (isZeroBlock(data) && !mustOverwrite.has(index)) {
            skipped++;
          } else {
            const checksum = blockChecksum(data);
            await send(
              ebs,
              new PutSnapshotBlockCommand({
                SnapshotId: snapshotId,
                BlockIndex: index,
                BlockData: data,
                DataLength: EBS_BLOCK_SIZE,
                Checksum: checksum,
                ChecksumAlgorithm: 'SHA256',
                Progress: Math.floor((100 * considered) / Math.max(1, candidates.length)),
              }),
              ctx,
              { phase: 'upload', region, resources: { snapshotId }, signal },
            );
            digests.set(index, checksum);
            written++;
            bytes += EBS_BLOCK_SIZE;
          }
          considered++;
          emit(false);
        },
        { concurrency: input.concurrency ?? 32, ctx },
      );
      emit(true);
      const completed = await sendEbs(
        ebs,
        new CompleteSnapshotCommand({
          SnapshotId: snapshotId,
          ChangedBlocksCount: written,
          Checksum: linearChecksum(digests),
          ChecksumAlgorithm: 'SHA256',
          ChecksumAggregationMethod: 'LINEAR',
        }),
        ctx,
        {
          phase: 'upload',
          region,
          resources: { snapshotId },
        },
        { idempotent: false },
      );
      if (completed.Status === 'error') {
        throw new BlockTransferError(
          `EBS did not complete ${snapshotId} (status error after ${written} block(s)); the snapshot is deleted. Retry the upload.`,
          { phase: 'upload', resources: { snapshotId, region } },
        );
      }
      await waitSnapshotCompleted(ec2, snapshotId, ctx, region, options, createdAt);
      ctx.logger.info(
        `Snapshot ${snapshotId} completed: ${written} block(s) written, ${skipped} zero block(s) skipped`,
      );
      const remove = (opts: { readonly signal?: AbortSignal } = {}): Promise<void> =>
        drop(opts.signal ?? cleanupSignal(options.cleanupTimeoutMs ?? 600_000));
      return {
        snapshotId,
        region,
        volumeSizeGiB,
        blocksWritten: written,
        bytesWritten: bytes,
        blocksSkipped: skipped,
        transfer,
        delete: remove,
        [Symbol.asyncDispose]: () => remove(),
      };
    } catch (error) {
      throw await undoAfterFailure(error, undo, ctx, options);
    }
  } finally {
    await handle.close();
  }
}
