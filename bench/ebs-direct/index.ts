/**
 * EBS direct benchmark against the test EC2 (moto patched by test/ec2/patches/p50_ebs_direct.py):
 *
 * - a source disk of SIZE_MIB (default 2048) with FILL_MIB (default 600) written, uploaded whole
 *   (every non-zero block, as coldsnap does: the reference);
 * - the source cache: blocks downloaded cold and warm;
 * - a "provision" on a sparse working copy that writes CHANGE_MIB (default 20) as one file's worth
 *   of contiguous data plus 256 scattered 4 KiB metadata writes; the changed blocks found and
 *   uploaded on top of the source, against the data written (target: within 1.2x);
 * - upload throughput against concurrency (1, 4, 16, 64), same blocks each time.
 *
 *   npx tsx bench/ebs-direct/index.ts            (SIZE_MIB, FILL_MIB, CHANGE_MIB override)
 *
 * Disk: the source, its cache entry, the working copy and the test EC2's block store, each about
 * FILL_MIB; all in one temp directory (and the server's unlinked file), removed at the end.
 * Throughput is the test EC2's on this machine (Python, loopback), not AWS's.
 */
import { spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAwsClients } from '../../src/aws/clients.js';
import { EBS_BLOCK_SIZE, createEbsClient } from '../../src/aws/ebs/blocks.js';
import { cacheSnapshot } from '../../src/aws/ebs/cache.js';
import { uploadSnapshot } from '../../src/aws/ebs/upload.js';
import { changedBlocks } from '../../src/pipeline/build-direct.js';
import { startMoto } from '../../fixtures/moto.js';
import { createRng } from '../lib/prng.js';

const MiB = 1024 * 1024;
const SIZE_MIB = Number(process.env['SIZE_MIB'] ?? 2048);
const FILL_MIB = Number(process.env['FILL_MIB'] ?? 600);
const CHANGE_MIB = Number(process.env['CHANGE_MIB'] ?? 20);

/** Distinct positions in [0, range), seeded (runs compare across machines). */
function positions(count: number, range: number, seed: number): number[] {
  if (count > range) throw new Error(`cannot pick ${count} distinct positions out of ${range}`);
  const rng = createRng(seed, 'ebs-direct');
  const out = new Set<number>();
  while (out.size < count) out.add(rng.int(0, range - 1));
  return [...out];
}

async function writeChunks(file: string, chunks: readonly { offset: number; length: number }[]): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    for (const { offset, length } of chunks) {
      const data = randomFillSync(Buffer.alloc(length));
      await handle.write(data, 0, length, offset);
    }
  } finally {
    await handle.close();
  }
}

function row(label: string, value: string | number): void {
  console.log(`| ${label.padEnd(58)} | ${String(value).padStart(14)} |`);
}

