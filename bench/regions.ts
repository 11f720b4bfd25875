/**
 * Region copies benchmark (issue 7, part 4): `copyToRegions` to 5 regions at once, against the
 * slowest of those copies alone.
 *
 *   npx tsx bench/regions.ts [--regions 5] [--scale 100] [--seed 1] [--rounds 2]
 *
 * The real `copyToRegions` against moto (one EC2 client per region), with each region's copy
 * made to stay `pending` for a time drawn from issue 7's range (60-900 s) divided by `scale`; the
 * poller's policy is divided likewise (including the copies' 60 s hold-off). Each round: the
 * copy to the region with the longest draw alone, then the copies to every region at once, with
 * the same draws. Copies run concurrently, so the ratio of the two wall times shows what the
 * extra regions cost: target within 5 %.
 */
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { MOTO_SOURCE_AMIS, motoEc2, registerImageInMoto, startMoto, type MotoServer } from '../fixtures/moto.js';
import { copyToRegions } from '../src/aws/regions.js';
import type { ProgressEvent } from '../src/types.js';
import { simulateTransitions, type Ec2Simulation } from './lib/ec2-sim.js';
import { BUILD_REGION, EC2_RANGES_S, scaledPollingWithHoldOff } from './lib/moto-build.js';
import { createRng } from './lib/prng.js';
import {
  BenchPrerequisiteError,
  formatTable,
  isMain,
  runAsScript,
  type Benchmark,
  type BenchResult,
  type Target,
} from './lib/report.js';
import { summarize } from './lib/stats.js';

/**
 * Options of {@link runRegionsBench}.
 * @internal
 */
export interface RegionsBenchOptions {
  /** Target regions. @defaultValue 5 */
  readonly regions?: number;
  /** Copy times and poll delays divided by this. @defaultValue 100 */
  readonly scale?: number;
  /** Seed of the drawn copy times. @defaultValue 1 */
  readonly seed?: number;
  /** Rounds, each with its own draws. @defaultValue 2 */
  readonly rounds?: number;
}

/**
 * The target: all copies within 5 % of the slowest one alone.
 * @internal
 */
export const REGIONS_TARGET_RATIO = 1.05;

/** Regions moto knows, other than the source region. */
const TARGET_REGIONS = [
  'eu-west-1',
  'eu-central-1',
  'ap-southeast-2',
  'us-west-2',
  'ca-central-1',
  'sa-east-1',
  'ap-northeast-1',
] as const;

interface CopyRun {
  readonly wallMs: number;
  /** Per region: simulated copy time, and when the copy was seen available after it was. */
  readonly regions: readonly { region: string; copyMs: number; lagMs: number; describeCalls: number }[];
}

async function copyOnce(
  moto: MotoServer,
  sourceImageId: string,
  copyMs: Readonly<Record<string, number>>,
  scale: number,
  label: string,
): Promise<CopyRun> {
  const clients = new Map<string, { client: EC2Client; sim: Ec2Simulation }>();
  const ec2 = (region: string): EC2Client => {
    let entry = clients.get(region);
    if (!entry) {
      const client = motoEc2(moto.endpoint, region);
      entry = {
        client,
        sim: simulateTransitions(client, () => ({
          volumeMs: 0,
          attachMs: 0,
          detachMs: 0,
          snapshotMs: 0,
          imageMs: 0,
          copyMs: copyMs[region] ?? 0,
        })),
      };
      clients.set(region, entry);
    }
    return entry.client;
  };
  const availableAt = new Map<string, number>();
  const onProgress = (event: ProgressEvent): void => {
    if (event.type === 'copy' && event.state === 'available') availableAt.set(event.region, Date.now());
  };
  try {
    const started = performance.now();
    await copyToRegions(
      { sourceImageId, sourceRegion: BUILD_REGION, regions: Object.keys(copyMs), name: `bench-copy-${label}` },
      { ec2, polling: scaledPollingWithHoldOff(scale), onProgress, logger: { warn: () => {} } },
    );
    const wallMs = performance.now() - started;
    const regions = Object.keys(copyMs).map((region) => {
      const sim = clients.get(region)!.sim;
      const copy = sim.images.find((i) => i.kind === 'copy');
      if (!copy) throw new Error(`No CopyImage was made to ${region}.`);
      return {
        region,
        copyMs: copy.readyMs - copy.fromMs,
        lagMs: (availableAt.get(region) ?? Number.NaN) - copy.readyMs,
        describeCalls: sim.describeCalls(),
      };
    });
    return { wallMs, regions };
  } finally {
    for (const { client } of clients.values()) client.destroy();
  }
}

async function checkMoto(): Promise<MotoServer> {
  try {
    return await startMoto();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (message.includes('moto_server was not found'))
      throw new BenchPrerequisiteError(`the region copies benchmark needs moto_server (pip install 'moto[server]').`);
    throw error;
  }
}

/**
 * Runs the region copies benchmark.
 * @throws {@link BenchPrerequisiteError} without moto_server
 * @internal
 */
