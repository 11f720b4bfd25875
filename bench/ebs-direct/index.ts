/**
 * EBS direct benchmark against the test EC2 (moto patched by test/ec2/patches/p50_ebs_direct.py):
 *
 * - the source: an ext4 file system of SIZE_MIB (default 2048) holding FILL_MIB (default 600) of
 *   files, registered as an AMI whose root snapshot was uploaded whole (every non-zero block, as
 *   coldsnap does: the reference);
 * - the source cache: blocks downloaded cold and warm;
 * - `buildAmi` with `via: 'ebs-direct'` and a provision that installs packages the way dpkg does:
 *   CHANGE_MIB (default 20) of new files in new directories, each written under a temporary name
 *   and renamed, the status database rewritten after each package, and 300 of the image's files
 *   read (as maintainer scripts and ld.so do). "Changed data" is the bytes the provision wrote;
 *   the upload is the 512 KiB blocks whose content differs from the source (target: within 1.2x).
 *   Run as builds did before (`relatime`, then `noatime`, each with ext4's default allocation:
 *   the provision puts `mb_stream_req` back to 16), with the build's defaults (`noatime`, packed
 *   allocation), and with the defaults for a LARGE_CHANGE_MIB (default 100) install. For each: the
 *   changed 4 KiB pages (file and directory data, or ext4 metadata by kind: journal, inode table,
 *   bitmaps, superblock and group descriptors), the changed 512 KiB blocks with new data against
 *   the fewest that could hold it, and those holding only metadata (what the surplus is made of);
 *   the change detection's blocks read and time, the whole-image scan it replaced against now;
 * - the same provision built the attach way (`via: 'attach'`, the test EC2 with instant states):
 *   wall time;
 * - upload throughput against concurrency (1, 4, 16, 64), same 128 blocks each time.
 *
 *   sudo npx tsx bench/ebs-direct/index.ts   (SIZE_MIB, FILL_MIB, CHANGE_MIB, LARGE_CHANGE_MIB override)
 *
 * Disk: the source, its cache entry, the working copy and the test EC2's block store, each about
 * FILL_MIB; all in one temp directory (and the server's unlinked file), removed at the end.
 * Throughput and wall times are the test EC2's on this machine (Python, loopback), not AWS's.
 */