const dir = await mkdtemp(join(tmpdir(), 'ami-chroot-bench-ebs-'));
const moto = await startMoto();
const access = { region: 'us-east-1', accessKey: 'testing', secretKey: 'testing', maxRetries: 1 } as const;
const clients = createAwsClients({ ...access, customEndpointEc2: moto.endpoint });
const ebs = createEbsClient(access, moto.endpoint);
const ec2 = clients.ec2();
const quiet = { warn: () => {}, error: () => {} };
try {
  console.log(
    `EBS direct against the test EC2: ${SIZE_MIB} MiB disk, ${FILL_MIB} MiB written, ${CHANGE_MIB} MiB changed\n`,
  );
  console.log(`| ${'measure'.padEnd(58)} | ${'value'.padStart(14)} |`);
  console.log(`|${'-'.repeat(60)}|${'-'.repeat(16)}|`);

  // The source: FILL_MIB in 1 MiB extents spread over the disk.
  const source = join(dir, 'source.raw');
  await (await open(source, 'w')).close();
  const h = await open(source, 'r+');
  await h.truncate(SIZE_MIB * MiB);
  await h.close();
  await writeChunks(
    source,
    positions(FILL_MIB, SIZE_MIB, 7).map((m) => ({ offset: m * MiB, length: MiB })),
  );

  let t = performance.now();
  const whole = await uploadSnapshot({ file: source, buildId: 'bench' }, { ebs, ec2, logger: quiet });
  const wholeMs = performance.now() - t;
  row('whole-image upload (reference): blocks', whole.blocksWritten);
  row('whole-image upload: MiB', (whole.bytesWritten / MiB).toFixed(1));
  row('whole-image upload: s', (wholeMs / 1000).toFixed(1));

  const cacheDir = join(dir, 'cache');
  t = performance.now();
  const cold = await cacheSnapshot({ snapshotId: whole.snapshotId, cacheDir }, { ebs, logger: quiet });
  row('cache cold: blocks downloaded', cold.blocksDownloaded);
  row('cache cold: s', ((performance.now() - t) / 1000).toFixed(1));
  t = performance.now();
  const warm = await cacheSnapshot({ snapshotId: whole.snapshotId, cacheDir }, { ebs, logger: quiet });
  row('cache warm: blocks downloaded', warm.blocksDownloaded);
  row('cache warm: ms', (performance.now() - t).toFixed(0));

  // The working copy (sparse, as buildImage makes it) and the provision's writes.
  const work = join(dir, 'work.raw');
  t = performance.now();
  const cp = spawnSync('cp', ['--sparse=always', '--reflink=auto', cold.file, work]);
  if (cp.status !== 0) throw new Error(`cp failed: ${cp.stderr.toString()}`);
  row('working copy (cp --sparse=always --reflink=auto): ms', (performance.now() - t).toFixed(0));
  const fileStart = positions(1, SIZE_MIB - CHANGE_MIB, 11)[0]! * MiB;
  const metadata = positions(256, (SIZE_MIB * MiB) / 4096, 13).map((p) => ({ offset: p * 4096, length: 4096 }));
  await writeChunks(work, [{ offset: fileStart, length: CHANGE_MIB * MiB }, ...metadata]);
  const writtenBytes = CHANGE_MIB * MiB + metadata.length * 4096;

  t = performance.now();
  const changed = await changedBlocks(work, cold);
  row('changed blocks found (byte compare with the cache): ms', (performance.now() - t).toFixed(0));
  t = performance.now();
  const delta = await uploadSnapshot(
    { file: work, parentSnapshotId: whole.snapshotId, changedBlocks: changed, buildId: 'bench' },
    { ebs, ec2, logger: quiet },
  );
  const deltaMs = performance.now() - t;
  row('data written by the provision: MiB', (writtenBytes / MiB).toFixed(1));
  row('changed-block upload: blocks', delta.blocksWritten);
  row('changed-block upload: MiB', (delta.bytesWritten / MiB).toFixed(1));
  row('changed-block upload / data written', (delta.bytesWritten / writtenBytes).toFixed(2));
  row(
    'changed-block upload / whole data of the 20 MiB file alone',
    (delta.bytesWritten / (CHANGE_MIB * MiB)).toFixed(2),
  );
  row('changed-block upload: s', (deltaMs / 1000).toFixed(1));
  row('whole-image upload / changed-block upload (bytes)', (whole.bytesWritten / delta.bytesWritten).toFixed(1));

  const sample = changed.slice(0, 128);
  for (const concurrency of [1, 4, 16, 64]) {
    t = performance.now();
    const up = await uploadSnapshot(
      { file: work, parentSnapshotId: whole.snapshotId, changedBlocks: sample, concurrency, buildId: 'bench' },
      { ebs, ec2, logger: quiet },
    );
    const s = (performance.now() - t) / 1000;
    row(`upload ${sample.length} blocks at concurrency ${concurrency}: MiB/s`, (up.bytesWritten / MiB / s).toFixed(1));
    await up.delete();
  }
  await delta.delete();
  await whole.delete();
  row('block size (bytes)', EBS_BLOCK_SIZE);
} finally {
  ebs.destroy();
  clients.destroy();
  await moto.stop();
  await rm(dir, { recursive: true, force: true });
}
