/**
 * Polling benchmark (issue 7, part 1): how late each way of waiting notices an EC2 state change,
 * and how many Describe calls it spends, on the same sampled timelines in virtual time.
 *
 *   npx tsx bench/polling.ts [--samples 5000] [--seed 1] [--durations uniform|log-uniform]
 *                            [--experiments] [--json] [--strict]
 *
 * Lag = time the poller saw the awaited state - time the resource reached it. Calls are
 * instantaneous in the simulation, for every strategy alike.
 */
import { parseArgs } from 'node:util';
import { DEFAULT_WAIT_POLICIES } from '../src/aws/poll-policy.js';
import { createRng } from './lib/prng.js';
import {
  atMost,
  formatNumber,
  formatTable,
  isMain,
  runAsScript,
  under,
  verdict,
  type Benchmark,
  type BenchResult,
  type Target,
} from './lib/report.js';
import { mean, summarize, type Summary } from './lib/stats.js';
import { oursStrategy, packerStrategy, sdkV3Strategy, type Strategy } from './polling/policies.js';
import { experimentStrategies } from './polling/experiments.js';
import { runConcurrentBuilds, type ConcurrentResult } from './polling/concurrent.js';
import {
  BUILD_WAITS,
  SNAPSHOT_SHAPES,
  sampleTimeline,
  type DurationDistribution,
  type SimKind,
  type Timeline,
} from './polling/timelines.js';

/**
 * Options of {@link runPollingBench}.
 * @internal
 */
export interface PollingBenchOptions {
  /** Timelines per wait kind. @defaultValue 5000 */
  readonly samples?: number;
  /** Seed of every random stream. @defaultValue 1 */
  readonly seed?: number;
  /** How durations are drawn from their ranges. @defaultValue 'uniform' */
  readonly durations?: DurationDistribution;
  /** Also run the experimental schedules in bench/polling/experiments.ts. @defaultValue false */
  readonly experiments?: boolean;
  /** Builds per row of the concurrent-builds table (1, 8 and 32 at once). @defaultValue 256, or `samples` if fewer */
  readonly concurrentBuilds?: number;
}

/** A wait shorter than this is "short": its target is an absolute lag, not a share of its duration. */
const SHORT_WAIT_MS = 60_000;

/**
 * The targets for our poller.
 * @internal
 */
export const POLLING_TARGETS = {
  shortMeanLagS: 1,
  shortP99LagS: 3,
  longMeanLagPct: 2,
  callsPerBuildVsPacker: 2,
} as const;

interface Sample {
  readonly timeline: Timeline;
  readonly lagMs: number | undefined;
  readonly calls: number;
}

interface KindStats {
  readonly n: number;
  readonly timeouts: number;
  readonly durationS: Summary;
  readonly lagS: Summary;
  readonly calls: Summary;
  /** Waits under a minute: absolute lag. */
  readonly short: { readonly n: number; readonly lagS: Summary };
  /** Waits of a minute or more: lag as a percentage of the wait. */
  readonly long: {
    readonly n: number;
    readonly lagPct: Summary;
    readonly lagS: Summary;
    readonly lagPctOfTotal: number;
  };
  /** Snapshot shapes only: the same figures per progress shape. */
  readonly byShape?: Record<
    string,
    { readonly n: number; readonly lagS: Summary; readonly lagPctOfDuration: Summary; readonly calls: Summary }
  >;
}

interface StrategyStats {
  readonly id: string;
  readonly description: string;
  readonly kinds: Record<SimKind, KindStats>;
  readonly build: {
    /** Describe calls per build, waits plus `extraCalls`. */
    readonly calls: Summary;
    /** Of those, calls outside the waits (see `Strategy.extraCallsPerBuild`). */
    readonly extraCalls: number;
    readonly lagS: Summary;
    /** Mean calls per build divided by Packer's (the "calls per build" ratio). */
    readonly callsVsPacker: number;
    /** Describe calls per minute spent waiting, over all builds (what a throttle bucket sees). */
    readonly callsPerMinute: number;
  };
  readonly targets: readonly Target[];
}

