/**
 * Change detection of a working copy against its cached source: only the blocks that can have
 * changed are read (the working copy's extent map), and the answer is the same as comparing every
 * block. Real sparse files on the host's file system; filefrag is the real one.
 */
import { randomFillSync } from 'node:crypto';
import { mkdtemp, open, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EBS_BLOCK_SIZE, blockChecksum } from '../../../src/aws/ebs/blocks.js';
import { candidateBlocks, changedBlocks, parseFilefrag } from '../../../src/aws/ebs/changes.js';
import { run } from '../../../src/host/exec.js';
import { toCtx } from '../../../src/internal/ctx.js';

const B = EBS_BLOCK_SIZE;
const ctx = toCtx({ logger: { warn: () => {}, error: () => {} } });
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ami-chroot-ebs-changes-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('parseFilefrag', () => {
  it('reads extents in bytes with their flags, delayed allocation included', () => {
    const out = [
      'Filesystem type is: ef53',
      'File size of /x is 8388608 (2048 blocks of 4096 bytes)',
      ' ext:     logical_offset:        physical_offset: length:   expected: flags:',
      '   0:      320..     367:          0..         0:      0:             unknown_loc,delalloc',
      '   1:     1000..    1000:     123456..    123456:      1:     123504: last,shared',
      '/x: 2 extents found',
    ].join('\n');
    expect(parseFilefrag(out)).toEqual([
      { start: 320 * 4096, end: 368 * 4096, shared: false },
      { start: 1000 * 4096, end: 1001 * 4096, shared: true },
    ]);
  });

  it('gives no map for output it does not understand', () => {
    expect(parseFilefrag('FIBMAP unsupported\n')).toBeUndefined();
  });
});

describe('candidateBlocks', () => {
  it('takes blocks touched by unshared extents and source blocks not covered whole by shared ones', () => {
    const extents = [
      { start: 0, end: B, shared: true }, // block 0: shared whole, source data: cannot have changed
      { start: 2 * B + 4096, end: 2 * B + 8192, shared: false }, // block 2: written
      { start: 5 * B, end: 5 * B + B / 2, shared: true }, // block 5: half shared, half hole
    ];
    expect(candidateBlocks(extents, [0, 5, 7], 10)).toEqual([2, 5, 7]);
  });

  it('is every block without a map', () => {
    expect(candidateBlocks(undefined, [], 3)).toEqual([0, 1, 2]);
  });
});

describe('changedBlocks', () => {
  /** A sparse 64-block source with data in blocks 1-4 and 40, and its checksums. */
  async function makeSource(): Promise<{ file: string; checksums: Map<number, string> }> {
    const file = join(dir, `source-${Math.random().toString(36).slice(2)}.raw`);
    await writeFile(file, '');
    await truncate(file, 64 * B);
    const checksums = new Map<number, string>();
    const handle = await open(file, 'r+');
    try {
      for (const i of [1, 2, 3, 4, 40]) {
        const data = randomFillSync(Buffer.alloc(B));
        await handle.write(data, 0, B, i * B);
        checksums.set(i, blockChecksum(data));
      }
    } finally {
      await handle.close();
    }
    return { file, checksums };
  }

  async function write(file: string, offset: number, data: Buffer): Promise<void> {
    const handle = await open(file, 'r+');
    try {
      await handle.write(data, 0, data.length, offset);
    } finally {
      await handle.close();
    }
  }

  it('finds exactly the changed blocks and reads only those with data', async () => {
    const source = await makeSource();
    const work = join(dir, 'work.raw');
    await run('cp', ['--sparse=always', source.file, work]);
    await write(work, 2 * B + 100, randomFillSync(Buffer.alloc(10))); // changed
    await write(work, 3 * B, Buffer.alloc(4096)); // zeros over data: changed
    const same = Buffer.alloc(4096);
    const handle = await open(source.file, 'r');
    await handle.read(same, 0, 4096, 4 * B);
    await handle.close();
    await write(work, 4 * B, same); // rewritten with its old content: unchanged
    await write(work, 20 * B + 7, Buffer.from('new')); // a hole filled: changed
    await write(work, 30 * B, Buffer.alloc(4096)); // zeros into a hole: unchanged

    const scan = await changedBlocks(work, source, ctx);
    expect(scan.changed).toEqual([2, 3, 20]);
    expect(scan.total).toBe(64);
    // The source's five blocks, the two holes written; not the 57 blocks that are holes in both.
    expect(scan.examined).toBe(7);
  });

  it('from scratch: every non-zero block', async () => {
    const work = join(dir, 'scratch.raw');
    await writeFile(work, '');
    await truncate(work, 16 * B);
    await write(work, 5 * B + 3, Buffer.from('x'));
    await write(work, 9 * B, Buffer.alloc(B));
    const scan = await changedBlocks(work, undefined, ctx);
    expect(scan.changed).toEqual([5]);
    expect(scan.examined).toBeLessThanOrEqual(2);
  });
});
