/**
 * Footprint benchmark (issue 7, part 5): what installing and importing ami-chroot costs.
 *
 *   npx tsx bench/footprint.ts [--runs 10] [--no-build]
 *
 * - Import time of the built package, each run in a fresh Node process: the wall time of
 *   `node -e "await import(dist/index.js)"` minus that of an empty `node -e ""`, and the import
 *   measured inside the process; the same for each entry of package.json `exports` (targets,
 *   issue 13 item 5: `ami-chroot/config` under 150 ms, the main entry under 300 ms, net of Node's
 *   start-up) and, for scale, for
 *   @aws-sdk/client-ec2 alone.
 * - Package size (`npm pack --dry-run --json`) and the size of the production dependency tree
 *   (`npm ls --omit=dev --parseable --all`, each package counted once).
 * - Peak RSS of a full build against moto: a fresh process (bench/parallel/worker.ts) runs one
 *   `buildAmi` (moto, loop device, scaled EC2 transitions) and reports its own peak resident set
 *   (getrusage maxrss); the same process with everything imported but no build is the baseline.
 *   Needs root, loop devices, busybox-static and moto_server; `--no-rss` skips it.
 */
import { existsSync } from 'node:fs';
import { lstat, readFile, readdir } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { spawnJsonChild } from './lib/child.js';
import { exec, tail } from './lib/exec.js';
import { checkBuildPrerequisites, startRig, type RigLeaks } from './lib/moto-build.js';
import {
  BenchPrerequisiteError,
  REPO_ROOT,
  formatTable,
  isMain,
  runAsScript,
  under,
  type Benchmark,
  type BenchResult,
  type Target,
} from './lib/report.js';
import { summarize, type Summary } from './lib/stats.js';
import type { WorkerInput, WorkerOutput } from './parallel/worker.js';

/**
 * Options of {@link runFootprintBench}.
 * @internal
 */
export interface FootprintOptions {
  /** Fresh processes per measurement. @defaultValue 10 */
  readonly runs?: number;
  /** Run `npm run build` first. @defaultValue true */
  readonly build?: boolean;
  /** Measure the peak RSS of a full build (needs root, loop devices, moto). @defaultValue true */
  readonly rss?: boolean;
}

/** What a full build costs in memory. */
interface RssFigures {
  /** Peak RSS of the process that ran one build, KiB. */
  readonly buildKiB: number;
  /** Peak RSS of the same process with everything imported and no build, KiB. */
  readonly idleKiB: number;
  /** The build's duration, ms. */
  readonly buildMs: number;
}

const RSS_WORKER = join(REPO_ROOT, 'bench', 'parallel', 'worker.ts');
/** A typical build's transitions (volume 5 s, attach/detach 3 s, snapshot 120 s, image 15 s) at 1/25. */
const RSS_SCALE = 25;
const RSS_TRANSITIONS = { volumeMs: 200, attachMs: 120, detachMs: 120, snapshotMs: 4_800, imageMs: 600, copyMs: 0 };

async function workerRss(input: WorkerInput): Promise<WorkerOutput> {
  const child = spawnJsonChild(RSS_WORKER, [JSON.stringify(input)]);
  try {
    await child.next<{ ready: true }>();
    child.send('go');
    const out = await child.next<WorkerOutput>();
    if (out.error !== undefined) throw new Error(`The build in the RSS worker failed: ${out.error}`);
    await child.exited;
    return out;
  } finally {
    await child.stop();
  }
}

async function measureRss(): Promise<RssFigures> {
  await checkBuildPrerequisites('the peak RSS of a full build (skip it with --no-rss)');
  const rig = await startRig(RSS_SCALE);
  let leaks: RigLeaks;
  let idle: WorkerOutput;
  let build: WorkerOutput;
  try {
    idle = await workerRss({ mode: 'idle', params: rig.params, builds: [] });
    build = await workerRss({
      mode: 'builds',
      params: rig.params,
      builds: [{ label: 'rss', transitions: RSS_TRANSITIONS }],
    });
  } finally {
    leaks = await rig.close();
  }
  if (leaks.mounts.length > 0 || leaks.loopDevices.length > 0)
    throw new Error(`The RSS build left ${[...leaks.mounts, ...leaks.loopDevices].join(', ')} behind.`);
  return {
    buildKiB: build.maxRssKiB ?? Number.NaN,
    idleKiB: idle.maxRssKiB ?? Number.NaN,
    buildMs: build.records?.[0]?.durationMs ?? Number.NaN,
  };
}

/**
 * One subject of the import-time measurement.
 * @internal
 */
