/**
 * `downloadSnapshot`: a snapshot's blocks, read through the EBS direct APIs into a sparse local raw
 * file, checksums verified, resumable after a failure.
 *
 * @packageDocumentation
 */
import { appendFile, open, readFile, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { ebsSdk } from '../sdk.js';
import type { EBSClient } from '@aws-sdk/client-ebs';
import { BlockTransferError, ConfigError } from '../../errors.js';
import type { OperationOptions } from '../../types.js';
import { throwIfAborted } from '../../internal/abort.js';
import { toCtx } from '../../internal/ctx.js';
import type { Ctx } from '../../internal/ctx.js';
import { send } from '../call.js';
import { EBS_BLOCK_SIZE, blockChecksum, ebsFor, isZeroBlock, runBlockPool, sendEbs } from './blocks.js';
import type { EbsProvider, TransferStats } from './blocks.js';

const GiB = 1024 ** 3;

/**
 * Options shared by the EBS direct primitives.
 * @public
 */
export interface EbsOperationOptions extends OperationOptions {
  /** The EBS client (of the snapshot's region), or a client per region; see {@link createEbsClient}. */
  readonly ebs: EbsProvider;
}

/**
 * Input of {@link downloadSnapshot}.
 * @public
 */
export interface DownloadSnapshotInput {
  /** The snapshot to read (completed). */
  readonly snapshotId: string;
  /** The raw image to write; created sparse with the volume's size. */
  readonly file: string;
  /** Region. @defaultValue the EBS client's */
  readonly region?: string;
  /** GetSnapshotBlock requests in flight at most. @defaultValue 32 */
  readonly concurrency?: number;
  /**
   * `file` already holds this snapshot of the same lineage, with these block checksums: only the
   * blocks ListChangedBlocks reports between the two are fetched (blocks the newer one no longer
   * has are zeroed).
   */
  readonly base?: {
    /** The older snapshot that `file` holds. */
    readonly snapshotId: string;
    /** Its block checksums (as {@link DownloadedSnapshot.checksums}). */
    readonly checksums: ReadonlyMap<number, string>;
  };
}

/**
 * A downloaded snapshot.
 * @public
 */
export interface DownloadedSnapshot {
  /** The snapshot read. */
  readonly snapshotId: string;
  /** The raw image written. */
  readonly file: string;
  /** The volume size in GiB (the file's size is this many GiB). */
  readonly volumeSizeGiB: number;
  /** Base64 SHA-256 of every block that holds data, by block index (blocks absent are zeros). */
  readonly checksums: ReadonlyMap<number, string>;
  /** Blocks fetched by this call. */
  readonly blocksDownloaded: number;
  /** Bytes fetched by this call. */
  readonly bytesDownloaded: number;
  /** Blocks a previous, interrupted call had already fetched and that were verified and kept. */
  readonly blocksResumed: number;
  /** Concurrency and retries of the transfer. */
  readonly transfer: TransferStats;
}

/** The sidecar file that makes a download resumable: a header line, then `index checksum` lines. */
function progressFile(file: string): string {
  return `${file}.progress`;
}

async function listBlocks(
  ebs: EBSClient,
  input: DownloadSnapshotInput,
  ctx: Ctx,
  region: string,
): Promise<{ volumeSizeGiB: number; wanted: Map<number, string | undefined> }> {
  const { ListChangedBlocksCommand, ListSnapshotBlocksCommand } = await ebsSdk();
  const wanted = new Map<number, string | undefined>();
  let volumeSizeGiB = 0;
  let token: string | undefined;
  const meta = { phase: 'download' as const, region, resources: { snapshotId: input.snapshotId } };
  do {
    if (input.base) {
      const out = await sendEbs(
        ebs,
        new ListChangedBlocksCommand({
          FirstSnapshotId: input.base.snapshotId,
          SecondSnapshotId: input.snapshotId,
          ...(token ? { NextToken: token } : {}),
        }),
        ctx,
        meta,
      );
      for (const b of out.ChangedBlocks ?? [])
        if (b.BlockIndex !== undefined) wanted.set(b.BlockIndex, b.SecondBlockToken);
      volumeSizeGiB = out.VolumeSize ?? volumeSizeGiB;
      if (out.BlockSize !== undefined && out.BlockSize !== EBS_BLOCK_SIZE)
        throw blockSizeError(input.snapshotId, out.BlockSize);
      token = out.NextToken;
    } else {
      const out = await sendEbs(
        ebs,
        new ListSnapshotBlocksCommand({ SnapshotId: input.snapshotId, ...(token ? { NextToken: token } : {}) }),
        ctx,
        meta,
      );
      for (const b of out.Blocks ?? []) if (b.BlockIndex !== undefined) wanted.set(b.BlockIndex, b.BlockToken);
      volumeSizeGiB = out.VolumeSize ?? volumeSizeGiB;
      if (out.BlockSize !== undefined && out.BlockSize !== EBS_BLOCK_SIZE)
        throw blockSizeError(input.snapshotId, out.BlockSize);
      token = out.NextToken;
    }
  } while (token);
  return { volumeSizeGiB, wanted };
}

function blockSizeError(snapshotId: string, size: number): BlockTransferError {
  return new BlockTransferError(
    `Snapshot ${snapshotId} reports ${size}-byte blocks; the EBS direct APIs use ${EBS_BLOCK_SIZE}. Check the EBS endpoint.`,
    { phase: 'download', resources: { snapshotId } },
  );
}

/** Blocks an earlier call verified into `file`, if its progress file is for this same download. */
async function resumable(file: string, header: string, handle: FileHandle): Promise<Map<number, string>> {
  const text = await readFile(progressFile(file), 'utf8').catch(() => undefined);
  const done = new Map<number, string>();
  if (!text) return done;
  const [first, ...lines] = text.split('\n');
  if (first !== header) return done;
  const buffer = Buffer.alloc(EBS_BLOCK_SIZE);
  for (const line of lines) {
    const [index, checksum] = line.split(' ');
    if (!index || !checksum) continue;
    const i = Number(index);
    // Trust nothing unverified: the line may have outlived data a crash lost.
    const { bytesRead } = await handle.read(buffer, 0, EBS_BLOCK_SIZE, i * EBS_BLOCK_SIZE);
    if (bytesRead === EBS_BLOCK_SIZE && blockChecksum(buffer) === checksum) done.set(i, checksum);
  }
  return done;
}

/**
 * Reads a snapshot through the EBS direct APIs into a sparse raw file.
 *
 * @remarks
 * ListSnapshotBlocks (or ListChangedBlocks against `base`) names the blocks that hold data; they
 * are fetched in parallel with GetSnapshotBlock, each checked against the SHA-256 EBS sends with
 * it (a mismatch is retried), and written at `index x 512 KiB`. Blocks never written stay holes.
 * Throttling lowers the concurrency (see {@link TransferStats}). Each verified block is recorded
 * in `<file>.progress`: after a failure the same call resumes, re-verifying what is there, and
 * fetches only the rest. The progress file is removed once the download is complete.
 *
 * @example
 * ```ts
 * import { createEbsClient, downloadSnapshot } from 'ami-chroot/aws';
 *
 * const ebs = createEbsClient({ region: 'eu-west-1' });
 * const image = await downloadSnapshot(
 *   { snapshotId: 'snap-0123456789abcdef0', file: '/var/tmp/root.raw' },
 *   { ebs, onProgress: (e) => e.type === 'blocks' && console.log(`${e.done}/${e.total}`) },
 * );
 * console.log(image.volumeSizeGiB, image.blocksDownloaded, image.checksums.size);
 * ```
 * @throws {@link ConfigError} bad input (nothing touched)
 * @throws {@link BlockTransferError} a block kept failing its checksum, or the snapshot is not what the EBS direct APIs serve
 * @throws {@link AwsError} an EBS call failed (not found, access denied, throttled past every retry)
 * @public
 */
export async function downloadSnapshot(
  input: DownloadSnapshotInput,
  options: EbsOperationOptions,
): Promise<DownloadedSnapshot> {
  const ctx = toCtx(options);
  validate(input);
  const { client: ebs, region } = await ebsFor(options.ebs, input.region);
  throwIfAborted(ctx.signal);
  const { volumeSizeGiB, wanted } = await listBlocks(ebs, input, ctx, region);
  const header = `ami-chroot download ${input.snapshotId} base=${input.base?.snapshotId ?? '-'} ${volumeSizeGiB}`;
  const handle = await open(input.file, input.base ? 'r+' : 'a+').then(async (h) => {
    // 'a+' creates without truncating (a resume keeps its blocks); positional writes need r+.
    if (input.base) return h;
    await h.close();
    return open(input.file, 'r+');
  });
  try {
    const size = (await handle.stat()).size;
    const resumed = await resumable(input.file, header, handle);
    if (resumed.size === 0 && !input.base && size > 0) {
      // Not ours to resume: start from an empty, sparse file of the right size.
      await handle.truncate(0);
      await rm(progressFile(input.file), { force: true });
    }
    if (resumed.size === 0) await appendFile(progressFile(input.file), `${header}\n`, { flag: 'w' });
    await handle.truncate(volumeSizeGiB * GiB);
    const checksums = new Map<number, string>(input.base?.checksums);
    for (const [i, c] of resumed) checksums.set(i, c);
    const todo = [...wanted.keys()].filter((i) => !resumed.has(i)).sort((a, b) => a - b);
    let done = 0;
    let bytes = 0;
    let lastEmit = 0;
    const emit = (force: boolean): void => {
      const now = performance.now();
      if (!force && now - lastEmit < 250) return;
      lastEmit = now;
      ctx.emit({
        type: 'blocks',
        direction: 'download',
        snapshotId: input.snapshotId,
        done,
        total: todo.length,
        bytes,
      });
    };
    ctx.logger.info(
      `Downloading ${todo.length} block(s) of ${input.snapshotId}${resumed.size ? ` (${resumed.size} resumed)` : ''}`,
    );
    const zeros = Buffer.alloc(EBS_BLOCK_SIZE);
    const transfer = await runBlockPool(
      todo,
      async (index, signal) => {
        const { GetSnapshotBlockCommand } = await ebsSdk();
        const token = wanted.get(index);
        let data: Uint8Array = zeros;
        let checksum: string | undefined;
        if (token !== undefined) {
          const out = await send(
            ebs,
            new GetSnapshotBlockCommand({ SnapshotId: input.snapshotId, BlockIndex: index, BlockToken: token }),
            ctx,
            { phase: 'download', region, resources: { snapshotId: input.snapshotId }, signal },
          );
          data = (await out.BlockData?.transformToByteArray()) ?? new Uint8Array();
          checksum = blockChecksum(data);
          if (data.byteLength !== EBS_BLOCK_SIZE || checksum !== out.Checksum) {
            throw Object.assign(
              new BlockTransferError(
                `Block ${index} of ${input.snapshotId} did not match its checksum (${data.byteLength} bytes); retried, then gave up. Check the network path to EBS.`,
                { phase: 'download', resources: { snapshotId: input.snapshotId, region }, blockIndex: index },
              ),
              { transient: true },
            );
          }
          bytes += data.byteLength;
        }
        // A hole reads as zeros: only a block overwriting older data needs zeros written.
        if (checksum === undefined || !isZeroBlock(data) || input.base?.checksums.has(index)) {
          await handle.write(data, 0, EBS_BLOCK_SIZE, index * EBS_BLOCK_SIZE);
        }
        if (checksum === undefined || isZeroBlock(data)) checksums.delete(index);
        else checksums.set(index, checksum);
        await appendFile(progressFile(input.file), `${index} ${checksum ?? blockChecksum(zeros)}\n`);
        done++;
        emit(false);
      },
      { concurrency: input.concurrency ?? 32, ctx },
    );
    emit(true);
    await handle.sync();
    await rm(progressFile(input.file), { force: true });
    ctx.logger.info(`Downloaded ${input.snapshotId}: ${done} block(s), ${bytes} bytes`);
    return {
      snapshotId: input.snapshotId,
      file: input.file,
      volumeSizeGiB,
      checksums,
      blocksDownloaded: todo.filter((i) => wanted.get(i) !== undefined).length,
      bytesDownloaded: bytes,
      blocksResumed: resumed.size,
      transfer,
    };
  } finally {
    await handle.close();
  }
}

function validate(input: DownloadSnapshotInput): void {
  const issues: { path: string; value?: unknown; message: string }[] = [];
  if (typeof input.snapshotId !== 'string' || !/^snap-[0-9a-f]+$/.test(input.snapshotId)) {
    issues.push({
      path: 'snapshotId',
      value: input.snapshotId,
      message: 'must be a snapshot id such as snap-0123456789abcdef0',
    });
  }
  if (typeof input.file !== 'string' || input.file === '') {
    issues.push({ path: 'file', value: input.file, message: 'must be the path of the raw image to write' });
  }
  if (
    input.concurrency !== undefined &&
    (!Number.isInteger(input.concurrency) || input.concurrency < 1 || input.concurrency > 1024)
  ) {
    issues.push({ path: 'concurrency', value: input.concurrency, message: 'must be a whole number from 1 to 1024' });
  }
  if (input.base !== undefined && !/^snap-[0-9a-f]+$/.test(input.base.snapshotId)) {
    issues.push({ path: 'base.snapshotId', value: input.base.snapshotId, message: 'must be a snapshot id' });
  }
  if (issues.length > 0) throw new ConfigError(issues);
}
