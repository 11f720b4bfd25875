/**
 * Parallel builds benchmark (issue 7, part 3): 8 full builds at once on one host, (a) in one
 * process and (b) as 4 processes of 2, against one build alone under identical settings.
 *
 *   sudo npx tsx bench/parallel.ts [--builds 8] [--processes 4] [--scale 25] [--seed 1] [--dev-nodes]
 *
 * Every build is the real `buildAmi` (bench/lib/moto-build.ts): moto as EC2 with transitions
 * drawn from issue 7's ranges and divided by `scale` (the poller's policy is divided likewise),
 * a loop device per work volume, the real allocator sharing one lock directory and one device
 * tree. Build i gets draw i; the single-build baseline replays the draw with the longest
 * simulated EC2 time, so "parallel wall / single wall" is what running together costs the
 * slowest build. Target: under 1.2x, with no device collision.
 *
 * Collisions: EC2's book of attachment names is kept in files shared by all processes
 * (ec2-sim.ts): every attachment EC2 accepted, with its name, from the AttachVolume call until
 * the volume shows detached. Two attachments holding one name at overlapping times would be a
 * collision. Like EC2, the simulation refuses a name still in use ("already in use"), which the
 * library answers by taking the next name: each refusal is a name the allocator should not have
 * chosen, so they are counted too. Lock hold times: a separate process watches the lock
 * directory (inotify) and times each `allocate.lock` (the allocation lock, held while choosing)
 * and each `sdX.reservation` (the name's reservation, held from the choice until EC2 confirms
 * the attachment: what Packer's lock covers, plus CreateVolume).
 */
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { spawnJsonChild, type JsonChild } from './lib/child.js';
import { deviceCollisions, readDeviceBook, type AttachmentRecord, type TransitionTimes } from './lib/ec2-sim.js';
import {
  checkBuildPrerequisites,
  drawTransitions,
  failureOf,
  simulatedWaitMs,
  startRig,
  runBuild,
  type BuildFailure,
  type BuildRecord,
  type RigLeaks,
  type RigParams,
} from './lib/moto-build.js';
import { createRng } from './lib/prng.js';
import {
  atMost,
  formatTable,
  isMain,
  REPO_ROOT,
  runAsScript,
  under,
  type Benchmark,
  type BenchResult,
} from './lib/report.js';
import { summarize, type Summary } from './lib/stats.js';
import type { WorkerInput, WorkerOutput } from './parallel/worker.js';

/**
 * Options of {@link runParallelBench}.
 * @internal
 */
export interface ParallelBenchOptions {
  /** Builds run at once. @defaultValue 8 */
  readonly builds?: number;
  /** Processes for the multi-process run (builds split evenly). @defaultValue 4 */
  readonly processes?: number;
  /** EC2 transitions and poll delays divided by this. @defaultValue 25 */
  readonly scale?: number;
  /** Seed of the drawn transitions. @defaultValue 1 */
  readonly seed?: number;
  /** Attached names appear in the device tree (Xen, or Nitro with udev links); see RigParams. @defaultValue false */
  readonly devNodes?: boolean;
}

/**
 * The issue's target: parallel wall time under 1.2x one build's.
 * @internal
 */
export const PARALLEL_TARGET_RATIO = 1.2;

const WORKER = join(REPO_ROOT, 'bench', 'parallel', 'worker.ts');
const WATCHER = join(REPO_ROOT, 'bench', 'parallel', 'watch-locks.ts');

/**
 * A lock entry's lifetime seen by the watcher.
 * @internal
 */
export interface Hold {
  readonly name: string;
  readonly fromMs: number;
  readonly toMs: number;
}

/**
 * One event of the lock-directory watcher.
 * @internal
 */
export interface LockEvent {
  readonly t: number;
  readonly name: string;
  /** Whether the entry existed when the watcher looked, right after the event. */
  readonly exists: boolean;
}

/**
 * Turns the watcher's events into holds: a hold opens when an entry is seen to exist and closes
 * at the first event that finds it gone. An event finding no entry while none was open is an
 * entry created and removed faster than the watcher could look: counted as `unclear`, not timed.
 * @internal
 */