function kindStats(samples: readonly Sample[]): KindStats {
  const detected = samples.filter((s): s is Sample & { lagMs: number } => s.lagMs !== undefined);
  const short = detected.filter((s) => s.timeline.doneAtMs < SHORT_WAIT_MS);
  const long = detected.filter((s) => s.timeline.doneAtMs >= SHORT_WAIT_MS);
  const stats: KindStats = {
    n: samples.length,
    timeouts: samples.length - detected.length,
    durationS: summarize(samples.map((s) => s.timeline.doneAtMs / 1000)),
    lagS: summarize(detected.map((s) => s.lagMs / 1000)),
    calls: summarize(samples.map((s) => s.calls)),
    short: { n: short.length, lagS: summarize(short.map((s) => s.lagMs / 1000)) },
    long: {
      n: long.length,
      lagPct: summarize(long.map((s) => (100 * s.lagMs) / s.timeline.doneAtMs)),
      lagS: summarize(long.map((s) => s.lagMs / 1000)),
      // The other reading of "lag under 2 % of the duration": total lag over total waiting.
      lagPctOfTotal:
        (100 * long.reduce((sum, s) => sum + s.lagMs, 0)) / long.reduce((sum, s) => sum + s.timeline.doneAtMs, 0),
    },
  };
  if (samples[0]?.timeline.kind !== 'snapshotCompleted') return stats;
  const byShape: NonNullable<KindStats['byShape']> = {};
  for (const shape of Object.keys(SNAPSHOT_SHAPES)) {
    const ofShape = detected.filter((s) => s.timeline.shape === shape);
    byShape[shape] = {
      n: ofShape.length,
      lagS: summarize(ofShape.map((s) => s.lagMs / 1000)),
      lagPctOfDuration: summarize(ofShape.map((s) => (100 * s.lagMs) / s.timeline.doneAtMs)),
      calls: summarize(ofShape.map((s) => s.calls)),
    };
  }
  return { ...stats, byShape };
}

/** Standard error of a sample mean. */
const se = (s: Summary): number => s.sd / Math.sqrt(s.n);

function targetsFor(kinds: Record<SimKind, KindStats>, callsVsPacker: number): Target[] {
  const targets: Target[] = [];
  for (const kind of BUILD_WAITS) {
    const k = kinds[kind];
    if (k.timeouts > 0) targets.push(atMost(`${kind}: timeouts`, k.timeouts, 0, 'waits'));
    if (k.short.n > 0) {
      targets.push(
        under(
          `${kind}: mean lag, waits < 60 s (n=${k.short.n})`,
          k.short.lagS.mean,
          POLLING_TARGETS.shortMeanLagS,
          's',
          se(k.short.lagS),
        ),
      );
      targets.push(under(`${kind}: p99 lag, waits < 60 s`, k.short.lagS.p99, POLLING_TARGETS.shortP99LagS, 's'));
    }
    if (k.long.n > 0) {
      targets.push(
        under(
          `${kind}: mean lag / duration, waits >= 60 s (n=${k.long.n})`,
          k.long.lagPct.mean,
          POLLING_TARGETS.longMeanLagPct,
          '%',
          se(k.long.lagPct),
        ),
      );
    }
  }
  targets.push(atMost('Describe calls per build / Packer', callsVsPacker, POLLING_TARGETS.callsPerBuildVsPacker, 'x'));
  return targets;
}

async function measure(
  strategy: Strategy,
  timelines: Record<SimKind, readonly Timeline[]>,
  seed: number,
): Promise<Record<SimKind, Sample[]>> {
  const out = {} as Record<SimKind, Sample[]>;
  for (const kind of BUILD_WAITS) {
    // One jitter stream per (strategy, kind): adding a strategy never changes another's numbers.
    const rng = createRng(seed, `jitter/${strategy.id}/${kind}`);
    const samples: Sample[] = [];
    for (const timeline of timelines[kind]) {
      const outcome = await strategy.wait(timeline, rng);
      samples.push({
        timeline,
        lagMs: outcome.detectedAtMs === undefined ? undefined : outcome.detectedAtMs - timeline.doneAtMs,
        calls: outcome.calls,
      });
    }
    out[kind] = samples;
  }
  return out;
}

function buildStats(
  samples: Record<SimKind, Sample[]>,
  n: number,
  extraCalls: number,
): { calls: number[]; lagMs: number[]; waitedMs: number } {
  const calls: number[] = [];
  const lagMs: number[] = [];
  let waitedMs = 0;
  for (let i = 0; i < n; i++) {
    let c = extraCalls;
    let lag = 0;
    for (const kind of BUILD_WAITS) {
      const s = samples[kind][i]!;
      c += s.calls;
      lag += s.lagMs ?? 0;
      waitedMs += s.timeline.doneAtMs + (s.lagMs ?? 0);
    }
    calls.push(c);
    lagMs.push(lag);
  }
  return { calls, lagMs, waitedMs };
}

/**
 * Runs the polling benchmark.
 * @internal
 */