import { mkdir, mkdtemp, open, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { EBSClient } from '@aws-sdk/client-ebs';
import { RegisterImageCommand } from '@aws-sdk/client-ec2';
import { EBS_BLOCK_SIZE, createEbsClient, isZeroBlock } from '../../src/aws/ebs/blocks.js';
import { cacheSnapshot } from '../../src/aws/ebs/cache.js';
import type { CachedSnapshot } from '../../src/aws/ebs/cache.js';
import { changedBlocks } from '../../src/aws/ebs/changes.js';
import { toCtx } from '../../src/internal/ctx.js';
import { uploadSnapshot } from '../../src/aws/ebs/upload.js';
import { run } from '../../src/host/exec.js';
import { attachLoop } from '../../src/host/loop.js';
import type { LoopDevice } from '../../src/host/loop.js';
import { buildAmi } from '../../src/pipeline/build-ami.js';
import type { BuildAmiOptions, BuildResult } from '../../src/pipeline/build-ami.js';
import type { BuildConfig } from '../../src/config/types.js';
import { motoEc2, startBuildHost, startMoto } from '../../fixtures/moto.js';
import { changeBreakdown, ext4Map } from './ext4-map.js';
import type { ChangeBreakdown } from './ext4-map.js';
import { installPackages, makeSource } from './workload.js';

const MiB = 1024 * 1024;
const PAGE = 4096;
const SIZE_MIB = Number(process.env['SIZE_MIB'] ?? 2048);
const FILL_MIB = Number(process.env['FILL_MIB'] ?? 600);
const CHANGE_MIB = Number(process.env['CHANGE_MIB'] ?? 20);
const LARGE_CHANGE_MIB = Number(process.env['LARGE_CHANGE_MIB'] ?? 100);
const REGION = 'us-east-1';
const quiet = { warn: () => {}, error: () => {} };

function row(label: string, value: string | number): void {
  console.log(`| ${label.padEnd(66)} | ${String(value).padStart(14)} |`);
}

/**
 * The change detection the build used before (kept here as the reference): every block of the
 * working copy read, each compared with the source's. Returns the changed block count.
 */
async function fullScan(work: string, source: CachedSnapshot): Promise<number> {
  const w = await open(work, 'r');
  const s = await open(source.file, 'r');
  const a = Buffer.alloc(EBS_BLOCK_SIZE);
  const b = Buffer.alloc(EBS_BLOCK_SIZE);
  let changed = 0;
  try {
    const count = Math.ceil((await w.stat()).size / EBS_BLOCK_SIZE);
    for (let i = 0; i < count; i++) {
      a.fill(0);
      await w.read(a, 0, EBS_BLOCK_SIZE, i * EBS_BLOCK_SIZE);
      if (!source.checksums.has(i)) {
        if (!isZeroBlock(a)) changed++;
        continue;
      }
      b.fill(0);
      await s.read(b, 0, EBS_BLOCK_SIZE, i * EBS_BLOCK_SIZE);
      if (!a.equals(b)) changed++;
    }
  } finally {
    await w.close();
    await s.close();
  }
  return changed;
}

/** Best of three runs of `fn` in ms (the first also warms the page cache for both methods), and its result. */
async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  let best = Infinity;
  let value: T | undefined;
  for (let n = 0; n < 3; n++) {
    const t = performance.now();
    value = await fn();
    best = Math.min(best, performance.now() - t);
  }
  return { ms: best, value: value! };
}

/** Changed metadata pages of every kind. */
const pagesOfMetadata = (b: ChangeBreakdown): number =>
  Object.entries(b.pages).reduce((n, [k, v]) => (k === 'data' ? n : n + v), 0);

/** The phases that take time, in s. */
function phaseRows(label: string, result: BuildResult): void {
  const t = result.timings;
  const parts = ['download', 'volume', 'attach', 'mount', 'provision', 'unmount', 'upload', 'snapshot', 'register']
    .filter((p) => (t[p as keyof typeof t] ?? 0) >= 50)
    .map((p) => `${p} ${((t[p as keyof typeof t] ?? 0) / 1000).toFixed(1)}`);
  console.log(`|   ${label} phases (s): ${parts.join(', ')}`);
}