export function pairHolds(events: readonly LockEvent[]): { holds: Hold[]; open: string[]; unclear: number } {
  const since = new Map<string, number>();
  const holds: Hold[] = [];
  let unclear = 0;
  for (const { t, name, exists } of events) {
    const from = since.get(name);
    if (exists) {
      if (from === undefined) since.set(name, t);
    } else if (from !== undefined) {
      holds.push({ name, fromMs: from, toMs: t });
      since.delete(name);
    } else {
      unclear++;
    }
  }
  return { holds, open: [...since.keys()], unclear };
}

interface LockWatch {
  readonly child: JsonChild;
  readonly events: LockEvent[];
  stop(): Promise<void>;
}

async function watchLocks(lockDir: string): Promise<LockWatch> {
  const child = spawnJsonChild(WATCHER, [lockDir]);
  await child.next<{ ready: true }>();
  const events: LockEvent[] = [];
  let stopped = false;
  const pump = (async () => {
    while (!stopped) {
      const event = await child.next<LockEvent>().catch(() => undefined);
      if (event === undefined) return;
      events.push(event);
    }
  })();
  return {
    child,
    events,
    stop: async () => {
      stopped = true;
      child.end();
      await child.stop(2_000);
      await pump;
    },
  };
}

interface RunFigures {
  /** From the first build's start to the last build's end (builds that finished). */
  readonly wallMs: number;
  readonly records: readonly BuildRecord[];
  /** Builds that threw: reported, and a target of their own. */
  readonly failures: readonly BuildFailure[];
  readonly windowMs: readonly [number, number];
}

function figuresOf(
  records: readonly BuildRecord[],
  failures: readonly BuildFailure[],
  startedAtMs: number,
): RunFigures {
  const from = Math.min(startedAtMs, ...records.map((r) => r.startedAtMs));
  const to = Math.max(from, ...records.map((r) => r.endedAtMs));
  return { wallMs: to - from, records, failures, windowMs: [from, to] };
}

async function inProcess(params: RigParams, draws: readonly TransitionTimes[], label: string): Promise<RunFigures> {
  const startedAtMs = Date.now();
  const settled = await Promise.allSettled(draws.map((t, i) => runBuild(params, `${label}-${i}`, t)));
  const records = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failures = settled.flatMap((s, i) => (s.status === 'rejected' ? [failureOf(`${label}-${i}`, s.reason)] : []));
  return figuresOf(records, failures, startedAtMs);
}

async function inProcesses(
  params: RigParams,
  draws: readonly TransitionTimes[],
  processes: number,
  label: string,
): Promise<RunFigures & { maxRssKiB: number[] }> {
  const per = Math.ceil(draws.length / processes);
  const workers: JsonChild[] = [];
  try {
    for (let p = 0; p < processes; p++) {
      const builds = draws
        .slice(p * per, (p + 1) * per)
        .map((transitions, i) => ({ label: `${label}-p${p}-${i}`, transitions }));
      if (builds.length === 0) continue;
      const input: WorkerInput = { mode: 'builds', params, builds };
      workers.push(spawnJsonChild(WORKER, [JSON.stringify(input)]));
    }
    // Everyone imported and ready before the clock starts: process start-up is not a build's cost.
    await Promise.all(workers.map((w) => w.next<{ ready: true }>()));
    const startedAtMs = Date.now();
    for (const w of workers) w.send('go');
    const outputs = await Promise.all(workers.map((w) => w.next<WorkerOutput>()));
    const errors = outputs.flatMap((o, i) => (o.error === undefined ? [] : [`worker ${workers[i]!.pid}: ${o.error}`]));
    if (errors.length > 0) throw new Error(`Builds failed in worker processes:\n${errors.join('\n')}`);
    await Promise.all(workers.map((w) => w.exited));
    return {
      ...figuresOf(
        outputs.flatMap((o) => o.records ?? []),
        outputs.flatMap((o) => o.failures ?? []),
        startedAtMs,
      ),
      maxRssKiB: outputs.map((o) => o.maxRssKiB ?? 0),
    };
  } finally {
    // Only the PIDs started here; a worker that is still running aborts its builds on SIGTERM.
    await Promise.all(workers.map((w) => w.stop()));
  }
}