export interface ImportTiming {
  readonly label: string;
  /** What was imported, relative to the repository. */
  readonly modules: readonly string[];
  /** Process wall time, ms. */
  readonly wallMs: Summary;
  /** Median wall time minus the median of an empty Node process, ms. */
  readonly netWallMs: number;
  /** Time of the `await import()` itself, measured inside the process, ms. */
  readonly inProcessMs: Summary;
}

/** A script that imports `urls` and prints how long that took, in ms. */
function importScript(urls: readonly string[]): string {
  return `const t = performance.now(); for (const u of ${JSON.stringify(urls)}) await import(u); process.stdout.write(String(performance.now() - t));`;
}

async function nodeRun(script: string): Promise<{ wallMs: number; inProcessMs: number }> {
  const r = await exec(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO_ROOT });
  if (r.code !== 0) throw new Error(`node -e failed (exit ${r.code}): ${tail(r.stderr)}`);
  return { wallMs: r.wallMs, inProcessMs: Number(r.stdout || '0') };
}

/** Each subpath of package.json `exports` with the built file it loads. */
async function packageEntries(): Promise<{ name: string; file: string }[]> {
  const pkg = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as {
    exports: Record<string, string | { default: string }>;
  };
  return Object.entries(pkg.exports)
    .filter(([subpath]) => subpath !== './package.json')
    .map(([subpath, target]) => ({
      name: `ami-chroot${subpath.slice(1)}`,
      file: join(REPO_ROOT, typeof target === 'string' ? target : target.default),
    }));
}

/**
 * Import-time targets per entry, ms net of Node's start-up (issue 13 item 5).
 * @internal
 */
export const IMPORT_TARGETS_MS: Readonly<Record<string, number>> = { 'ami-chroot': 300, 'ami-chroot/config': 150 };

/**
 * Import time of each package entry (built `dist/`) in fresh processes, next to an empty process.
 * @internal
 */
export async function measureImports(runs: number): Promise<{ baselineWallMs: Summary; imports: ImportTiming[] }> {
  const entry = join(REPO_ROOT, 'dist', 'index.js');
  if (!existsSync(entry))
    throw new BenchPrerequisiteError(
      `${relative(REPO_ROOT, entry)} is missing: run \`npm run build\` (or drop --no-build).`,
    );
  const entries = await packageEntries();
  const sdkEntry = import.meta.resolve('@aws-sdk/client-ec2');
  const subjects: { label: string; urls: string[]; modules: string[] }[] = [
    // The cost of the first dynamic import() itself (ESM loader start-up), for calibration.
    { label: 'calibration: an empty module', urls: ['data:text/javascript,'], modules: [] },
    ...entries.map((e) => ({
      label: `${e.name} (${relative(REPO_ROOT, e.file)})`,
      urls: [pathToFileURL(e.file).href],
      modules: [relative(REPO_ROOT, e.file)],
    })),
    { label: 'for scale: @aws-sdk/client-ec2 alone', urls: [sdkEntry], modules: ['@aws-sdk/client-ec2'] },
  ];
  const baseline: number[] = [];
  const wall = subjects.map((): number[] => []);
  const inProcess = subjects.map((): number[] => []);
  // One warm-up round fills the OS file cache, then the subjects alternate so that drift in
  // machine load spreads over all of them instead of biasing one.
  for (let round = -1; round < runs; round++) {
    const b = await nodeRun('');
    if (round >= 0) baseline.push(b.wallMs);
    for (const [i, subject] of subjects.entries()) {
      const r = await nodeRun(importScript(subject.urls));
      if (round < 0) continue;
      wall[i]!.push(r.wallMs);
      inProcess[i]!.push(r.inProcessMs);
    }
  }
  const baselineWallMs = summarize(baseline);
  return {
    baselineWallMs,
    imports: subjects.map((s, i) => {
      const wallMs = summarize(wall[i]!);
      return {
        label: s.label,
        modules: s.modules,
        wallMs,
        netWallMs: wallMs.p50 - baselineWallMs.p50,
        inProcessMs: summarize(inProcess[i]!),
      };
    }),
  };
}

interface PackInfo {
  readonly size: number;
  readonly unpackedSize: number;
  readonly entryCount: number;
}

async function packSize(): Promise<PackInfo> {
  const r = await exec('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: REPO_ROOT });
  if (r.code !== 0) throw new Error(`npm pack --dry-run failed (exit ${r.code}): ${tail(r.stderr)}`);
  const parsed = JSON.parse(r.stdout) as { size: number; unpackedSize: number; entryCount: number }[];
  const first = parsed[0];
  if (first === undefined) throw new Error('npm pack --dry-run --json printed no package');
  return { size: first.size, unpackedSize: first.unpackedSize, entryCount: first.entryCount };
}

/** Bytes and files under `dir`, not following symlinks and skipping `skip` (nested packages). */
async function dirSize(dir: string, skip: string): Promise<{ bytes: number; files: number }> {
  let bytes = 0;
  let files = 0;
  const entries = await readdir(dir, { withFileTypes: true });
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (path === skip) continue;
    if (entry.isDirectory()) {
      const sub = await dirSize(path, skip);
      bytes += sub.bytes;
      files += sub.files;
    } else {
      bytes += (await lstat(path)).size;
      files++;
    }
  }
  return { bytes, files };
}

