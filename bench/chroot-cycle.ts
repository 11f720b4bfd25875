/**
 * Chroot cycle benchmark (issue 7, part 2): one provisioning cycle on a real loop device, as a
 * build does it between attaching the volume and snapshotting it.
 *
 *   sudo npx tsx bench/chroot-cycle.ts [--cycles 30] [--warmup 3]
 *
 * One cycle: mountChroot (root partition, the five default chroot mounts, copy /etc/resolv.conf,
 * service guard), a no-op provision (`/bin/true` run inside the chroot), then unmount (stop
 * leftover processes, remove the guard, restore the file, unmount everything and verify).
 * Per-step times come from the library's own `resource` events, timestamped as they arrive.
 * Each cycle is followed by the same cycle done with bare commands in one shell script, to
 * separate what the kernel and mount(8) cost from what the library adds.
 * Needs root, loop devices, busybox-static, sfdisk/partx/mkfs.ext4. Leaves nothing behind and
 * checks that (mountinfo, losetup) at the end.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { makeBusyboxImage } from '../fixtures/busybox-image.js';
import { createChroot } from '../src/chroot/chroot.js';
import { mountChroot, type MountedChroot } from '../src/chroot/mount.js';
import { attachLoop, loopDevicesOf, type LoopDevice } from '../src/host/loop.js';
import { run } from '../src/host/exec.js';
import { readMountInfo, unmountTree } from '../src/host/mounts.js';
import type { ProgressEvent } from '../src/types.js';
import { checkHostPrerequisites } from './lib/prereq.js';
import { formatTable, isMain, runAsScript, under, type Benchmark, type BenchResult } from './lib/report.js';
import { summarize, type Summary } from './lib/stats.js';

/**
 * Options of {@link runChrootCycleBench}.
 * @internal
 */
export interface ChrootCycleOptions {
  /** Measured cycles. @defaultValue 30 */
  readonly cycles?: number;
  /** Cycles run first and not measured (page cache, module loading). @defaultValue 3 */
  readonly warmup?: number;
}

/**
 * The target: a median cycle under 150 ms on the 2-core build machines.
 * @internal
 */
export const CHROOT_CYCLE_TARGET_MS = 150;

const TOOLS = ['losetup', 'partx', 'sfdisk', 'mkfs.ext4', 'mount', 'umount', 'chroot'] as const;

/** Says exactly what is missing rather than producing numbers from a half-working setup. */
function checkPrerequisites(): Promise<void> {
  return checkHostPrerequisites('the chroot cycle', TOOLS);
}

/**
 * A moment in a cycle and the step it ends.
 * @internal
 */
export interface Mark {
  readonly t: number;
  readonly step: string;
}

/**
 * Turns the timestamped marks of one cycle into named steps: each mark closes the step since
 * the previous one, and marks of the same step add up.
 * @internal
 */
export function stepDurations(start: number, marks: readonly Mark[]): Map<string, number> {
  const steps = new Map<string, number>();
  let previous = start;
  for (const mark of marks) {
    steps.set(mark.step, (steps.get(mark.step) ?? 0) + (mark.t - previous));
    previous = mark.t;
  }
  return steps;
}

/**
 * The step a library event closes, named after what was just done. The first removed-mount
 * event comes after the whole tree is unmounted and verified; the others only record it.
 * @internal
 */
export function stepOf(event: ProgressEvent, root: string | undefined, removedMountsSeen: number): string | undefined {
  if (event.type !== 'resource') return undefined;
  const inside = (id: string): string => (root === undefined ? id : `/${relative(root, id)}`.replace(/\/$/, '') || '/');
  if (event.action === 'created') {
    if (event.kind === 'mount')
      return root === undefined || event.id === root ? 'mount root partition' : `mount ${inside(event.id)}`;
    if (event.kind === 'file') return `copy ${inside(event.id)}`;
    if (event.kind === 'service-guard') return 'install service guard';
    return undefined;
  }
  if (event.kind === 'service-guard') return 'stop leftovers + remove guard';
  if (event.kind === 'file') return `restore ${inside(event.id)}`;
  if (event.kind === 'mount') return removedMountsSeen === 0 ? 'unmount all + verify' : 'journal updates';
  return undefined;
}

interface CycleTiming {
  readonly totalMs: number;
  readonly steps: Map<string, number>;
}

