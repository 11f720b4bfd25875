/**
 * The EBS direct primitives over HTTP against the test EC2 (moto patched by
 * test/ec2/patches/p50_ebs_direct.py: 512 KiB blocks, lineage, checksums, throttling and failure
 * knobs), with the real SDK clients.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, open, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CompleteSnapshotCommand,
  ListChangedBlocksCommand,
  PutSnapshotBlockCommand,
  StartSnapshotCommand,
} from '@aws-sdk/client-ebs';
import type { EBSClient } from '@aws-sdk/client-ebs';
import { DeleteSnapshotCommand, DescribeImagesCommand, DescribeSnapshotsCommand } from '@aws-sdk/client-ec2';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BlockTransferError, ConfigError } from '../../../src/errors.js';
import { createAwsClients } from '../../../src/aws/clients.js';
import type { AwsClients } from '../../../src/aws/clients.js';
import { BUILD_ID_TAG } from '../../../src/aws/common.js';
import { EBS_BLOCK_SIZE, createEbsClient } from '../../../src/aws/ebs/blocks.js';
import { cacheSnapshot } from '../../../src/aws/ebs/cache.js';
import { downloadSnapshot } from '../../../src/aws/ebs/download.js';
import { uploadSnapshot } from '../../../src/aws/ebs/upload.js';
import { registerImage } from '../../../src/aws/images.js';
import type { ProgressEvent } from '../../../src/types.js';
import { startMoto } from '../../helpers/moto.js';
import type { MotoServer } from '../../helpers/moto.js';

const MiB = 1024 * 1024;
let moto: MotoServer;
let clients: AwsClients;
let ec2: EC2Client;
let ebs: EBSClient;
let dir: string;
let unique = 0;
const buildId = (): string => `ebs-${process.pid}-${++unique}`;

beforeAll(async () => {
  moto = await startMoto();
  const access = { region: 'us-east-1', accessKey: 'testing', secretKey: 'testing', maxRetries: 1 } as const;
  clients = createAwsClients({ ...access, customEndpointEc2: moto.endpoint });
  ec2 = clients.ec2();
  ebs = createEbsClient(access, moto.endpoint);
  dir = await mkdtemp(join(tmpdir(), 'ami-chroot-ebs-'));
});

afterAll(async () => {
  ebs?.destroy();
  clients?.destroy();
  await moto?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

afterEach(async () => {
  await moto.resetKnobs();
});

/** A sparse image of `sizeMiB` with these blocks filled with a pattern of their index and `seed`. */
async function image(name: string, sizeMiB: number, blocks: readonly number[], seed = 1): Promise<string> {
  const file = join(dir, name);
  const handle = await open(file, 'w');
  try {
    await handle.truncate(sizeMiB * MiB);
    for (const i of blocks) await handle.write(pattern(i, seed), 0, EBS_BLOCK_SIZE, i * EBS_BLOCK_SIZE);
  } finally {
    await handle.close();
  }
  return file;
}

function pattern(index: number, seed: number): Buffer {
  const data = Buffer.alloc(EBS_BLOCK_SIZE);
  for (let o = 0; o < EBS_BLOCK_SIZE; o += 4096) data.writeUInt32LE((index * 7919 + seed * 104729 + o) >>> 0, o);
  return data;
}

/** Hash of a file's first `length` bytes (read-back files are the volume's size, sources smaller). */
async function sha(file: string, length = 64 * MiB): Promise<string> {
  const handle = await open(file, 'r');
  try {
    const data = Buffer.alloc(length);
    const { bytesRead } = await handle.read(data, 0, length, 0);
    return createHash('sha256').update(data.subarray(0, bytesRead)).digest('hex');
  } finally {
    await handle.close();
  }
}

async function snapshotsOf(id: string): Promise<string[]> {
  const out = await ec2.send(
    new DescribeSnapshotsCommand({ OwnerIds: ['self'], Filters: [{ Name: `tag:${BUILD_ID_TAG}`, Values: [id] }] }),
  );
  return (out.Snapshots ?? []).map((s) => s.SnapshotId!);
}

