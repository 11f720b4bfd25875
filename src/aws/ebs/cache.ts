/**
 * The source cache: a snapshot's image downloaded once, keyed by snapshot id, with its per-block
 * checksums. A newer snapshot of the same lineage starts from a cached one and downloads only what
 * ListChangedBlocks reports.
 *
 * Layout: `<cacheDir>/<snapshotId>/image.raw` and `checksums.json` (written last: an entry without
 * it is incomplete). A download in progress lives in `<cacheDir>/<snapshotId>.partial/` and is
 * resumed by the next call; it takes the final name by an atomic rename, so concurrent builds
 * sharing a cache never see half an entry.
 *
 * @packageDocumentation
 */
import { mkdir, open, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ebsSdk } from '../sdk.js';
import { ConfigError } from '../../errors.js';
import { toCtx } from '../../internal/ctx.js';
import { awsErrorCode } from '../aws-errors.js';
import { EBS_BLOCK_SIZE, ebsFor, sendEbs } from './blocks.js';
import { downloadSnapshot } from './download.js';
import type { EbsOperationOptions } from './download.js';

const GiB = 1024 ** 3;
const IMAGE = 'image.raw';
const MANIFEST = 'checksums.json';

/**
 * Input of {@link cacheSnapshot}.
 * @public
 */
export interface CacheSnapshotInput {
  /** The snapshot to have locally (e.g. a source AMI's root snapshot). */
  readonly snapshotId: string;
  /** The cache directory (created if missing). */
  readonly cacheDir: string;
  /** Region. @defaultValue the EBS client's */
  readonly region?: string;
  /** GetSnapshotBlock requests in flight at most. @defaultValue 32 */
  readonly concurrency?: number;
  /** How many cached snapshots (newest first) to try as the base of a newer one. @defaultValue 3 */
  readonly lineageCandidates?: number;
}

/**
 * A snapshot's image in the cache. Never modify `file`: builds work on a copy.
 * @public
 */
export interface CachedSnapshot {
  /** The snapshot. */
  readonly snapshotId: string;
  /** Its raw image (sparse). */
  readonly file: string;
  /** Volume size in GiB. */
  readonly volumeSizeGiB: number;
  /** Base64 SHA-256 of every block holding data (absent blocks are zeros). */
  readonly checksums: ReadonlyMap<number, string>;
  /** `hit`: nothing downloaded; `delta`: only blocks changed since `baseSnapshotId`; `full`: every block. */
  readonly source: 'hit' | 'delta' | 'full';
  /** The cached snapshot a `delta` started from. */
  readonly baseSnapshotId?: string;
  /** Blocks downloaded by this call. */
  readonly blocksDownloaded: number;
}

interface Manifest {
  readonly snapshotId: string;
  readonly volumeSizeGiB: number;
  readonly blockSize: number;
  readonly checksums: readonly (readonly [number, string])[];
}

