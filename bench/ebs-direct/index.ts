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
 *   Run twice: with `relatime` (the kernel default, what the build used before) and with the
 *   build's default (`noatime`). For each, the changed 4 KiB pages of the file system and how they
 *   spread over the 512 KiB blocks;
 * - the same provision built the attach way (`via: 'attach'`, the test EC2 with instant states):
 *   wall time;
 * - upload throughput against concurrency (1, 4, 16, 64), same 128 blocks each time.
 *
 *   sudo npx tsx bench/ebs-direct/index.ts            (SIZE_MIB, FILL_MIB, CHANGE_MIB override)
 *
 * Disk: the source, its cache entry, the working copy and the test EC2's block store, each about
 * FILL_MIB; all in one temp directory (and the server's unlinked file), removed at the end.
 * Throughput and wall times are the test EC2's on this machine (Python, loopback), not AWS's.
 */
import { randomFillSync } from 'node:crypto';
import { mkdir, mkdtemp, open, readFile, readdir, rename, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EBSClient } from '@aws-sdk/client-ebs';
import { RegisterImageCommand } from '@aws-sdk/client-ec2';
import { EBS_BLOCK_SIZE, createEbsClient } from '../../src/aws/ebs/blocks.js';
import { cacheSnapshot } from '../../src/aws/ebs/cache.js';
import { uploadSnapshot } from '../../src/aws/ebs/upload.js';
import { run } from '../../src/host/exec.js';
import { attachLoop } from '../../src/host/loop.js';
import type { LoopDevice } from '../../src/host/loop.js';
import { buildAmi } from '../../src/pipeline/build-ami.js';
import type { BuildAmiOptions, BuildResult } from '../../src/pipeline/build-ami.js';
import type { BuildConfig } from '../../src/config/types.js';
import { motoEc2, startBuildHost, startMoto } from '../../fixtures/moto.js';
import { createRng } from '../lib/prng.js';

const MiB = 1024 * 1024;
const PAGE = 4096;
const SIZE_MIB = Number(process.env['SIZE_MIB'] ?? 2048);
const FILL_MIB = Number(process.env['FILL_MIB'] ?? 600);
const CHANGE_MIB = Number(process.env['CHANGE_MIB'] ?? 20);
const REGION = 'us-east-1';
const quiet = { warn: () => {}, error: () => {} };

function row(label: string, value: string | number): void {
  console.log(`| ${label.padEnd(66)} | ${String(value).padStart(14)} |`);
}

/** Random (incompressible) bytes. */
const noise = (length: number): Buffer => randomFillSync(Buffer.alloc(length));

/** The source: an ext4 file system whose itables are initialised (as a booted image's are), FILL_MIB of files. */
async function makeSource(file: string, mnt: string): Promise<void> {
  await writeFile(file, '');
  await truncate(file, SIZE_MIB * MiB);
  await run('mkfs.ext4', ['-q', '-F', '-L', 'root', '-E', 'lazy_itable_init=0,lazy_journal_init=0', file]);
  const loop = await attachLoop(file, { stateDir: false });
  try {
    await mkdir(mnt, { recursive: true });
    await run('mount', [loop.device, mnt]);
    try {
      const rng = createRng(7, 'ebs-direct-source');
      let left = FILL_MIB * MiB;
      for (let d = 0; left > 0; d++) {
        const dir = join(mnt, 'usr', 'share', `pkg${d}`);
        await mkdir(dir, { recursive: true });
        for (let f = 0; f < 40 && left > 0; f++) {
          const size = Math.min(left, rng.int(1, 64) * 16 * 1024);
          await writeFile(join(dir, `file${f}`), noise(size));
          left -= size;
        }
      }
      await mkdir(join(mnt, 'var', 'lib', 'dpkg'), { recursive: true });
      await writeFile(join(mnt, 'var', 'lib', 'dpkg', 'status'), 'Package: base\nStatus: install ok installed\n\n');
    } finally {
      await run('umount', [mnt]);
    }
  } finally {
    await loop.detach();
  }
}

/**
 * A package install as dpkg does it, on the mounted file system: new files written under a
 * temporary name and renamed, the status file rewritten after each package, existing files read.
 * Returns the bytes written.
 */
async function installPackages(root: string, seed: number): Promise<number> {
  const rng = createRng(seed, 'ebs-direct-provision');
  let written = 0;
  const existing = (await readdir(join(root, 'usr', 'share'))).filter((n) => n.startsWith('pkg'));
  for (let i = 0; i < 300; i++) {
    const dir = join(root, 'usr', 'share', existing[rng.int(0, existing.length - 1)]!);
    const names = await readdir(dir);
    await readFile(join(dir, names[rng.int(0, names.length - 1)]!));
  }
  const status = join(root, 'var', 'lib', 'dpkg', 'status');
  let left = CHANGE_MIB * MiB;
  for (let p = 0; left > 0; p++) {
    const dir = join(root, 'usr', 'lib', `new-pkg${seed}-${p}`);
    await mkdir(dir, { recursive: true });
    for (let f = 0; f < 25 && left > 0; f++) {
      const size = Math.min(left, rng.int(1, 48) * 4096);
      const target = join(dir, `lib${f}.so`);
      await writeFile(`${target}.dpkg-new`, noise(size));
      await rename(`${target}.dpkg-new`, target);
      left -= size;
      written += size;
    }
    const text = `${await readFile(status, 'utf8')}Package: new-pkg${p}\nStatus: install ok installed\n\n`;
    await writeFile(`${status}-new`, text);
    await rename(`${status}-new`, status);
    written += text.length;
  }
  return written;
}

/** Changed 4 KiB pages and 512 KiB blocks of `work` against `source`, and pages per changed block. */
async function pageDiff(
  work: string,
  source: string,
): Promise<{ pages: number; blocks: number; sparseBlocks: number }> {
  const w = await open(work, 'r');
  const s = await open(source, 'r');
  const a = Buffer.alloc(EBS_BLOCK_SIZE);
  const b = Buffer.alloc(EBS_BLOCK_SIZE);
  let pages = 0;
  let blocks = 0;
  let sparseBlocks = 0;
  try {
    for (let i = 0; i < (SIZE_MIB * MiB) / EBS_BLOCK_SIZE; i++) {
      a.fill(0);
      b.fill(0);
      await w.read(a, 0, EBS_BLOCK_SIZE, i * EBS_BLOCK_SIZE);
      await s.read(b, 0, EBS_BLOCK_SIZE, i * EBS_BLOCK_SIZE);
      if (a.equals(b)) continue;
      let n = 0;
      for (let o = 0; o < EBS_BLOCK_SIZE; o += PAGE) if (a.compare(b, o, o + PAGE, o, o + PAGE) !== 0) n++;
      pages += n;
      blocks++;
      if (n <= 4) sparseBlocks++;
    }
  } finally {
    await w.close();
    await s.close();
  }
  return { pages, blocks, sparseBlocks };
}

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
  await makeSource(source, join(dir, 'mnt-source'));
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

  const direct = async (label: string, mountOptions: readonly string[] | undefined, seed: number) => {
    let written = 0;
    let diff = { pages: 0, blocks: 0, sparseBlocks: 0 };
    // The page-level diff is the benchmark's, not the build's: its time is taken out.
    let diffMs = 0;
    const cfg = config({ via: 'ebs-direct', cacheDir, ...(mountOptions ? { mountOptions } : {}) });
    const result: BuildResult = await buildAmi(
      cfg,
      async (_chroot, build) => {
        written = await installPackages(build.mountPath, seed);
      },
      options({
        ebs,
        hooks: {
          after: async (phase) => {
            if (phase !== 'detach') return;
            const started = performance.now();
            const work = join(cacheDir, 'work', (await readdir(join(cacheDir, 'work')))[0]!);
            diff = await pageDiff(work, cold.file);
            diffMs = performance.now() - started;
          },
        },
      }),
    );
    const up = result.ebsDirect!;
    row(`${label}: data written by the provision, MiB`, (written / MiB).toFixed(1));
    row(`${label}: 4 KiB pages changed (MiB)`, `${diff.pages} (${((diff.pages * PAGE) / MiB).toFixed(1)})`);
    row(`${label}: 512 KiB blocks changed (with <= 4 pages)`, `${diff.blocks} (${diff.sparseBlocks})`);
    row(`${label}: blocks uploaded`, up.blocksWritten);
    row(`${label}: MiB uploaded`, (up.bytesWritten / MiB).toFixed(1));
    row(`${label}: upload / data written (target <= 1.2)`, (up.bytesWritten / written).toFixed(2));
    row(`${label}: whole-image upload / this upload`, (whole.bytesWritten / up.bytesWritten).toFixed(1));
    row(`${label}: build wall time, s`, ((result.durationMs - diffMs) / 1000).toFixed(1));
    phaseRows(label, result);
    return { ...result, durationMs: result.durationMs - diffMs };
  };
  await direct('before (relatime)', ['relatime'], 1);
  const after = await direct('after (noatime, the default)', undefined, 2);

  // The same work the attach way: a volume from the same snapshot, its device a loop over a copy.
  const host = await startBuildHost(ec2);
  await mkdir(join(dir, 'dev'), { recursive: true });
  const attachResult = await buildAmi(
    config({ lockDir: join(dir, 'lock') }),
    async (_chroot, build) => {
      await installPackages(build.mountPath, 3);
    },
    options({
      hostIdentity: { instanceId: host.instanceId, availabilityZone: host.availabilityZone, region: REGION },
      devRoot: join(dir, 'dev'),
      resolveDevice: async ({ volumeId }) => {
        const copy = join(dir, `${volumeId}.raw`);
        await run('cp', ['--sparse=always', '--reflink=auto', source, copy]);
        const loop = await attachLoop(copy, { stateDir: false });
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