export async function runPollingBench(options: PollingBenchOptions = {}): Promise<BenchResult> {
  const samples = options.samples ?? 5000;
  const seed = options.seed ?? 1;
  const durations = options.durations ?? 'uniform';
  if (!Number.isInteger(samples) || samples < 1)
    throw new RangeError(`--samples must be a positive integer, got ${samples}`);

  const timelines = {} as Record<SimKind, Timeline[]>;
  for (const kind of BUILD_WAITS) {
    const rng = createRng(seed, `timelines/${kind}`);
    timelines[kind] = Array.from({ length: samples }, () => sampleTimeline(kind, rng, durations));
  }

  const strategies: Strategy[] = [
    oursStrategy(),
    packerStrategy(),
    sdkV3Strategy(),
    ...(options.experiments ? experimentStrategies() : []),
  ];
  const started = performance.now();
  const raw = new Map<string, Record<SimKind, Sample[]>>();
  for (const strategy of strategies) raw.set(strategy.id, await measure(strategy, timelines, seed));
  const simulationMs = performance.now() - started;

  const extraOf = (id: string): number => strategies.find((s) => s.id === id)?.extraCallsPerBuild ?? 0;
  const packerBuild = buildStats(raw.get('packer')!, samples, extraOf('packer'));
  const packerMeanCalls = mean(packerBuild.calls);
  const results: StrategyStats[] = strategies.map((strategy) => {
    const byKind = raw.get(strategy.id)!;
    const kinds = {} as Record<SimKind, KindStats>;
    for (const kind of BUILD_WAITS) kinds[kind] = kindStats(byKind[kind]);
    const build = buildStats(byKind, samples, extraOf(strategy.id));
    const callsVsPacker = mean(build.calls) / packerMeanCalls;
    return {
      id: strategy.id,
      description: strategy.description,
      kinds,
      build: {
        calls: summarize(build.calls),
        extraCalls: extraOf(strategy.id),
        lagS: summarize(build.lagMs.map((ms) => ms / 1000)),
        callsVsPacker,
        callsPerMinute: build.calls.reduce((s, c) => s + c, 0) / (build.waitedMs / 60_000),
      },
      targets: targetsFor(kinds, callsVsPacker),
    };
  });

  const ours = results.find((r) => r.id === 'ours')!;
  const concurrentBuilds = options.concurrentBuilds ?? Math.min(256, samples);
  const concurrent: ConcurrentResult[] = [];
  for (const n of CONCURRENCY) concurrent.push(await runConcurrentBuilds(n, concurrentBuilds, seed));
  const atEight = concurrent.find((c) => c.concurrency === 8)!;
  const concurrentTargets: Target[] = [
    atMost(
      '8 builds in one process: calls per build / Packer',
      atEight.callsPerBuild / atEight.packerCallsPerBuild,
      1,
      'x',
    ),
    under('8 builds in one process: mean lag, waits < 60 s', atEight.shortWaitLagS, POLLING_TARGETS.shortMeanLagS, 's'),
  ];
  return {
    name: 'polling',
    table: [renderTables(results, { samples, seed, durations, simulationMs }), renderConcurrent(concurrent)].join(
      '\n\n',
    ),
    targets: [...ours.targets, ...concurrentTargets],
    headline: Object.fromEntries(
      results.map((r) => [
        r.id,
        {
          callsPerBuild: r.build.calls.mean,
          callsVsPacker: r.build.callsVsPacker,
          lagPerBuildS: r.build.lagS.mean,
          meanLagS: Object.fromEntries(BUILD_WAITS.map((kind) => [kind, r.kinds[kind].lagS.mean])),
        },
      ]),
    ),
    data: {
      config: {
        samples,
        seed,
        durations,
        shortWaitMs: SHORT_WAIT_MS,
        targets: POLLING_TARGETS,
        snapshotShapes: SNAPSHOT_SHAPES,
        oursPolicies: DEFAULT_WAIT_POLICIES,
      },
      simulationMs: Math.round(simulationMs),
      strategies: results,
      concurrent,
    },
  };
}

/** Builds run at once in one process by the concurrency section. */
const CONCURRENCY = [1, 8, 32] as const;

function renderConcurrent(rows: readonly ConcurrentResult[]): string {
  return [
    'Concurrent builds in one process (shared Describe batches; builds start within 5 s, provision 5-120 s)',
    formatTable(
      ['builds at once', 'builds', 'calls/build', 'Packer calls/build', 'vs Packer', 'lag/build s', 'lag < 60 s waits'],
      rows.map((r) => [
        r.concurrency,
        r.builds,
        r.callsPerBuild,
        r.packerCallsPerBuild,
        r.callsPerBuild / r.packerCallsPerBuild,
        r.lagPerBuildS,
        r.shortWaitLagS,
      ]),
    ),
  ].join('\n');
}

