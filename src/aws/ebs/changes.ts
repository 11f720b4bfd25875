/**
 * Which 512 KiB blocks of a provisioned working copy differ from the cached source it was copied
 * from, reading as little of either file as the host's file system allows.
 *
 * @packageDocumentation
 */
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { run } from '../../host/exec.js';
import type { Ctx } from '../../internal/ctx.js';
import { EBS_BLOCK_SIZE, isZeroBlock } from './blocks.js';

/** A byte range of a file that holds data; `shared` when its storage is shared (a reflink). @internal */
export interface DataExtent {
  readonly start: number;
  readonly end: number;
  readonly shared: boolean;
}

/**
 * Parses `filefrag -v` (FIEMAP): the data extents of a file in bytes, in file order. Delayed
 * allocation and unwritten extents count as data (they will be, or read as zeros and are
 * compared like any other block).
 * @internal
 */
export function parseFilefrag(stdout: string): DataExtent[] | undefined {
  const unit = Number(/\((\d+) blocks? of (\d+) bytes\)/.exec(stdout)?.[2]);
  if (!Number.isInteger(unit) || unit <= 0) return undefined;
  const extents: DataExtent[] = [];
  for (const m of stdout.matchAll(/^\s*\d+:\s+(\d+)\.\.\s*(\d+):.*?(\S*)\s*$/gm)) {
    const flags = m[3]!.split(',');
    extents.push({ start: Number(m[1]) * unit, end: (Number(m[2]) + 1) * unit, shared: flags.includes('shared') });
  }
  return extents;
}

/**
 * The data extents of `file`, or undefined when the host cannot tell (no filefrag, no FIEMAP).
 * With shared extents the map is taken again after a sync: a copy-on-write of a shared extent
 * still in the page cache leaves the extent marked shared until it is written back.
 */
async function dataExtents(file: string, ctx: Ctx): Promise<DataExtent[] | undefined> {
  const map = async (sync: boolean): Promise<DataExtent[] | undefined> => {
    const args = sync ? ['-v', '-s', file] : ['-v', file];
    const opts = { signal: ctx.signal, logger: ctx.logger, timeoutMs: 600_000, phase: 'upload' as const };
    return parseFilefrag((await run('filefrag', args, opts)).stdout);
  };
  try {
    const first = await map(false);
    return first?.some((e) => e.shared) ? await map(true) : first;
  } catch (error) {
    ctx.signal?.throwIfAborted();
    ctx.logger.debug(`No extent map of ${file} (filefrag: ${(error as Error).message}); reading it whole`);
    return undefined;
  }
}

/**
 * The blocks that can differ from the source, from the working copy's extent map: a block
 * touched by an extent that is not shared (written since the copy, or a hole filled), and a
 * block where the source has data unless shared extents cover it whole (a reflink the build
 * never wrote is the source's own storage). A block in a hole of both files is zeros in both.
 * Without a map, every block.
 * @internal
 */
export function candidateBlocks(
  extents: readonly DataExtent[] | undefined,
  sourceBlocks: Iterable<number>,
  blockCount: number,
): number[] {
  if (!extents) return Array.from({ length: blockCount }, (_, i) => i);
  const candidates = new Set<number>();
  const sharedBytes = new Map<number, number>();
  for (const e of extents) {
    const first = Math.floor(e.start / EBS_BLOCK_SIZE);
    const last = Math.min(blockCount - 1, Math.floor((e.end - 1) / EBS_BLOCK_SIZE));
    for (let i = first; i <= last; i++) {
      if (!e.shared) candidates.add(i);
      else {
        const overlap = Math.min(e.end, (i + 1) * EBS_BLOCK_SIZE) - Math.max(e.start, i * EBS_BLOCK_SIZE);
        sharedBytes.set(i, (sharedBytes.get(i) ?? 0) + overlap);
      }
    }
  }
  for (const i of sourceBlocks) if (i < blockCount && (sharedBytes.get(i) ?? 0) < EBS_BLOCK_SIZE) candidates.add(i);
  return [...candidates].sort((a, b) => a - b);
}

/** The source a working copy was copied from: its image and the blocks that hold data. @internal */
export interface ChangeSource {
  readonly file: string;
  readonly checksums: ReadonlyMap<number, string>;
}

/** What {@link changedBlocks} found and how much it read. @internal */
export interface ChangeScan {
  /** Blocks that differ from the source (from scratch: that are not zeros), ascending. */
  readonly changed: number[];
  /** Blocks read and compared (the others could not have changed). */
  readonly examined: number;
  /** Blocks in the working copy. */
  readonly total: number;
}

/** Reads runs of consecutive blocks at once: fewer, larger reads. */
const RUN = 16;

async function readRun(handle: FileHandle, buffer: Buffer, first: number, count: number): Promise<void> {
  buffer.fill(0, 0, count * EBS_BLOCK_SIZE);
  await handle.read(buffer, 0, count * EBS_BLOCK_SIZE, first * EBS_BLOCK_SIZE);
}

/**
 * The blocks of `work` that differ from `source`. Only blocks that can have changed are read (see
 * {@link candidateBlocks}); each is compared byte for byte with the source block (a memcmp is
 * ~25x cheaper than hashing it against the source's checksum), or, where the source has no data,
 * checked for zeros without reading the source. A block rewritten with its old content is
 * unchanged. From scratch (no source): every non-zero block.
 * @internal
 */
export async function changedBlocks(work: string, source: ChangeSource | undefined, ctx: Ctx): Promise<ChangeScan> {
  const w = await open(work, 'r');
  const s = source ? await open(source.file, 'r') : undefined;
  try {
    const total = Math.ceil((await w.stat()).size / EBS_BLOCK_SIZE);
    const candidates = candidateBlocks(await dataExtents(work, ctx), source?.checksums.keys() ?? [], total);
    const a = Buffer.alloc(RUN * EBS_BLOCK_SIZE);
    const b = Buffer.alloc(RUN * EBS_BLOCK_SIZE);
    const changed: number[] = [];
    for (let k = 0; k < candidates.length;) {
      ctx.signal?.throwIfAborted();
      const first = candidates[k]!;
      let n = 1;
      while (n < RUN && candidates[k + n] === first + n) n++;
      const withSource = s && [...Array(n).keys()].some((j) => source!.checksums.has(first + j));
      // Both files at once: the two reads overlap on the thread pool.
      await Promise.all([readRun(w, a, first, n), withSource ? readRun(s, b, first, n) : undefined]);
      for (let j = 0; j < n; j++) {
        const at = j * EBS_BLOCK_SIZE;
        const block = a.subarray(at, at + EBS_BLOCK_SIZE);
        const differs = source?.checksums.has(first + j)
          ? !block.equals(b.subarray(at, at + EBS_BLOCK_SIZE))
          : !isZeroBlock(block);
        if (differs) changed.push(first + j);
      }
      k += n;
    }
    return { changed, examined: candidates.length, total };
  } finally {
    await w.close();
    await s?.close();
  }
}