function holdsIn(holds: readonly Hold[], [from, to]: readonly [number, number], suffix: string): number[] {
  return holds
    .filter((h) => h.name.endsWith(suffix) && h.fromMs >= from - 1 && h.toMs <= to + 1)
    .map((h) => h.toMs - h.fromMs);
}

function phaseMedians(records: readonly BuildRecord[]): Record<string, number> {
  const phases = [...new Set(records.flatMap((r) => Object.keys(r.timings)))];
  return Object.fromEntries(
    phases.map((p) => [p, summarize(records.map((r) => r.timings[p as keyof BuildRecord['timings']] ?? 0)).p50]),
  );
}

/**
 * Runs the parallel builds benchmark.
 * @throws {@link BenchPrerequisiteError} when not root, or loop devices, busybox or moto are missing
 * @internal
 */
export async function runParallelBench(options: ParallelBenchOptions = {}): Promise<BenchResult> {
  const builds = options.builds ?? 8;
  const processes = options.processes ?? 4;
  const scale = options.scale ?? 25;
  const seed = options.seed ?? 1;
  for (const [name, value] of [
    ['builds', builds],
    ['processes', processes],
    ['seed', seed],
  ] as const) {
    if (!Number.isInteger(value) || value < 1)
      throw new RangeError(`--${name} must be a positive integer, got ${value}`);
  }
  if (!(scale >= 1)) throw new RangeError(`--scale must be at least 1, got ${scale}`);
  if (builds > 11) throw new RangeError(`--builds must be at most 11: one host has 11 attachment names (/dev/sd[f-p])`);
  await checkBuildPrerequisites('the parallel builds benchmark');

  const rng = createRng(seed, 'parallel/transitions');
  const draws = Array.from({ length: builds }, () => drawTransitions(rng, scale));
  const slowest = draws.reduce((a, b) => (simulatedWaitMs(b) > simulatedWaitMs(a) ? b : a));
  const fastest = { volumeMs: 0, attachMs: 0, detachMs: 0, snapshotMs: 0, imageMs: 0, copyMs: 0 };
  const loadBefore = loadavg()[0]!;

  const devNodes = options.devNodes ?? false;
  const rig = await startRig(scale, { devNodes });
  let watch: LockWatch | undefined;
  let leaks: RigLeaks | undefined;
  let single: RunFigures;
  let together: RunFigures;
  let split: RunFigures & { maxRssKiB: number[] };
  let book: AttachmentRecord[] = [];
  try {
    watch = await watchLocks(rig.params.lockDir);
    // Warm-up: module code paths, moto's first requests, the page cache of the base image.
    await runBuild(rig.params, 'warmup', fastest);
    const singleStart = Date.now();
    single = figuresOf([await runBuild(rig.params, 'single', slowest)], [], singleStart);
    together = await inProcess(rig.params, draws, 'together');
    split = await inProcesses(rig.params, draws, processes, 'split');
    book = await readDeviceBook(rig.params.deviceRegistry);
  } finally {
    await watch?.stop();
    leaks = await rig.close();
  }
  if (leaks.mounts.length > 0 || leaks.loopDevices.length > 0 || leaks.reservations.length > 0) {
    throw new Error(
      `The parallel builds left ${[...leaks.mounts, ...leaks.loopDevices, ...leaks.reservations].join(', ')} behind (kept ${rig.params.dir}).`,
    );
  }
  const loadAfter = loadavg()[0]!;

  const { holds, open, unclear } = pairHolds(watch.events);
  const runs = [
    { id: 'single', what: 'one build alone (slowest draw)', fig: single },
    { id: 'one process', what: `${builds} builds in one process`, fig: together },
    {
      id: `${processes} processes`,
      what: `${builds} builds as ${processes} processes of ${Math.ceil(builds / processes)}`,
      fig: split,
    },
  ];
  const perRun = runs.map(({ id, what, fig }) => {
    const [from, to] = fig.windowMs;
    // Every attachment EC2 accepted during this run, whichever process made it.
    const accepted = book.filter((r) => r.fromMs >= from && r.fromMs <= to);
    const collisions = deviceCollisions(accepted);
    const refused = fig.records.flatMap((r) => r.refused);
    const lockMs = summarize(holdsIn(holds, fig.windowMs, '.lock'));
    const reservationMs = summarize(holdsIn(holds, fig.windowMs, '.reservation'));
    return {
      id,
      what,
      wallMs: fig.wallMs,
      ratio: fig.wallMs / single.wallMs,
      buildMs: summarize(fig.records.map((r) => r.durationMs)),
      // Build time not spent in the simulated EC2 transitions: host work, locks, request latency, poll lag.
      overheadMs: summarize(fig.records.map((r) => r.durationMs - simulatedWaitMs(r.transitions))),
      names: fig.records.map((r) => r.attachmentName),
      hostDevices: fig.records.map((r) => r.hostDevice),
      attachments: accepted.length,
      collisions: collisions.map(([a, b]) => `${a.device}: ${a.volumeId} and ${b.volumeId}`),
      refused: refused.map((r) => `${r.device} for ${r.volumeId} (held by ${r.heldBy})`),
      failures: fig.failures,
      lockMs,
      reservationMs,
      describeCalls: summarize(fig.records.map((r) => r.describeCalls)),
      phaseMediansMs: phaseMedians(fig.records),
    };
  });
  const [, a, b] = perRun;

  const fmt = (s: Summary): string =>
    s.n === 0 ? '-' : `${s.p50.toFixed(1)} / ${s.p95.toFixed(1)} / ${s.max.toFixed(1)}`;
  const table = [
    `Parallel builds: ${builds} full buildAmi runs against moto + loop devices, transitions and poll delays scaled 1/${scale}, seed ${seed}, ${availableParallelism()} CPUs`,
    devNodes
      ? 'Device tree: attached names appear as <devRoot>/sdX while attached (Xen, or Nitro with udev links).'
      : "Device tree: empty, as on a Nitro host without /dev/sdX links (the allocator only has its reservations and EC2's list of names).",
    `Slowest draw (single-build baseline): simulated EC2 time ${(simulatedWaitMs(slowest) / 1000).toFixed(1)} s ` +
      `(volume ${slowest.volumeMs} ms, attach ${slowest.attachMs}, detach ${slowest.detachMs}, snapshot ${slowest.snapshotMs}, image ${slowest.imageMs})`,
    '',
    formatTable(
      [
        'run',
        'wall s',
        'vs single',
        'build s p50',
        'build s max',
        'not-EC2 ms p50',
        'not-EC2 ms max',
        'Describe/build',
        'attachments',
        'collisions',
        'names refused',
        'failed',
      ],
      perRun.map((r) => [
        r.what,
        r.wallMs / 1000,
        r.ratio,
        r.buildMs.p50 / 1000,
        r.buildMs.max / 1000,
        r.overheadMs.p50,
        r.overheadMs.max,
        r.describeCalls.mean,
        r.attachments,
        r.collisions.length,
        r.refused.length,
        r.failures.length,
      ]),
    ),
    ...perRun.flatMap((r) =>
      r.failures.map((f) => `FAILED in "${r.what}": ${f.label}${f.phase ? ` (phase ${f.phase})` : ''}: ${f.error}`),
    ),
    '',
    'Device allocation (ms, p50 / p95 / max), timed from outside by watching the lock directory',
    formatTable(
      ['run', 'allocation lock held', 'n', 'name reserved (choice → attached)', 'n', 'attachment names used'],
      perRun.map((r) => [
        r.what,
        fmt(r.lockMs),
        r.lockMs.n,
        fmt(r.reservationMs),
        r.reservationMs.n,
        [...new Set(r.names)].sort().join(' '),
      ]),
    ),
    '',
    'Phase medians (ms)',
    formatTable(
      ['run', ...Object.keys(perRun[0]!.phaseMediansMs)],
      perRun.map((r) => [r.what, ...Object.keys(perRun[0]!.phaseMediansMs).map((p) => r.phaseMediansMs[p] ?? 0)]),
    ),
    '',
    `Peak RSS of the worker processes: ${split.maxRssKiB.map((k) => `${(k / 1024).toFixed(0)} MiB`).join(', ')}. ` +
      `Load average (1 min) ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after.` +
      (open.length > 0 ? ` Lock entries seen created but not removed: ${open.join(', ')}.` : '') +
      (unclear > 0 ? ` ${unclear} lock event(s) came and went before the watcher could look (not timed).` : ''),
    'Leaks after the run: none (no mount, loop device or reservation left; work directory removed; moto stopped).',
  ].join('\n');

  return {
    name: 'parallel',
    table,
    targets: [
      under(`${builds} builds in one process: wall / single build`, a!.ratio, PARALLEL_TARGET_RATIO, 'x'),
      under(`${builds} builds as ${processes} processes: wall / single build`, b!.ratio, PARALLEL_TARGET_RATIO, 'x'),
      atMost('device collisions (both runs)', a!.collisions.length + b!.collisions.length, 0, 'pairs'),
      atMost(
        'names EC2 refused as in use: allocator picked a taken name (both runs)',
        a!.refused.length + b!.refused.length,
        0,
        'names',
      ),
      atMost(
        'builds that failed (both runs; wall times then cover the others only)',
        a!.failures.length + b!.failures.length,
        0,
        'builds',
      ),
    ],
    headline: {
      singleS: single.wallMs / 1000,
      ratioOneProcess: a!.ratio,
      ratioProcesses: b!.ratio,
      collisions: a!.collisions.length + b!.collisions.length,
      refusedNames: a!.refused.length + b!.refused.length,
      failedBuilds: a!.failures.length + b!.failures.length,
      reservationMsP50P95: [a!.reservationMs.p50, a!.reservationMs.p95, b!.reservationMs.p50, b!.reservationMs.p95],
      lockMsP50P95: [a!.lockMs.p50, a!.lockMs.p95, b!.lockMs.p50, b!.lockMs.p95],
    },
    data: {
      builds,
      processes,
      scale,
      seed,
      devNodes,
      draws,
      slowest,
      cpus: availableParallelism(),
      loadAverage: { before: loadBefore, after: loadAfter },
      runs: perRun,
      unpairedLockEntries: open,
      untimedLockEvents: unclear,
      leaks,
    },
  };
}