function renderTables(
  results: readonly StrategyStats[],
  info: { samples: number; seed: number; durations: string; simulationMs: number },
): string {
  const perKind: (string | number)[][] = [];
  for (const kind of BUILD_WAITS) {
    for (const r of results) {
      const k = r.kinds[kind];
      perKind.push([
        kind,
        r.id,
        k.lagS.mean,
        k.lagS.p50,
        k.lagS.p99,
        k.lagS.max,
        k.short.n > 0 ? k.short.lagS.mean : '-',
        k.long.n > 0 ? k.long.lagPct.mean : '-',
        k.calls.mean,
        k.timeouts,
      ]);
    }
  }
  const build = results.map((r) => [
    r.id,
    r.build.calls.mean,
    r.build.extraCalls,
    r.build.calls.p99,
    r.build.callsVsPacker,
    r.build.callsPerMinute,
    r.build.lagS.mean,
    r.build.lagS.p99,
  ]);
  const shapes: (string | number)[][] = [];
  for (const shape of Object.keys(SNAPSHOT_SHAPES)) {
    for (const r of results) {
      const s = r.kinds.snapshotCompleted.byShape?.[shape];
      if (s === undefined || s.n === 0) continue;
      shapes.push([shape, r.id, s.n, s.lagS.mean, s.lagS.p99, s.lagPctOfDuration.mean, s.calls.mean]);
    }
  }
  // One row per target, one column per strategy: the same yardstick for everyone.
  const ours = results[0]!;
  const matrix = ours.targets.map((target, i) => [
    target.name.replace(/ \(n=\d+\)/, ''),
    `${target.unit === 'x' ? '<=' : '<'} ${target.limit} ${target.unit}`,
    ...results.map((r) => {
      const t = r.targets[i];
      return t === undefined || t.name !== target.name ? '-' : `${formatNumber(t.value)} ${verdict(t)}`;
    }),
  ]);
  return [
    `Polling: ${info.samples} timelines per wait, seed ${info.seed}, ${info.durations} durations; simulated in ${Math.round(info.simulationMs)} ms`,
    ...results.map((r) => `  ${r.id}: ${r.description}`),
    '',
    'Per wait (lag in seconds; "short" = waits under 60 s, "long %" = mean lag / duration for waits of 60 s or more)',
    formatTable(
      ['wait', 'strategy', 'mean lag', 'p50', 'p99', 'max', 'short mean', 'long %', 'calls', 'timeouts'],
      perKind,
    ),
    '',
    'Snapshot lag by progress shape',
    formatTable(['shape', 'strategy', 'n', 'mean lag s', 'p99 s', 'lag % of wait', 'calls'], shapes),
    '',
    'Per build (volume + attach + detach + snapshot + image + one copy; "not in waits": Describe calls the build adds after a wait)',
    formatTable(
      ['strategy', 'calls', 'not in waits', 'calls p99', 'vs Packer', 'calls/min', 'total lag s', 'lag p99 s'],
      build,
    ),
    '',
    'Targets, judged for every strategy (only ours must pass)',
    formatTable(['target', 'limit', ...results.map((r) => r.id)], matrix),
  ].join('\n');
}

/**
 * CLI arguments → options.
 * @internal
 */
export function parsePollingArgs(argv: readonly string[]): PollingBenchOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      samples: { type: 'string' },
      seed: { type: 'string' },
      durations: { type: 'string' },
      experiments: { type: 'boolean' },
    },
    strict: true,
  });
  const durations = values.durations;
  if (durations !== undefined && durations !== 'uniform' && durations !== 'log-uniform') {
    throw new RangeError(`--durations must be uniform or log-uniform, got ${JSON.stringify(durations)}`);
  }
  return {
    ...(values.samples === undefined ? {} : { samples: Number(values.samples) }),
    ...(values.seed === undefined ? {} : { seed: Number(values.seed) }),
    ...(durations === undefined ? {} : { durations }),
    ...(values.experiments === undefined ? {} : { experiments: values.experiments }),
  };
}

/**
 * The polling benchmark, for the runner.
 * @internal
 */
export const pollingBenchmark: Benchmark = {
  name: 'polling',
  description: 'lag and Describe calls of ours vs Packer vs SDK v3 waiters, simulated (virtual clock)',
  requires: [],
  run: (argv) => runPollingBench(parsePollingArgs(argv)),
};

if (isMain(import.meta.url)) {
  await runAsScript(pollingBenchmark.run, process.argv.slice(2));
}
