/**
 * Side by side with Packer (issue 14 items 3 and 4): the same build (bench/vs-packer/build.ts)
 * through `buildAmi` and through Packer 1.6.6's amazon-chroot, against the test EC2 on 127.0.0.1,
 * with the `instant` knobs and with realistic transition times scaled by `time_scale`, on the same
 * loop-device image. Each build runs in its own process, against a fresh test EC2 seeded with the
 * run's number (both tools of a run meet the same transition times); AWS calls are counted at the
 * server. Our builds' per-phase timings are reported too.
 *
 *   sudo npx tsx bench/vs-packer.ts [--runs N] [--time-scale S] [--only instant|realistic] [--cpu-prof DIR]
 *     [--baseline REF]   (also our build as of commit REF, interleaved: before/after under one load)
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { DescribeImagesCommand } from '@aws-sdk/client-ec2';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeBusyboxImage } from '../fixtures/busybox-image.js';
import { motoEc2, startBuildHost, startMoto } from '../fixtures/moto.js';
import { readMountInfo } from '../src/host/mounts.js';
import { exec, tail } from './lib/exec.js';
import { bundleProgram } from '../scripts/bundle.js';
import { checkBuildPrerequisites } from './lib/moto-build.js';
import {
  atMost,
  formatNumber,
  formatTable,
  isMain,
  OUT_DIR,
  REPO_ROOT,
  runAsScript,
  type BenchResult,
  type Target,
} from './lib/report.js';
import { SIDE_BY_SIDE } from './vs-packer/build.js';
import { measure, TREE_SAMPLE_MS, type ProcessCost } from './vs-packer/measure.js';
import type { OursParams, OursReport } from './vs-packer/ours-child.js';
import { ensurePacker, preparePacker } from './vs-packer/packer-side.js';

/** `before`: our child as built from `--baseline REF`, to compare a change under the same load. */
type Tool = 'ours' | 'packer' | 'before';

/** One measured build. */
interface Measured extends Omit<ProcessCost, 'stdout'> {
  readonly tool: Tool;
  readonly mode: string;
  readonly run: number;
  /** Query-API calls (IMDS requests not counted). */
  readonly awsCalls: number;
  readonly imdsCalls: number;
  /** Query-API calls by action. */
  readonly callsByAction: Readonly<Record<string, number>>;
  readonly ours?: OursReport;
}

/** A mode: the test EC2's knobs, and how much the tools' polling is sped up to match. */
interface Mode {
  readonly mode: string;
  readonly knobs: Readonly<Record<string, unknown>>;
  /** Divisor of our poller's delays. */
  readonly pollScale: number;
  /** Packer's AWS_POLL_DELAY_SECONDS, when its delays are scaled. */
  readonly packerDelayS?: number;
}

/**
 * Issue 14's realistic times (ms): volume 2-10 s, attach/detach 1-5 s, snapshot 30-120 s, image
 * 5-30 s, copy 30-300 s. Stale reads and late visibility are off so that the RNG draws only these,
 * in creation order, and both tools of a run meet the same times.
 */
const REALISTIC_MS = {
  volume_creating_ms: [2_000, 10_000],
  attach_visible_after_ms: 0,
  attaching_ms: [1_000, 5_000],
  detaching_ms: [1_000, 5_000],
  snapshot_ms: [30_000, 120_000],
  image_pending_ms: [5_000, 30_000],
  copy_ms: [30_000, 300_000],
  not_found_after_create_ms: 0,
  stale_read_ms: 0,
  snapshot_in_use_after_deregister_ms: 0,
};

/** Packer's default waits poll every 15 s (volume, snapshot, image, copy) and 5 s (attach, detach). */
const PACKER_DEFAULT_DELAY_S = 15;

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? NaN) : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
}

function option(argv: readonly string[], name: string, fallback: number): number {
  const index = argv.indexOf(name);
  const value = index >= 0 ? Number(argv[index + 1]) : fallback;
  if (!Number.isFinite(value) || value <= 0)
    throw new Error(`${name} must be a positive number, got ${argv[index + 1]}`);
  return value;
}