export async function runRegionsBench(options: RegionsBenchOptions = {}): Promise<BenchResult> {
  const regionCount = options.regions ?? 5;
  const scale = options.scale ?? 100;
  const seed = options.seed ?? 1;
  const rounds = options.rounds ?? 2;
  if (!Number.isInteger(regionCount) || regionCount < 2 || regionCount > TARGET_REGIONS.length) {
    throw new RangeError(`--regions must be an integer from 2 to ${TARGET_REGIONS.length}, got ${regionCount}`);
  }
  if (!(scale >= 1)) throw new RangeError(`--scale must be at least 1, got ${scale}`);
  if (!Number.isInteger(rounds) || rounds < 1)
    throw new RangeError(`--rounds must be a positive integer, got ${rounds}`);
  const regions = TARGET_REGIONS.slice(0, regionCount);
  const rng = createRng(seed, 'regions/copies');
  const [minS, maxS] = EC2_RANGES_S.copyMs;

  const moto = await checkMoto();
  const results: {
    round: number;
    draws: Record<string, number>;
    slowest: string;
    alone: CopyRun;
    together: CopyRun;
    ratio: number;
  }[] = [];
  try {
    const source = motoEc2(moto.endpoint, BUILD_REGION);
    const { imageId } = await registerImageInMoto(source, `bench-copy-source-${MOTO_SOURCE_AMIS.debianNew.name}`);
    source.destroy();
    for (let round = 0; round < rounds; round++) {
      const draws = Object.fromEntries(
        regions.map((r) => [r, Math.round(((minS + rng.next() * (maxS - minS)) * 1000) / scale)]),
      );
      const slowest = regions.reduce((a, b) => (draws[b]! > draws[a]! ? b : a));
      const alone = await copyOnce(moto, imageId, { [slowest]: draws[slowest]! }, scale, `r${round}-alone`);
      const together = await copyOnce(moto, imageId, draws, scale, `r${round}-all`);
      results.push({ round, draws, slowest, alone, together, ratio: together.wallMs / alone.wallMs });
    }
  } finally {
    await moto.stop();
  }

  const ratios = summarize(results.map((r) => r.ratio));
  const rows = results.flatMap((r) => [
    [
      `round ${r.round + 1}: ${r.slowest} alone`,
      r.alone.wallMs / 1000,
      r.alone.regions[0]!.copyMs / 1000,
      r.alone.regions[0]!.lagMs,
      r.alone.regions[0]!.describeCalls,
      '-',
    ],
    [
      `round ${r.round + 1}: all ${regionCount} regions`,
      r.together.wallMs / 1000,
      Math.max(...r.together.regions.map((x) => x.copyMs)) / 1000,
      Math.max(...r.together.regions.map((x) => x.lagMs)),
      r.together.regions.reduce((s, x) => s + x.describeCalls, 0),
      r.ratio,
    ],
  ]);
  const lag = summarize(results.flatMap((r) => r.together.regions.map((x) => (100 * x.lagMs) / x.copyMs)));
  const table = [
    `Region copies: copyToRegions from ${BUILD_REGION} to ${regionCount} regions (${regions.join(', ')}), moto, copy times ${minS}-${maxS} s and poll delays scaled 1/${scale}, seed ${seed}, ${availableParallelism()} CPUs`,
    '',
    formatTable(['run', 'wall s', 'slowest copy s', 'max detection lag ms', 'Describe calls', 'wall / alone'], rows),
    '',
    `Detection lag over every copy made together: mean ${lag.mean.toFixed(2)} % of its copy time (max ${lag.max.toFixed(2)} %). The wall time of a copyToRegions call includes ` +
      'DescribeRegions, CopyImage, the wait, tags and permissions.',
  ].join('\n');
  const targets: Target[] = results.map((r) => ({
    name: `round ${r.round + 1}: ${regionCount} copies at once / slowest alone`,
    value: r.ratio,
    limit: REGIONS_TARGET_RATIO,
    unit: 'x',
    pass: r.ratio <= REGIONS_TARGET_RATIO,
  }));
  return {
    name: 'regions',
    table,
    targets,
    headline: { ratios: results.map((r) => r.ratio), worstRatio: ratios.max, meanLagPct: lag.mean },
    data: { regions, scale, seed, rounds, results, lagPct: lag },
  };
}

/**
 * CLI arguments → options.
 * @internal
 */
export function parseRegionsArgs(argv: readonly string[]): RegionsBenchOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      regions: { type: 'string' },
      scale: { type: 'string' },
      seed: { type: 'string' },
      rounds: { type: 'string' },
    },
    strict: true,
  });
  return {
    ...(values.regions === undefined ? {} : { regions: Number(values.regions) }),
    ...(values.scale === undefined ? {} : { scale: Number(values.scale) }),
    ...(values.seed === undefined ? {} : { seed: Number(values.seed) }),
    ...(values.rounds === undefined ? {} : { rounds: Number(values.rounds) }),
  };
}

/**
 * The region copies benchmark, for the runner.
 * @internal
 */
export const regionsBenchmark: Benchmark = {
  name: 'regions',
  description: 'copyToRegions to 5 regions at once vs the slowest copy alone, moto, scaled copy times',
  requires: ['moto_server'],
  run: (argv) => runRegionsBench(parseRegionsArgs(argv)),
};

if (isMain(import.meta.url)) {
  await runAsScript(regionsBenchmark.run, process.argv.slice(2));
}