async function putCalls(): Promise<number> {
  return (await moto.calls()).filter((c) => /^PUT \/snapshots\/.*\/blocks\//.test(c.action) && c.status === 201).length;
}

describe('uploadSnapshot and downloadSnapshot', () => {
  it('uploads only non-zero blocks from scratch, and the snapshot read back equals the local image', async () => {
    const file = await image('scratch.raw', 64, [0, 1, 5, 100, 127]);
    await moto.resetCalls();
    const events: ProgressEvent[] = [];
    const id = buildId();
    const up = await uploadSnapshot({ file, buildId: id }, { ebs, ec2, onProgress: (e) => events.push(e) });
    expect(up).toMatchObject({
      volumeSizeGiB: 1,
      blocksWritten: 5,
      blocksSkipped: 128 - 5,
      bytesWritten: 5 * EBS_BLOCK_SIZE,
    });
    expect(await putCalls()).toBe(5);
    expect(await snapshotsOf(id)).toEqual([up.snapshotId]);
    const snap = (await ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [up.snapshotId] }))).Snapshots?.[0];
    expect(snap?.State).toBe('completed');
    expect(events.filter((e) => e.type === 'blocks').at(-1)).toMatchObject({
      direction: 'upload',
      done: 128,
      total: 128,
    });

    const back = join(dir, 'scratch.back.raw');
    const down = await downloadSnapshot({ snapshotId: up.snapshotId, file: back }, { ebs });
    expect(down).toMatchObject({ volumeSizeGiB: 1, blocksDownloaded: 5, blocksResumed: 0 });
    expect([...down.checksums.keys()].sort((a, b) => a - b)).toEqual([0, 1, 5, 100, 127]);
    expect(await sha(back)).toBe(await sha(file));
    // Sparse: only the five blocks take space.
    expect((await stat(back)).blocks * 512).toBeLessThan(16 * MiB);
    await expect(stat(`${back}.progress`)).rejects.toThrow(/ENOENT/);
    await up.delete();
    expect(await snapshotsOf(id)).toEqual([]);
  });

  it('completes with the LINEAR aggregate of the blocks written; the test EC2 puts a snapshot whose aggregate is wrong in error', async () => {
    // Written blocks in index order (the pool finishes them in any order): SHA-256 of their digests.
    const blocks = [3, 0, 9];
    const file = await image('linear.raw', 64, blocks);
    const expected = createHash('sha256');
    for (const i of [...blocks].sort((a, b) => a - b))
      expected.update(createHash('sha256').update(pattern(i, 1)).digest());
    const seen: Record<string, unknown>[] = [];
    const spy = 'linear-checksum-spy';
    ebs.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'CompleteSnapshotCommand')
          seen.push(args.input as unknown as Record<string, unknown>);
        return next(args);
      },
      { step: 'initialize', name: spy },
    );
    try {
      const up = await uploadSnapshot({ file, buildId: buildId() }, { ebs, ec2 });
      await up.delete();
    } finally {
      ebs.middlewareStack.remove(spy);
    }
    expect(seen).toEqual([
      expect.objectContaining({
        ChangedBlocksCount: 3,
        Checksum: expected.digest('base64'),
        ChecksumAlgorithm: 'SHA256',
        ChecksumAggregationMethod: 'LINEAR',
      }),
    ]);

    // The server checks it: the same blocks with another aggregate end in error.
    const started = await ebs.send(new StartSnapshotCommand({ VolumeSize: 1 }));
    try {
      const data = pattern(1, 1);
      const checksum = createHash('sha256').update(data).digest('base64');
      await ebs.send(
        new PutSnapshotBlockCommand({
          SnapshotId: started.SnapshotId!,
          BlockIndex: 1,
          BlockData: data,
          DataLength: EBS_BLOCK_SIZE,
          Checksum: checksum,
          ChecksumAlgorithm: 'SHA256',
        }),
      );
      const done = await ebs.send(
        new CompleteSnapshotCommand({
          SnapshotId: started.SnapshotId!,
          ChangedBlocksCount: 1,
          Checksum: checksum, // the block's own checksum, not the aggregate
          ChecksumAlgorithm: 'SHA256',
          ChecksumAggregationMethod: 'LINEAR',
        }),
      );
      expect(done.Status).toBe('error');
    } finally {
      await ec2.send(new DeleteSnapshotCommand({ SnapshotId: started.SnapshotId! }));
    }
  });

  it('writes only the changed blocks on top of a parent, zeros included where they replace parent data', async () => {
    const parentFile = await image('parent.raw', 64, [0, 1, 2, 3, 10]);
    const parent = await uploadSnapshot({ file: parentFile, buildId: buildId() }, { ebs, ec2 });
    const childFile = await image('child.raw', 64, [0, 1, 2, 3, 10]);
    const h = await open(childFile, 'r+');
    await h.write(pattern(2, 9), 0, EBS_BLOCK_SIZE, 2 * EBS_BLOCK_SIZE); // changed
    await h.write(Buffer.alloc(EBS_BLOCK_SIZE), 0, EBS_BLOCK_SIZE, 3 * EBS_BLOCK_SIZE); // zeroed
    await h.write(pattern(50, 9), 0, EBS_BLOCK_SIZE, 50 * EBS_BLOCK_SIZE); // new
    await h.close();
    await moto.resetCalls();
    const child = await uploadSnapshot(
      { file: childFile, parentSnapshotId: parent.snapshotId, changedBlocks: [2, 3, 50], buildId: buildId() },
      { ebs, ec2 },
    );
    expect(child).toMatchObject({ blocksWritten: 3, blocksSkipped: 0 });
    expect(await putCalls()).toBe(3);
    const changed = await ebs.send(
      new ListChangedBlocksCommand({ FirstSnapshotId: parent.snapshotId, SecondSnapshotId: child.snapshotId }),
    );
    expect(changed.ChangedBlocks?.map((b) => b.BlockIndex)).toEqual([2, 3, 50]);
    const back = join(dir, 'child.back.raw');
    await downloadSnapshot({ snapshotId: child.snapshotId, file: back }, { ebs });
    expect(await sha(back)).toBe(await sha(childFile));

    // Without changedBlocks, the parent's blocks decide which zero blocks must be written.
    const again = await uploadSnapshot(
      { file: childFile, parentSnapshotId: parent.snapshotId, buildId: buildId() },
      { ebs, ec2 },
    );
    expect(again.blocksWritten).toBe(6); // 0, 1, 2, 3 (zeros over data), 10, 50
    const back2 = join(dir, 'again.back.raw');
    await downloadSnapshot({ snapshotId: again.snapshotId, file: back2 }, { ebs });
    expect(await sha(back2)).toBe(await sha(childFile));
    for (const s of [again, child, parent]) await s.delete();
  });

  it('a download against a base fetches only the changed blocks', async () => {
    const baseFile = await image('base.raw', 64, [0, 4, 8]);
    const base = await uploadSnapshot({ file: baseFile, buildId: buildId() }, { ebs, ec2 });
    const newer = await image('newer.raw', 64, [0, 4, 8, 9]);
    const h = await open(newer, 'r+');
    await h.write(pattern(4, 3), 0, EBS_BLOCK_SIZE, 4 * EBS_BLOCK_SIZE);
    await h.close();
    const next = await uploadSnapshot(
      { file: newer, parentSnapshotId: base.snapshotId, changedBlocks: [4, 9], buildId: buildId() },
      { ebs, ec2 },
    );
    const local = join(dir, 'base.local.raw');
    const first = await downloadSnapshot({ snapshotId: base.snapshotId, file: local }, { ebs });
    await moto.resetCalls();
    const second = await downloadSnapshot(
      { snapshotId: next.snapshotId, file: local, base: { snapshotId: base.snapshotId, checksums: first.checksums } },
      { ebs },
    );
    expect(second.blocksDownloaded).toBe(2);
    const gets = (await moto.calls()).filter((c) => /^GET \/snapshots\/.*\/blocks\/\d+$/.test(c.action));
    expect(gets).toHaveLength(2);
    expect(await sha(local)).toBe(await sha(newer));
    expect([...second.checksums.keys()].sort((a, b) => a - b)).toEqual([0, 4, 8, 9]);
    await next.delete();
    await base.delete();
  });

  it('retries throttled writes with a lower concurrency, and failed writes', async () => {
    const file = await image(
      'throttle.raw',
      64,
      Array.from({ length: 24 }, (_, i) => i * 3),
    );
    await moto.setKnobs({ ebs_throttle: { actions: ['PutSnapshotBlock'], burst: 6 }, ebs_fail_blocks: 3 });
    await moto.resetCalls();
    const up = await uploadSnapshot({ file, buildId: buildId(), concurrency: 8 }, { ebs, ec2 });
    expect(up.blocksWritten).toBe(24);
    expect(up.transfer.throttled).toBe(6);
    expect(up.transfer.retried).toBe(3);
    expect(up.transfer.peakConcurrency).toBeLessThanOrEqual(8);
    const puts = (await moto.calls()).filter((c) => /^PUT \/snapshots\//.test(c.action));
    expect(puts.filter((c) => c.status === 400)).toHaveLength(6);
    expect(puts.filter((c) => c.status === 500)).toHaveLength(3);
    const back = join(dir, 'throttle.back.raw');
    await downloadSnapshot({ snapshotId: up.snapshotId, file: back }, { ebs });
    expect(await sha(back)).toBe(await sha(file));
    await up.delete();
  });

  it('a write that keeps failing deletes the new snapshot and says which snapshot', async () => {
    const file = await image('fail.raw', 64, [0, 1, 2]);
    await moto.setKnobs({ ebs_fail_blocks: 1000 });
    const id = buildId();
    const error = await uploadSnapshot({ file, buildId: id }, { ebs, ec2 }).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'AwsError', phase: 'upload' });
    expect((error as Error).message).toMatch(/PutSnapshotBlock failed .*snap-/);
    expect(await snapshotsOf(id)).toEqual([]);
  });

  it('retries a block whose data does not match its checksum', async () => {
    const file = await image('corrupt.raw', 64, [7, 8]);
    const up = await uploadSnapshot({ file, buildId: buildId() }, { ebs, ec2 });
    await moto.setKnobs({ ebs_corrupt_reads: 2 });
    const back = join(dir, 'corrupt.back.raw');
    const down = await downloadSnapshot({ snapshotId: up.snapshotId, file: back }, { ebs });
    expect(down.transfer.retried).toBe(2);
    expect(await sha(back)).toBe(await sha(file));
    await moto.setKnobs({ ebs_corrupt_reads: 1000 });
    const error = await downloadSnapshot({ snapshotId: up.snapshotId, file: join(dir, 'c2.raw') }, { ebs }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(BlockTransferError);
    expect((error as BlockTransferError).phase).toBe('download');
    expect([7, 8]).toContain((error as BlockTransferError).blockIndex);
    await up.delete();
  });

  it('retries throttled and failed reads; the image read back is whole', async () => {
    const file = await image('flaky-reads.raw', 64, [2, 4, 6, 8]);
    const up = await uploadSnapshot({ file, buildId: buildId() }, { ebs, ec2 });
    await moto.setKnobs({ ebs_fail_reads: 2, ebs_throttle: { actions: ['GetSnapshotBlock'], burst: 3 } });
    const back = join(dir, 'flaky-reads.back.raw');
    const down = await downloadSnapshot({ snapshotId: up.snapshotId, file: back }, { ebs });
    expect(down.transfer).toMatchObject({ throttled: 3, retried: 2 });
    expect(down.blocksDownloaded).toBe(4);
    expect(await sha(back)).toBe(await sha(file));
    await up.delete();
  });

  it('resumes an interrupted download: verified blocks are kept, only the rest is fetched', async () => {
    const blocks = Array.from({ length: 40 }, (_, i) => i * 3);
    const file = await image('resume.raw', 64, blocks);
    const up = await uploadSnapshot({ file, buildId: buildId() }, { ebs, ec2 });
    const back = join(dir, 'resume.back.raw');
    const abort = new AbortController();
    // Interrupt after the 10th block has arrived, counted at the client: progress events are
    // batched, so on a fast server they may come only once the whole download is done.
    let received = 0;
    ebs.middlewareStack.add(
      (next) => async (args) => {
        const out = await next(args);
        if ((args.input as { BlockIndex?: number }).BlockIndex !== undefined && ++received === 10)
          abort.abort(new Error('stop'));
        return out;
      },
      { step: 'initialize', name: 'interrupt-after-10-blocks' },
    );
    const first = await downloadSnapshot(
      { snapshotId: up.snapshotId, file: back, concurrency: 2 },
      { ebs, signal: abort.signal },
    )
      .catch((e: unknown) => e)
      .finally(() => ebs.middlewareStack.remove('interrupt-after-10-blocks'));
    expect(first).toMatchObject({ message: 'stop' });
    const again = await downloadSnapshot({ snapshotId: up.snapshotId, file: back, concurrency: 2 }, { ebs });
    // Blocks verified and written before the interruption are kept (the 10th may still be in flight).
    expect(again.blocksResumed).toBeGreaterThanOrEqual(8);
    expect(again.blocksDownloaded).toBeLessThan(40);
    expect(again.blocksResumed + again.blocksDownloaded).toBe(40);
    expect(await sha(back)).toBe(await sha(file));
    await up.delete();
  });

  it("encrypts: with a key and no parent; a child inherits its parent's encryption", async () => {
    const file = await image('enc.raw', 64, [0]);
    const key = 'arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555';
    const parent = await uploadSnapshot({ file, encrypted: true, kmsKeyArn: key, buildId: buildId() }, { ebs, ec2 });
    const child = await uploadSnapshot(
      { file, parentSnapshotId: parent.snapshotId, changedBlocks: [], buildId: buildId() },
      { ebs, ec2 },
    );
    const snaps = (await ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [parent.snapshotId, child.snapshotId] })))
      .Snapshots;
    expect(snaps?.map((s) => [s.Encrypted, s.KmsKeyId])).toEqual([
      [true, key],
      [true, key],
    ]);
    await child.delete();
    await parent.delete();
  });

  it('rejects bad input before creating anything', async () => {
    const file = await image('bad.raw', 64, [0]);
    await moto.resetCalls();
    const cases: [Parameters<typeof uploadSnapshot>[0], RegExp][] = [
      [{ file, parentSnapshotId: 'snap-0123', encrypted: true }, /encrypted/],
      [{ file, kmsKeyArn: 'arn:aws:kms:us-east-1:1:key/x' }, /kmsKeyArn.*encrypted: true/],
      [{ file, parentSnapshotId: 'ami-1' }, /parentSnapshotId/],
      [{ file, concurrency: 0 }, /concurrency/],
      [{ file: join(dir, 'missing.raw') }, /file.*cannot be read/],
      [{ file, changedBlocks: [5000] }, /changedBlocks.*past the end/],
    ];
    for (const [input, message] of cases) {
      const error = await uploadSnapshot(input, { ebs, ec2 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toMatch(message);
    }
    await expect(downloadSnapshot({ snapshotId: 'vol-1', file }, { ebs })).rejects.toThrow(/snapshotId/);
    expect(await moto.calls()).toEqual([]);
  });
});