function modesOf(argv: readonly string[]): Mode[] {
  // 1/15 makes Packer's 15 s delay 1 s, the smallest AWS_POLL_DELAY_SECONDS can say.
  const timeScale = option(argv, '--time-scale', 1 / PACKER_DEFAULT_DELAY_S);
  const packerDelayS = Math.round(PACKER_DEFAULT_DELAY_S * timeScale);
  if (packerDelayS < 1) throw new Error(`--time-scale ${timeScale} makes Packer's delay under 1 s; use >= 1/30`);
  const all: Mode[] = [
    { mode: 'instant', knobs: { preset: 'instant' }, pollScale: 1 },
    {
      mode: `realistic x${formatNumber(timeScale)}`,
      knobs: { ...REALISTIC_MS, time_scale: timeScale },
      pollScale: 1 / timeScale,
      packerDelayS,
    },
  ];
  const only = argv.includes('--only') ? argv[argv.indexOf('--only') + 1] : undefined;
  return only ? all.filter((m) => m.mode.startsWith(only)) : all;
}

/** The shared rig: a directory, the base image the volumes copy. */
interface Rig {
  readonly dir: string;
  readonly baseImage: string;
}

/**
 * Our child, bundled as a deployed program is (`scripts/bundle.ts`: the library and the AWS SDK
 * commands it uses in one file, the other npm packages left to Node), so that its start-up is
 * Node's and the SDK's, not tsx's transpiling. It lives under .bench-out so that Node finds
 * node_modules from there.
 */
async function compileOursChild(root = REPO_ROOT, name = 'ours'): Promise<string> {
  const outfile = join(OUT_DIR, `vs-packer-${name}-child.mjs`);
  await bundleProgram({ entry: join(root, 'bench/vs-packer/ours-child.ts'), outfile, root });
  return outfile;
}

/** One build by `tool` against a fresh test EC2 seeded with `run`. */
async function buildOnce(
  tool: Tool,
  mode: Mode,
  run: number,
  rig: Rig,
  oursChild: string,
  nodeArgs: readonly string[] = [],
): Promise<Measured> {
  const moto = await startMoto({ knobs: { ...mode.knobs, seed: run } });
  try {
    const ec2 = motoEc2(moto.endpoint, SIDE_BY_SIDE.region);
    const host = await startBuildHost(ec2);
    ec2.destroy();
    // moto makes a region's source images (and their snapshots, which draw durations) on its
    // first use; make both regions now, so that a tool that reads the copy region early (ours
    // checks the name there) does not shift the seeded draws of the build's own resources.
    const west = motoEc2(moto.endpoint, SIDE_BY_SIDE.copyRegion);
    await west.send(new DescribeImagesCommand({ Owners: [SIDE_BY_SIDE.sourceOwner] }));
    west.destroy();
    await moto.setKnobs({ imds_instance_id: host.instanceId });
    await moto.resetCalls();
    const label = `${tool}-${run}`;
    let cost: ProcessCost;
    let ours: OursReport | undefined;
    if (tool !== 'packer') {
      const params: OursParams = { endpoint: moto.endpoint, ...host, ...rig, label, pollScale: mode.pollScale };
      cost = await measure(process.execPath, [...nodeArgs, oursChild, JSON.stringify(params)]);
      ours = JSON.parse(cost.stdout.trim().split('\n').pop() ?? '{}') as OursReport;
    } else {
      const packer = await preparePacker({
        endpoint: moto.endpoint,
        ...rig,
        label,
        ...(mode.packerDelayS === undefined ? {} : { pollDelayS: mode.packerDelayS }),
      });
      try {
        cost = await measure('packer', packer.args, packer.env);
      } finally {
        await packer.cleanUp();
      }
    }
    const calls = await moto.calls();
    const imdsCalls = calls.filter((c) => c.action.includes('/latest/')).length;
    const callsByAction: Record<string, number> = {};
    for (const { action } of calls)
      if (!action.includes('/latest/')) callsByAction[action] = (callsByAction[action] ?? 0) + 1;
    const { stdout: _, ...rest } = cost;
    return {
      tool,
      mode: mode.mode,
      run,
      ...rest,
      awsCalls: calls.length - imdsCalls,
      imdsCalls,
      callsByAction,
      ...(ours && { ours }),
    };
  } finally {
    await moto.stop();
  }
}