async function oneCycle(loop: LoopDevice, dir: string): Promise<CycleTiming> {
  const marks: Mark[] = [];
  let root: string | undefined;
  let removedMounts = 0;
  const onProgress = (event: ProgressEvent): void => {
    const t = performance.now();
    if (event.type === 'resource' && event.action === 'created' && event.kind === 'mount' && root === undefined)
      root = event.id;
    const step = stepOf(event, root, removedMounts);
    if (event.type === 'resource' && event.action === 'removed' && event.kind === 'mount') removedMounts++;
    if (step !== undefined) marks.push({ t, step });
  };
  const options = { onProgress, logger: { warn: () => {}, info: () => {} } };
  const start = performance.now();
  let mounted: MountedChroot | undefined;
  try {
    mounted = await mountChroot(
      { device: loop.device, mountPath: join(dir, 'mnt', '{{.Device}}'), stateDir: join(dir, 'state') },
      options,
    );
    marks.push({ t: performance.now(), step: 'mountChroot returns' });
    await createChroot(mounted, options).exec('/bin/true', [], { outputLevel: 'silent' });
    marks.push({ t: performance.now(), step: 'provision (/bin/true in the chroot)' });
    await mounted.unmount();
    marks.push({ t: performance.now(), step: 'release check + remove mount dir' });
  } finally {
    // A failed cycle must not leave mounts for the next one (or the machine): unmount is idempotent.
    await mounted?.unmount();
  }
  return { totalMs: performance.now() - start, steps: stepDurations(start, marks) };
}

/**
 * The same cycle with bare commands in one shell script: what the kernel and the mount tools
 * cost on this machine, without anything the library adds (journal, checks, file swap, guard,
 * verification). The library's overhead is the difference.
 */
const RAW_CYCLE = [
  'set -e',
  'm="$1"; p="$2"',
  'mount --make-private "$p" "$m"',
  'mount -t proc --make-private proc "$m/proc"',
  'mount -t sysfs --make-private sysfs "$m/sys"',
  'mount --bind --make-private /dev "$m/dev"',
  'mount -t devpts --make-private -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$m/dev/pts"',
  'mount -t binfmt_misc --make-private binfmt_misc "$m/proc/sys/fs/binfmt_misc"',
  'mv "$m/etc/resolv.conf" "$m/etc/resolv.conf.orig" && cp /etc/resolv.conf "$m/etc/resolv.conf"',
  'chroot "$m" /bin/true',
  'mv "$m/etc/resolv.conf.orig" "$m/etc/resolv.conf"',
  'umount "$m/proc/sys/fs/binfmt_misc" "$m/dev/pts" "$m/dev" "$m/sys" "$m/proc" "$m"',
].join('\n');

async function rawCycle(loop: LoopDevice, mountDir: string): Promise<number> {
  const partition = loop.partitions[0];
  if (partition === undefined) throw new Error(`No partition on ${loop.device} for the bare-commands cycle.`);
  const start = performance.now();
  try {
    await run('sh', ['-c', RAW_CYCLE, 'raw-cycle', mountDir, partition], { timeoutMs: 60_000 });
  } finally {
    // If the script stopped half-way, the library's unmount takes down what it left.
    if ((await readMountInfo()).some((m) => m.mountPoint === mountDir))
      await unmountTree(mountDir, { logger: { warn: () => {} } });
  }
  return performance.now() - start;
}

interface Leaks {
  readonly mounts: readonly string[];
  readonly loopDevices: readonly string[];
}

async function findLeaks(dir: string, image: string): Promise<Leaks> {
  const mounts = (await readMountInfo()).map((m) => m.mountPoint).filter((p) => p === dir || p.startsWith(`${dir}/`));
  return { mounts, loopDevices: await loopDevicesOf(image) };
}

/**
 * Runs the chroot cycle benchmark.
 * @throws {@link BenchPrerequisiteError} when not root or a tool is missing
 * @internal
 */