interface DependencyTree {
  readonly packages: number;
  readonly bytes: number;
  readonly files: number;
  readonly largest: readonly { readonly name: string; readonly bytes: number }[];
  /** Listed by npm ls but reached only as optional peer dependencies: users don't get them. */
  readonly excludedOptionalPeers: readonly { readonly name: string; readonly bytes: number }[];
}

interface Manifest {
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

async function readManifest(dir: string): Promise<Manifest> {
  return JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as Manifest;
}

/** Where Node would find package `name` from `dir`: the nearest node_modules/name going up. */
function locate(name: string, dir: string): string | undefined {
  for (let d = dir; ; d = dirname(d)) {
    const candidate = join(d, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dirname(d) === d) return undefined;
  }
}

/**
 * The packages a user gets with ami-chroot: dependencies, optional dependencies that are present
 * and required peer dependencies, transitively. npm ls also lists optional peers (valibot's
 * typescript), which an install does not add.
 */
async function installedClosure(): Promise<Set<string>> {
  const seen = new Set<string>();
  const queue: string[] = [REPO_ROOT];
  while (queue.length > 0) {
    const dir = queue.shift()!;
    const manifest = await readManifest(dir);
    const required = { ...manifest.dependencies, ...manifest.optionalDependencies };
    for (const [name] of Object.entries(manifest.peerDependencies ?? {})) {
      if (manifest.peerDependenciesMeta?.[name]?.optional !== true) required[name] = '*';
    }
    for (const name of Object.keys(required)) {
      const found = locate(name, dir);
      if (found === undefined || seen.has(found)) continue;
      seen.add(found);
      queue.push(found);
    }
  }
  return seen;
}

async function productionDependencies(): Promise<DependencyTree> {
  // npm ls exits non-zero on extraneous or invalid packages but still lists the tree.
  const r = await exec('npm', ['ls', '--omit=dev', '--parseable', '--all'], { cwd: REPO_ROOT });
  const listed = [
    ...new Set(
      r.stdout
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l !== '' && l !== REPO_ROOT),
    ),
  ];
  if (listed.length === 0)
    throw new Error(`npm ls --omit=dev --parseable --all listed nothing (exit ${r.code}): ${tail(r.stderr)}`);
  const installed = await installedClosure();
  const sizes: { name: string; bytes: number; files: number; installed: boolean }[] = [];
  for (const path of listed) {
    // Each nested package is listed on its own line: count it there, not inside its parent.
    const size = await dirSize(path, join(path, 'node_modules'));
    sizes.push({ name: relative(join(REPO_ROOT, 'node_modules'), path), installed: installed.has(path), ...size });
  }
  sizes.sort((a, b) => b.bytes - a.bytes);
  const counted = sizes.filter((p) => p.installed);
  return {
    packages: counted.length,
    bytes: counted.reduce((s, p) => s + p.bytes, 0),
    files: counted.reduce((s, p) => s + p.files, 0),
    largest: counted.slice(0, 8).map(({ name, bytes }) => ({ name, bytes })),
    excludedOptionalPeers: sizes.filter((p) => !p.installed).map(({ name, bytes }) => ({ name, bytes })),
  };
}

/**
 * The import part of this benchmark, also run alone by bench/import-time.ts: builds `dist/`
 * (unless `build` is false), measures each entry, and gives the table and the targets.
 * @param why - what the build is for, in the error when it fails
 * @internal
 */
export async function importTimes(
  runs: number,
  build: boolean,
  why: string,
): Promise<{ baselineWallMs: Summary; imports: ImportTiming[]; table: string; targets: Target[] }> {
  if (!Number.isInteger(runs) || runs < 1) throw new RangeError(`--runs must be a positive integer, got ${runs}`);
  if (build) {
    const r = await exec('npm', ['run', 'build', '--silent'], { cwd: REPO_ROOT });
    if (r.code !== 0)
      throw new BenchPrerequisiteError(`npm run build failed (exit ${r.code}); ${why}.\n${tail(r.stdout + r.stderr)}`);
  }
  const { baselineWallMs, imports } = await measureImports(runs);
  const table = formatTable(
    ['what', 'wall p50', 'wall p95', 'net of node startup (p50)', 'import() p50', 'import() p95'],
    imports.map((i) => [i.label, i.wallMs.p50, i.wallMs.p95, i.netWallMs, i.inProcessMs.p50, i.inProcessMs.p95]),
  );
  const targets = imports.flatMap((i) => {
    const name = i.label.split(' ')[0]!;
    const limit = IMPORT_TARGETS_MS[name];
    return limit === undefined ? [] : [under(`import ${name}, net of node start-up`, i.netWallMs, limit, 'ms')];
  });
  return { baselineWallMs, imports, table, targets };
}