/**
 * The floor under our start-up and RSS: a Node process that only loads the EC2 client, as the
 * library does (`require`; bench/sdk-load.ts compares it with `import()`).
 */
async function sdkFloor(runs: number): Promise<{ wallS: number; maxRssMiB: number }> {
  const costs: ProcessCost[] = [];
  for (let i = 0; i < runs; i++) costs.push(await measure(process.execPath, ['-e', "require('@aws-sdk/client-ec2')"]));
  return { wallS: median(costs.map((c) => c.wallS)), maxRssMiB: median(costs.map((c) => c.maxRssMiB)) };
}

/** Medians per tool and mode. */
interface Row {
  readonly tool: Tool;
  readonly mode: string;
  readonly runs: number;
  readonly wallS: number;
  readonly cpuS: number;
  readonly maxRssMiB: number;
  readonly treeRssMiB: number;
  readonly awsCalls: number;
}

const TOOLS: readonly Tool[] = ['ours', 'before', 'packer'];

function medians(measured: readonly Measured[], modes: readonly Mode[]): Row[] {
  return modes.flatMap(({ mode }) =>
    TOOLS.filter((tool) => measured.some((m) => m.tool === tool)).map((tool) => {
      const of = measured.filter((m) => m.mode === mode && m.tool === tool);
      const med = (pick: (m: Measured) => number): number => median(of.map(pick));
      return {
        tool,
        mode,
        runs: of.length,
        wallS: med((m) => m.wallS),
        cpuS: med((m) => m.cpuS),
        maxRssMiB: med((m) => m.maxRssMiB),
        treeRssMiB: med((m) => m.treeRssMiB),
        awsCalls: med((m) => m.awsCalls),
      };
    }),
  );
}

/** Phases that run inside `mount` (its steps), so a sum of phases counts them once, in `mount`. */
const INSIDE_MOUNT = new Set(['pre-mount', 'post-mount', 'chroot-mounts', 'copy-files', 'service-guard']);

function topLevelSum(timings: Readonly<Record<string, number>>): number {
  return Object.entries(timings).reduce((sum, [phase, ms]) => (INSIDE_MOUNT.has(phase) ? sum : sum + ms), 0);
}

/** Our builds' per-phase times (medians, ms), with start-up and the whole in-process build; a column per build of ours. */
function phaseTable(measured: readonly Measured[], mode: string): string {
  const tools = TOOLS.filter((t) => measured.some((m) => m.mode === mode && m.tool === t && m.ours));
  const reports = tools.map((t) =>
    measured.filter((m) => m.mode === mode && m.tool === t && m.ours).map((m) => m.ours!),
  );
  const phases = [...new Set(reports.flat().flatMap((r) => Object.keys(r.timings)))];
  const row = (name: string, pick: (r: OursReport) => number): string[] => [
    name,
    ...reports.map((of) => formatNumber(median(of.map(pick)))),
  ];
  return formatTable(
    ['phase', ...tools.map((t) => `${t} median ms`)],
    [
      row('start-up (Node, imports)', (r) => r.startupMs),
      ...phases.map((phase) => row(phase, (r) => r.timings[phase] ?? 0)),
      row('buildAmi total', (r) => r.durationMs),
      row('outside any phase (total - phases)', (r) => r.durationMs - topLevelSum(r.timings)),
    ],
  );
}