/**
 * CLI arguments → options.
 * @internal
 */
export function parseParallelArgs(argv: readonly string[]): ParallelBenchOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      builds: { type: 'string' },
      processes: { type: 'string' },
      scale: { type: 'string' },
      seed: { type: 'string' },
      'dev-nodes': { type: 'boolean' },
    },
    strict: true,
  });
  return {
    ...(values.builds === undefined ? {} : { builds: Number(values.builds) }),
    ...(values.processes === undefined ? {} : { processes: Number(values.processes) }),
    ...(values.scale === undefined ? {} : { scale: Number(values.scale) }),
    ...(values.seed === undefined ? {} : { seed: Number(values.seed) }),
    ...(values['dev-nodes'] ? { devNodes: true } : {}),
  };
}

/**
 * The parallel builds benchmark, for the runner.
 * @internal
 */
export const parallelBenchmark: Benchmark = {
  name: 'parallel',
  description:
    '8 full builds at once (one process; 4 processes of 2) vs one build, moto + loop devices, scaled EC2 times',
  requires: ['root', 'loop devices', 'busybox-static', 'moto_server', 'sfdisk, partx, mkfs.ext4, mount, chroot'],
  run: (argv) => runParallelBench(parseParallelArgs(argv)),
};

if (isMain(import.meta.url)) {
  await runAsScript(parallelBenchmark.run, process.argv.slice(2));
}