const kib = (bytes: number): number => bytes / 1024;
const mib = (bytes: number): number => bytes / 1024 / 1024;

/**
 * Runs the footprint benchmark.
 * @internal
 */
export async function runFootprintBench(options: FootprintOptions = {}): Promise<BenchResult> {
  const runs = options.runs ?? 10;
  const {
    baselineWallMs,
    imports,
    table: importTable,
    targets,
  } = await importTimes(runs, options.build ?? true, 'the footprint needs a built package');
  const pack = await packSize();
  const deps = await productionDependencies();
  const rss = (options.rss ?? true) ? await measureRss() : undefined;

  const table = [
    `Footprint: ${runs} fresh Node ${process.version} processes per figure (plus one warm-up); empty \`node -e ""\` takes ${baselineWallMs.p50.toFixed(0)} ms (median)`,
    '',
    'Import time (ms)',
    importTable,
    '',
    'Size',
    formatTable(
      ['what', 'size', 'unit', 'files'],
      [
        ['npm package, packed (tarball)', kib(pack.size), 'KiB', pack.entryCount],
        ['npm package, unpacked', kib(pack.unpackedSize), 'KiB', pack.entryCount],
        [`production dependencies (${deps.packages} packages)`, mib(deps.bytes), 'MiB', deps.files],
      ],
    ),
    '',
    'Largest production dependencies',
    formatTable(
      ['package', 'MiB'],
      deps.largest.map((p) => [p.name, mib(p.bytes)]),
    ),
    ...(deps.excludedOptionalPeers.length > 0
      ? [
          '',
          `Not counted (listed by npm ls, but only optional peers that an install does not add): ${deps.excludedOptionalPeers.map((p) => `${p.name} ${mib(p.bytes).toFixed(1)} MiB`).join(', ')}`,
        ]
      : []),
    '',
    rss === undefined
      ? 'Peak RSS of a full build: not measured (--no-rss).'
      : [
          `Peak RSS of a full build (one buildAmi against moto + a loop device, ${(rss.buildMs / 1000).toFixed(1)} s, in a fresh \`node --import tsx\` process)`,
          formatTable(
            ['process', 'peak RSS MiB'],
            [
              ['ran one full build', rss.buildKiB / 1024],
              ['everything imported, no build (tsx, SDK, library, fixtures)', rss.idleKiB / 1024],
              ['what the build added', (rss.buildKiB - rss.idleKiB) / 1024],
            ],
          ),
        ].join('\n'),
  ].join('\n');

  const main = imports.find((i) => i.modules[0] === 'dist/index.js')!;
  return {
    name: 'footprint',
    table,
    targets,
    headline: {
      importNetMs: main.netWallMs,
      importInProcessMs: main.inProcessMs.p50,
      packedKiB: kib(pack.size),
      unpackedKiB: kib(pack.unpackedSize),
      prodDependencyMiB: mib(deps.bytes),
      prodDependencyPackages: deps.packages,
      ...(rss === undefined ? {} : { buildPeakRssMiB: rss.buildKiB / 1024, idlePeakRssMiB: rss.idleKiB / 1024 }),
    },
    data: {
      runs,
      node: process.version,
      baselineWallMs,
      imports,
      pack,
      dependencies: deps,
      ...(rss === undefined ? {} : { peakRss: rss }),
    },
  };
}

/**
 * CLI arguments → options.
 * @internal
 */
export function parseFootprintArgs(argv: readonly string[]): FootprintOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: { runs: { type: 'string' }, 'no-build': { type: 'boolean' }, 'no-rss': { type: 'boolean' } },
    strict: true,
  });
  return {
    ...(values.runs === undefined ? {} : { runs: Number(values.runs) }),
    ...(values['no-build'] ? { build: false } : {}),
    ...(values['no-rss'] ? { rss: false } : {}),
  };
}

/**
 * The footprint benchmark, for the runner.
 * @internal
 */
export const footprintBenchmark: Benchmark = {
  name: 'footprint',
  description:
    'import time of the built package in fresh processes, package and dependency sizes, peak RSS of a full build',
  requires: [
    'npm',
    'a buildable src/ (npm run build)',
    'for the peak RSS (else --no-rss): root, loop devices, busybox-static, moto_server',
  ],
  run: (argv) => runFootprintBench(parseFootprintArgs(argv)),
};

if (isMain(import.meta.url)) {
  await runAsScript(footprintBenchmark.run, process.argv.slice(2));
}