/** Calls per build by action (medians over the runs), a column per tool: where the calls go. */
function callTable(measured: readonly Measured[], mode: string): string {
  const tools = TOOLS.filter((t) => measured.some((m) => m.mode === mode && m.tool === t));
  const of = (tool: Tool): Measured[] => measured.filter((m) => m.mode === mode && m.tool === tool);
  const actions = [...new Set(measured.filter((m) => m.mode === mode).flatMap((m) => Object.keys(m.callsByAction)))];
  return formatTable(
    ['action', ...tools.map((t) => `${t} calls`)],
    actions
      .sort()
      .map((a) => [a, ...tools.map((t) => formatNumber(median(of(t).map((m) => m.callsByAction[a] ?? 0))))]),
  );
}

/**
 * `--baseline REF`: our child as built from REF (a commit of this repository), checked out in a
 * worktree under .bench-out and compiled next to ours, so that a change is measured against what
 * it changes in the same run, under the same load.
 */
async function compileBaselineChild(ref: string): Promise<{ child: string; remove: () => Promise<void> }> {
  const tree = join(OUT_DIR, 'vs-packer-baseline');
  const git = async (...args: string[]): Promise<number | null> => (await exec('git', args, { cwd: REPO_ROOT })).code;
  await git('worktree', 'remove', '--force', tree); // a copy an interrupted run left
  const added = await exec('git', ['worktree', 'add', '--detach', tree, ref], { cwd: REPO_ROOT });
  if (added.code !== 0) throw new Error(`--baseline ${ref}: git worktree add failed:\n${tail(added.stderr)}`);
  const remove = async (): Promise<void> => void (await git('worktree', 'remove', '--force', tree));
  try {
    return { child: await compileOursChild(tree, 'before'), remove };
  } catch (error) {
    await remove();
    throw error;
  }
}

function targetsOf(rows: readonly Row[], modes: readonly Mode[]): Target[] {
  const row = (tool: Tool, mode: string): Row | undefined => rows.find((r) => r.tool === tool && r.mode === mode);
  const targets: Target[] = [];
  const [instant, realistic] = [modes.find((m) => m.mode === 'instant'), modes.find((m) => m.packerDelayS)];
  const ours = instant && row('ours', instant.mode);
  const packer = instant && row('packer', instant.mode);
  if (ours && packer) {
    targets.push(atMost('instant: our wall <= Packer wall', ours.wallS, packer.wallS, 's'));
    targets.push(atMost('instant: our peak RSS < 120 MiB', ours.maxRssMiB, 120, 'MiB'));
  }
  const oursR = realistic && row('ours', realistic.mode);
  const packerR = realistic && row('packer', realistic.mode);
  if (oursR && packerR) {
    targets.push(atMost('realistic: our wall <= 0.7x Packer', oursR.wallS / packerR.wallS, 0.7, 'x'));
    targets.push(atMost('realistic: our calls <= 2x Packer', oursR.awsCalls / packerR.awsCalls, 2, 'x'));
  }
  return targets;
}

async function leaksUnder(dir: string): Promise<string[]> {
  return (await readMountInfo()).filter((m) => m.mountPoint.startsWith(`${dir}/`)).map((m) => m.mountPoint);
}

/**
 * Runs the side-by-side benchmark.
 * @internal
 */