export async function runChrootCycleBench(options: ChrootCycleOptions = {}): Promise<BenchResult> {
  const cycles = options.cycles ?? 30;
  const warmup = options.warmup ?? 3;
  if (!Number.isInteger(cycles) || cycles < 1)
    throw new RangeError(`--cycles must be a positive integer, got ${cycles}`);
  if (!Number.isInteger(warmup) || warmup < 0) throw new RangeError(`--warmup must be a whole number, got ${warmup}`);
  await checkPrerequisites();

  const dir = await mkdtemp(join(tmpdir(), 'ami-chroot-bench-'));
  const image = join(dir, 'root.img');
  const timings: CycleTiming[] = [];
  const rawMs: number[] = [];
  const loadBefore = loadavg()[0]!;
  let loop: LoopDevice | undefined;
  let leaks: Leaks;
  try {
    await makeBusyboxImage(image, { tmpDir: dir });
    // The loop device stands for the attached EBS volume: attached once, outside the cycle.
    loop = await attachLoop({ file: image, stateDir: false });
    const rawDir = join(dir, 'raw');
    await mkdir(rawDir);
    // Alternate library and bare cycles so that changes in machine load hit both alike.
    for (let i = 0; i < warmup + cycles; i++) {
      const timing = await oneCycle(loop, dir);
      const raw = await rawCycle(loop, rawDir);
      if (i < warmup) continue;
      timings.push(timing);
      rawMs.push(raw);
    }
  } finally {
    await loop?.detach();
    leaks = await findLeaks(dir, image);
    // Only remove the directory when nothing is mounted under it (rm would descend into a mount).
    if (leaks.mounts.length === 0) await rm(dir, { recursive: true, force: true });
  }
  if (leaks.mounts.length > 0 || leaks.loopDevices.length > 0) {
    throw new Error(
      `The chroot cycle left ${[...leaks.mounts, ...leaks.loopDevices].join(', ')} behind (kept ${dir} for inspection).`,
    );
  }
  const loadAfter = loadavg()[0]!;
  const total = summarize(timings.map((t) => t.totalMs));
  const raw = summarize(rawMs);
  const stepNames = [...new Set(timings.flatMap((t) => [...t.steps.keys()]))];
  const steps: Record<string, Summary> = {};
  for (const name of stepNames) steps[name] = summarize(timings.map((t) => t.steps.get(name) ?? 0));

  const table = [
    `Chroot cycle: ${cycles} cycles after ${warmup} warm-up, busybox ext4 image on a loop device, Node ${process.version}`,
    '',
    formatTable(
      ['step', 'median ms', 'p95 ms', 'mean ms', 'max ms'],
      [
        ...stepNames.map((name) => [name, steps[name]!.p50, steps[name]!.p95, steps[name]!.mean, steps[name]!.max]),
        ['whole cycle (ami-chroot)', total.p50, total.p95, total.mean, total.max],
        ['same cycle, bare commands in one sh', raw.p50, raw.p95, raw.mean, raw.max],
      ],
    ),
    '',
    `Library overhead over bare commands (medians): ${(total.p50 - raw.p50).toFixed(0)} ms. ` +
      `Load average (1 min) ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after, on ${availableParallelism()} CPUs: ` +
      'on a busy machine every figure grows.',
    'Leaks after the run: none (no mount under the work directory, no loop device on the image; work directory removed).',
  ].join('\n');

  return {
    name: 'chroot-cycle',
    table,
    targets: [under('median chroot cycle', total.p50, CHROOT_CYCLE_TARGET_MS, 'ms')],
    headline: {
      medianMs: total.p50,
      p95Ms: total.p95,
      bareCommandsMedianMs: raw.p50,
      loadAverage: [loadBefore, loadAfter],
    },
    data: {
      cycles,
      warmup,
      cpus: availableParallelism(),
      loadAverage: { before: loadBefore, after: loadAfter },
      total,
      bareCommands: raw,
      steps,
      leaks,
    },
  };
}

/**
 * CLI arguments → options.
 * @internal
 */
export function parseChrootCycleArgs(argv: readonly string[]): ChrootCycleOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: { cycles: { type: 'string' }, warmup: { type: 'string' } },
    strict: true,
  });
  return {
    ...(values.cycles === undefined ? {} : { cycles: Number(values.cycles) }),
    ...(values.warmup === undefined ? {} : { warmup: Number(values.warmup) }),
  };
}

/**
 * The chroot cycle benchmark, for the runner.
 * @internal
 */
export const chrootCycleBenchmark: Benchmark = {
  name: 'chroot-cycle',
  description: 'mount root + 5 chroot mounts + copy files + no-op provision + restore + unmount, real loop device',
  requires: ['root', 'loop devices', 'busybox-static', 'sfdisk, partx, mkfs.ext4, mount, chroot'],
  run: (argv) => runChrootCycleBench(parseChrootCycleArgs(argv)),
};

if (isMain(import.meta.url)) {
  await runAsScript(chrootCycleBenchmark.run, process.argv.slice(2));
}