async function readEntry(cacheDir: string, snapshotId: string): Promise<CachedSnapshot | undefined> {
  const dir = join(cacheDir, snapshotId);
  const text = await readFile(join(dir, MANIFEST), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const manifest = JSON.parse(text) as Manifest;
  if (manifest.snapshotId !== snapshotId || manifest.blockSize !== EBS_BLOCK_SIZE) return undefined;
  return {
    snapshotId,
    file: join(dir, IMAGE),
    volumeSizeGiB: manifest.volumeSizeGiB,
    checksums: new Map(manifest.checksums),
    source: 'hit',
    blocksDownloaded: 0,
  };
}

/** Complete entries other than `snapshotId`, newest first. */
async function candidates(cacheDir: string, snapshotId: string, limit: number): Promise<CachedSnapshot[]> {
  const names = (await readdir(cacheDir).catch(() => [] as string[])).filter(
    (n) => /^snap-[0-9a-f]+$/.test(n) && n !== snapshotId,
  );
  const dated = await Promise.all(
    names.map(async (n) => ({ n, t: (await stat(join(cacheDir, n, MANIFEST)).catch(() => undefined))?.mtimeMs })),
  );
  const found: CachedSnapshot[] = [];
  for (const { n } of dated.filter((d) => d.t !== undefined).sort((a, b) => b.t! - a.t!)) {
    if (found.length >= limit) break;
    const entry = await readEntry(cacheDir, n);
    if (entry) found.push(entry);
  }
  return found;
}

/** A sparse copy of a cached image: only its blocks with data are read and written. */
async function copyBlocks(from: CachedSnapshot, to: string): Promise<void> {
  const source = await open(from.file, 'r');
  const target = await open(to, 'w');
  try {
    await target.truncate(from.volumeSizeGiB * GiB);
    const buffer = Buffer.alloc(EBS_BLOCK_SIZE);
    for (const index of from.checksums.keys()) {
      await source.read(buffer, 0, EBS_BLOCK_SIZE, index * EBS_BLOCK_SIZE);
      await target.write(buffer, 0, EBS_BLOCK_SIZE, index * EBS_BLOCK_SIZE);
    }
  } finally {
    await source.close();
    await target.close();
  }
}

/**
 * Makes a snapshot's image available in a local cache: from the cache itself, from a cached
 * snapshot of the same lineage plus the changed blocks, or by a full (resumable) download.
 *
 * @example
 * ```ts
 * import { cacheSnapshot, createEbsClient } from 'ami-chroot/aws';
 *
 * const ebs = createEbsClient({ region: 'eu-west-1' });
 * const root = await cacheSnapshot({ snapshotId: 'snap-0123456789abcdef0', cacheDir: '/var/cache/ami-chroot' }, { ebs });
 * console.log(root.source, root.blocksDownloaded, root.file); // 'hit' 0 /var/cache/ami-chroot/snap-…/image.raw
 * ```
 * @throws {@link ConfigError} bad input
 * @throws {@link BlockTransferError} a block kept failing its checksum
 * @throws {@link AwsError} an EBS call failed
 * @public
 */
export async function cacheSnapshot(input: CacheSnapshotInput, options: EbsOperationOptions): Promise<CachedSnapshot> {
  const { ListChangedBlocksCommand } = await ebsSdk();
  const ctx = toCtx(options);
  if (!/^snap-[0-9a-f]+$/.test(input.snapshotId)) {
    throw new ConfigError([
      { path: 'snapshotId', value: input.snapshotId, message: 'must be a snapshot id such as snap-0123456789abcdef0' },
    ]);
  }
  if (typeof input.cacheDir !== 'string' || input.cacheDir === '') {
    throw new ConfigError([{ path: 'cacheDir', value: input.cacheDir, message: 'must be a directory path' }]);
  }
  const hit = await readEntry(input.cacheDir, input.snapshotId);
  if (hit) {
    ctx.logger.info(`Source cache hit: ${input.snapshotId}`);
    return hit;
  }
  const { client: ebs, region } = await ebsFor(options.ebs, input.region);
  await mkdir(input.cacheDir, { recursive: true });
  const partial = join(input.cacheDir, `${input.snapshotId}.partial`);
  await mkdir(partial, { recursive: true });
  const file = join(partial, IMAGE);

  let base: CachedSnapshot | undefined;
  for (const candidate of await candidates(input.cacheDir, input.snapshotId, input.lineageCandidates ?? 3)) {
    try {
      await sendEbs(
        ebs,
        new ListChangedBlocksCommand({
          FirstSnapshotId: candidate.snapshotId,
          SecondSnapshotId: input.snapshotId,
          MaxResults: 100,
        }),
        ctx,
        { phase: 'download', region, resources: { snapshotId: input.snapshotId } },
      );
      base = candidate;
      break;
    } catch (error) {
      // Not of the same lineage (UNRELATED_SNAPSHOTS) or gone: try the next one.
      if (awsErrorCode(error) !== 'ValidationException' && awsErrorCode(error) !== 'ResourceNotFoundException')
        throw error;
    }
  }
  if (base) {
    ctx.logger.info(`Source cache: ${input.snapshotId} from cached ${base.snapshotId} plus changed blocks`);
    await rm(`${file}.progress`, { force: true });
    await copyBlocks(base, file);
  }
  const downloaded = await downloadSnapshot(
    {
      snapshotId: input.snapshotId,
      file,
      region,
      ...(input.concurrency === undefined ? {} : { concurrency: input.concurrency }),
      ...(base ? { base: { snapshotId: base.snapshotId, checksums: base.checksums } } : {}),
    },
    options,
  );
  const manifest: Manifest = {
    snapshotId: input.snapshotId,
    volumeSizeGiB: downloaded.volumeSizeGiB,
    blockSize: EBS_BLOCK_SIZE,
    checksums: [...downloaded.checksums].sort((a, b) => a[0] - b[0]),
  };
  await writeFile(join(partial, MANIFEST), JSON.stringify(manifest));
  const final = join(input.cacheDir, input.snapshotId);
  try {
    await rename(partial, final);
  } catch (error) {
    // Another build finished the same entry first: use theirs.
    if ((error as NodeJS.ErrnoException).code !== 'ENOTEMPTY' && (error as NodeJS.ErrnoException).code !== 'EEXIST')
      throw error;
    await rm(partial, { recursive: true, force: true });
  }
  const entry = await readEntry(input.cacheDir, input.snapshotId);
  if (!entry) throw new Error(`the cache entry ${final} vanished right after it was written`);
  return {
    ...entry,
    source: base ? 'delta' : 'full',
    ...(base ? { baseSnapshotId: base.snapshotId } : {}),
    blocksDownloaded: downloaded.blocksDownloaded,
  };
}