describe('registerImage', () => {
  it('registers an AMI on an uploaded snapshot; a failed registration keeps a snapshot it does not own', async () => {
    const file = await image('reg.raw', 64, [0, 1]);
    const id = buildId();
    const up = await uploadSnapshot({ file, buildId: id }, { ebs, ec2 });
    const image1 = await registerImage(
      {
        snapshotId: up.snapshotId,
        name: `ebs-direct-${id}`,
        rootDeviceName: '/dev/xvda',
        blockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { VolumeSize: 1, VolumeType: 'gp3' } }],
        buildId: id,
      },
      { ec2 },
    );
    const described = (await ec2.send(new DescribeImagesCommand({ ImageIds: [image1.imageId] }))).Images?.[0];
    expect(described?.State).toBe('available');
    expect(image1.snapshotIds).toEqual([up.snapshotId]);
    await image1.deregister();
    expect(await snapshotsOf(id)).toEqual([]);

    const up2 = await uploadSnapshot({ file, buildId: id }, { ebs, ec2 });
    const error = await registerImage({ snapshotId: up2.snapshotId, name: 'x' }, { ec2 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect(await snapshotsOf(id)).toEqual([up2.snapshotId]);
    await up2.delete();
  });
});

describe('cacheSnapshot', () => {
  it('downloads once, then nothing; a newer snapshot of the lineage downloads only its changed blocks', async () => {
    const cacheDir = join(dir, 'cache');
    const baseFile = await image('cache-base.raw', 64, [0, 1, 2, 30]);
    const base = await uploadSnapshot({ file: baseFile, buildId: buildId() }, { ebs, ec2 });
    const gets = async (): Promise<number> =>
      (await moto.calls()).filter((c) => /^GET \/snapshots\/.*\/blocks\/\d+$/.test(c.action)).length;

    await moto.resetCalls();
    const cold = await cacheSnapshot({ snapshotId: base.snapshotId, cacheDir }, { ebs });
    expect(cold).toMatchObject({ source: 'full', blocksDownloaded: 4 });
    expect(await gets()).toBe(4);
    expect(await sha(cold.file)).toBe(await sha(baseFile));

    await moto.resetCalls();
    const warm = await cacheSnapshot({ snapshotId: base.snapshotId, cacheDir }, { ebs });
    expect(warm).toMatchObject({ source: 'hit', blocksDownloaded: 0, file: cold.file });
    expect(await moto.calls()).toEqual([]);

    const newerFile = await image('cache-newer.raw', 64, [0, 1, 2, 30, 40]);
    const h = await open(newerFile, 'r+');
    await h.write(pattern(1, 5), 0, EBS_BLOCK_SIZE, EBS_BLOCK_SIZE);
    await h.close();
    const newer = await uploadSnapshot(
      { file: newerFile, parentSnapshotId: base.snapshotId, changedBlocks: [1, 40], buildId: buildId() },
      { ebs, ec2 },
    );
    const unrelatedFile = await image('cache-other.raw', 64, [3]);
    const unrelated = await uploadSnapshot({ file: unrelatedFile, buildId: buildId() }, { ebs, ec2 });

    await moto.resetCalls();
    const delta = await cacheSnapshot({ snapshotId: newer.snapshotId, cacheDir }, { ebs });
    expect(delta).toMatchObject({ source: 'delta', baseSnapshotId: base.snapshotId, blocksDownloaded: 2 });
    expect(await gets()).toBe(2);
    expect(await sha(delta.file)).toBe(await sha(newerFile));
    expect([...delta.checksums.keys()].sort((a, b) => a - b)).toEqual([0, 1, 2, 30, 40]);
    // The base entry is untouched.
    expect(await sha(cold.file)).toBe(await sha(baseFile));

    const other = await cacheSnapshot({ snapshotId: unrelated.snapshotId, cacheDir }, { ebs });
    expect(other).toMatchObject({ source: 'full', blocksDownloaded: 1 });
    expect((await readdir(cacheDir)).sort()).toEqual([base.snapshotId, newer.snapshotId, unrelated.snapshotId].sort());
    for (const s of [unrelated, newer, base]) await s.delete();
  });
});