export async function run(argv: readonly string[]): Promise<BenchResult> {
  await checkBuildPrerequisites('vs-packer');
  const packerVersion = await ensurePacker();
  const runs = option(argv, '--runs', 3);
  const modes = modesOf(argv);
  const loadBefore = loadavg()[0] ?? 0;
  const oursChild = await compileOursChild();
  const baselineRef = argv.includes('--baseline') ? argv[argv.indexOf('--baseline') + 1] : undefined;
  const baseline = baselineRef === undefined ? undefined : await compileBaselineChild(baselineRef);
  // --cpu-prof DIR: a V8 CPU profile of each of our builds, for finding the fixed cost.
  const profileDir = argv.includes('--cpu-prof') ? argv[argv.indexOf('--cpu-prof') + 1] : undefined;
  const nodeArgs = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  const dir = await mkdtemp(join(tmpdir(), 'ami-chroot-vs-packer-'));
  const measured: Measured[] = [];
  let leaks: string[] = [];
  try {
    const rig: Rig = { dir, baseImage: join(dir, 'base.img') };
    await makeBusyboxImage(rig.baseImage, { sizeMiB: 32, tmpDir: dir });
    for (const sub of ['lock', 'dev', 'state', 'mnt']) await mkdir(join(dir, sub), { recursive: true });
    for (const mode of modes)
      for (let i = 0; i < runs; i++) {
        // Alternate which tool goes first, so that drift in the machine's load hits both alike.
        const tools: Tool[] = baseline ? ['ours', 'before', 'packer'] : ['ours', 'packer'];
        const order = i % 2 === 0 ? tools : [...tools].reverse();
        for (const tool of order) {
          const child = tool === 'before' ? baseline!.child : oursChild;
          measured.push(await buildOnce(tool, mode, i, rig, child, nodeArgs));
        }
      }
  } finally {
    await baseline?.remove();
    leaks = await leaksUnder(dir);
    if (leaks.length === 0) await rm(dir, { recursive: true, force: true });
  }
  if (leaks.length > 0) throw new Error(`vs-packer left mounts behind: ${leaks.join(', ')}`);
  const floor = await sdkFloor(runs);
  const rows = medians(measured, modes);
  const targets = targetsOf(rows, modes);
  const table = [
    `Same build (filter, provision, copy to ${SIDE_BY_SIDE.copyRegion}, sharing, tags); ${packerVersion}; medians of ${runs} runs; each build a process under /usr/bin/time -v (ours: node on the child compiled by esbuild)`,
    `largest proc RSS: one process's peak (time -v); tree RSS: peak sum over the process tree, sampled every ${TREE_SAMPLE_MS} ms. Realistic: Packer polls with AWS_POLL_DELAY_SECONDS scaled alike (its 5 s attach/detach delays become the same value)`,
    formatTable(
      ['tool', 'mode', 'runs', 'wall s', 'CPU s', 'largest proc RSS MiB', 'tree RSS MiB', 'AWS calls'],
      rows.map((r) => [
        r.tool,
        r.mode,
        r.runs,
        formatNumber(r.wallS),
        formatNumber(r.cpuS),
        formatNumber(r.maxRssMiB),
        formatNumber(r.treeRssMiB),
        r.awsCalls,
      ]),
    ),
    `Load average (1 min): ${formatNumber(loadBefore)} before, ${formatNumber(loadavg()[0] ?? 0)} after, on ${availableParallelism()} CPUs. ` +
      `Floor: a Node process that only requires @aws-sdk/client-ec2 (unbundled) takes ${formatNumber(floor.wallS)} s and ${formatNumber(floor.maxRssMiB)} MiB (median of ${runs})`,
    ...modes.map(
      (m) =>
        `Our per-phase times, ${m.mode} (timings of the build result; since the SDK loads on the first AWS call, it is in \`source\`, not in start-up, unless the child imports it):\n${phaseTable(measured, m.mode)}`,
    ),
    ...modes.map((m) => `AWS calls per build by action, ${m.mode} (medians):\n${callTable(measured, m.mode)}`),
  ].join('\n\n');
  return {
    name: 'vs-packer',
    table,
    targets,
    data: { runs, packerVersion, modes, measured, medians: rows, sdkFloor: floor, loadAverage: loadavg() },
    headline: Object.fromEntries(
      rows.map((r) => [
        `${r.tool} ${r.mode}`,
        { wallS: r.wallS, cpuS: r.cpuS, rssMiB: r.maxRssMiB, calls: r.awsCalls },
      ]),
    ),
  };
}

if (isMain(import.meta.url)) await runAsScript(run, process.argv.slice(2));