const dir = await mkdtemp(join(tmpdir(), 'ami-chroot-bench-ebs-'));
const moto = await startMoto();
const access = { region: REGION, accessKey: 'testing', secretKey: 'testing', maxRetries: 1 } as const;
const ebs: EBSClient = createEbsClient(access, moto.endpoint);
const ec2 = motoEc2(moto.endpoint, REGION);
const loops: LoopDevice[] = [];
try {
  console.log(
    `EBS direct against the test EC2: ${SIZE_MIB} MiB ext4 disk, ${FILL_MIB} MiB of files, a ${CHANGE_MIB} MiB package install\n`,
  );
  console.log(`| ${'measure'.padEnd(66)} | ${'value'.padStart(14)} |`);
  console.log(`|${'-'.repeat(68)}|${'-'.repeat(16)}|`);

  const source = join(dir, 'source.raw');
  await makeSource(source, join(dir, 'mnt-source'), SIZE_MIB, FILL_MIB);
  let t = performance.now();
  const whole = await uploadSnapshot({ file: source, buildId: 'bench' }, { ebs, ec2, logger: quiet });
  row('whole-image upload (reference, as coldsnap): blocks', whole.blocksWritten);
  row('whole-image upload: MiB', (whole.bytesWritten / MiB).toFixed(1));
  row('whole-image upload: s', ((performance.now() - t) / 1000).toFixed(1));
  const ami = await ec2.send(
    new RegisterImageCommand({
      Name: 'bench-source',
      RootDeviceName: '/dev/xvda',
      Architecture: 'x86_64',
      VirtualizationType: 'hvm',
      BlockDeviceMappings: [
        {
          DeviceName: '/dev/xvda',
          Ebs: { SnapshotId: whole.snapshotId, VolumeSize: SIZE_MIB / 1024, VolumeType: 'gp3' },
        },
      ],
    }),
  );

  const cacheDir = join(dir, 'cache');
  t = performance.now();
  const cold = await cacheSnapshot({ snapshotId: whole.snapshotId, cacheDir }, { ebs, logger: quiet });
  row('cache cold: blocks downloaded', cold.blocksDownloaded);
  row('cache cold: s', ((performance.now() - t) / 1000).toFixed(1));
  t = performance.now();
  const warm = await cacheSnapshot({ snapshotId: whole.snapshotId, cacheDir }, { ebs, logger: quiet });
  row('cache warm: blocks downloaded', warm.blocksDownloaded);
  row('cache warm: ms', (performance.now() - t).toFixed(0));

  const config = (extra: Partial<BuildConfig>): BuildConfig => ({
    region: REGION,
    sourceAmi: ami.ImageId!,
    amiName: `bench-{{timestamp}}-${Math.random().toString(36).slice(2, 8)}`,
    mountPath: join(dir, 'mnt/{{.Device}}'),
    mountPartition: '0',
    copyFiles: [],
    chrootMounts: [],
    ...extra,
  });
  const options = (extra: Partial<BuildAmiOptions>): BuildAmiOptions => ({
    ec2: () => ec2,
    logger: quiet,
    stateDir: join(dir, 'state'),
    ...extra,
  });

  const map = await ext4Map(source);
  /**
   * One `via: 'ebs-direct'` build of a `changeMib` package install. `defaultAllocation` puts
   * ext4's `mb_stream_req` back to the kernel's default (16) in the provision, as builds did
   * before the working copy packed its allocations.
   */
  const direct = async (
    label: string,
    opts: { mountOptions?: readonly string[]; defaultAllocation?: boolean; changeMib: number; seed: number },
  ) => {
    let written = 0;
    let breakdown: ChangeBreakdown | undefined;
    let scan = { full: 0, fullMs: 0, now: 0, nowMs: 0, examined: 0, total: 0 };
    // The benchmark's own diffs are not the build's: their time is taken out.
    let benchMs = 0;
    const cfg = config({
      via: 'ebs-direct',
      cacheDir,
      ...(opts.mountOptions ? { mountOptions: opts.mountOptions } : {}),
    });
    const result: BuildResult = await buildAmi(
      cfg,
      async (_chroot, build) => {
        if (opts.defaultAllocation) await writeFile(`/sys/fs/ext4/${basename(build.hostDevice)}/mb_stream_req`, '16');
        written = await installPackages(build.mountPath, opts.seed, opts.changeMib);
      },
      options({
        ebs,
        hooks: {
          after: async (phase) => {
            if (phase !== 'detach') return;
            const started = performance.now();
            const work = join(cacheDir, 'work', (await readdir(join(cacheDir, 'work')))[0]!);
            breakdown = await changeBreakdown(work, cold.file, map);
            const full = await timed(() => fullScan(work, cold));
            const now = await timed(() => changedBlocks(work, cold, toCtx({ logger: quiet })));
            scan = {
              full: full.value,
              fullMs: full.ms,
              now: now.value.changed.length,
              nowMs: now.ms,
              examined: now.value.examined,
              total: now.value.total,
            };
            benchMs = performance.now() - started;
          },
        },
      }),
    );
    const up = result.ebsDirect!;
    const b = breakdown!;
    const meta = Object.entries(b.metadataOnly)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    row(`${label}: data written by the provision, MiB`, (written / MiB).toFixed(1));
    row(`${label}: changed 4 KiB pages: data / metadata`, `${b.pages.data} / ${b.blocks && pagesOfMetadata(b)}`);
    row(`${label}: changed 512 KiB blocks`, b.blocks);
    row(
      `${label}:   with new data (fewest possible)`,
      `${b.dataBlocks} (${Math.ceil(b.pages.data / (EBS_BLOCK_SIZE / PAGE))})`,
    );
    console.log(`|   ${label}: metadata-only blocks: ${meta || 'none'}`);
    row(`${label}: blocks uploaded`, up.blocksWritten);
    row(`${label}: MiB uploaded`, (up.bytesWritten / MiB).toFixed(1));
    row(`${label}: upload / data written (target <= 1.2)`, (up.bytesWritten / written).toFixed(2));
    row(`${label}: whole-image upload / this upload`, (whole.bytesWritten / up.bytesWritten).toFixed(1));
    row(`${label}: change detection, blocks read of ${scan.total}: before / now`, `${scan.total} / ${scan.examined}`);
    row(`${label}: change detection, ms: before / now`, `${scan.fullMs.toFixed(0)} / ${scan.nowMs.toFixed(0)}`);
    if (scan.full !== scan.now || scan.now !== up.changedBlocks)
      throw new Error(`change detection disagrees: full scan ${scan.full}, now ${scan.now}, build ${up.changedBlocks}`);
    row(`${label}: build wall time, s`, ((result.durationMs - benchMs) / 1000).toFixed(1));
    phaseRows(label, result);
    return { ...result, durationMs: result.durationMs - benchMs };
  };
  await direct('relatime, ext4 default allocation', {
    mountOptions: ['relatime'],
    defaultAllocation: true,
    changeMib: CHANGE_MIB,
    seed: 1,
  });
  await direct('noatime, ext4 default allocation', { defaultAllocation: true, changeMib: CHANGE_MIB, seed: 2 });
  const after = await direct('the default (noatime, packed allocation)', { changeMib: CHANGE_MIB, seed: 3 });
  await direct(`the default, ${LARGE_CHANGE_MIB} MiB install`, { changeMib: LARGE_CHANGE_MIB, seed: 4 });

  // The same work the attach way: a volume from the same snapshot, its device a loop over a copy.
  const host = await startBuildHost(ec2);
  await mkdir(join(dir, 'dev'), { recursive: true });
  const attachResult = await buildAmi(
    config({ lockDir: join(dir, 'lock') }),
    async (_chroot, build) => {
      await installPackages(build.mountPath, 5, CHANGE_MIB);
    },
    options({
      hostIdentity: { instanceId: host.instanceId, availabilityZone: host.availabilityZone, region: REGION },
      devRoot: join(dir, 'dev'),
      resolveDevice: async ({ volumeId }) => {
        const copy = join(dir, `${volumeId}.raw`);
        await run('cp', ['--sparse=always', '--reflink=auto', source, copy]);
        const loop = await attachLoop({ file: copy, stateDir: false });
        loops.push(loop);
        return loop.device;
      },
    }),
  );
  row('attach build, test EC2 with instant states: wall time, s', (attachResult.durationMs / 1000).toFixed(1));
  phaseRows('attach', attachResult);
  row('ebs-direct build (warm cache), same provision: wall time, s', (after.durationMs / 1000).toFixed(1));

  const sample = [...cold.checksums.keys()].slice(0, 128);
  for (const concurrency of [1, 4, 16, 64]) {
    t = performance.now();
    const up = await uploadSnapshot(
      { file: source, changedBlocks: sample, concurrency, buildId: 'bench' },
      { ebs, ec2, logger: quiet },
    );
    const s = (performance.now() - t) / 1000;
    row(`upload ${sample.length} blocks at concurrency ${concurrency}: MiB/s`, (up.bytesWritten / MiB / s).toFixed(1));
    await up.delete();
  }
  row('block size (bytes)', EBS_BLOCK_SIZE);
} finally {
  for (const loop of loops) await loop.detach().catch(() => {});
  ebs.destroy();
  ec2.destroy();
  await moto.stop();
  await rm(dir, { recursive: true, force: true });
}
