/**
 * Runs every benchmark (or those named with --only) and prints a combined summary.
 *
 *   npm run bench                                   # all of them
 *   npm run bench -- --only polling                 # one (repeat --only, or comma-separate)
 *   npm run bench -- --only polling --samples 500   # arguments after the runner's own go to the
 *                                                   # benchmark when exactly one is selected
 *   npm run bench -- --strict                       # exit 1 when a target is missed
 *
 * Each benchmark prints its tables as it finishes and saves `.bench-out/<name>.json`; the
 * runner writes `.bench-out/summary.json`. Exit code: 2 when a benchmark could not run here
 * (missing root, loop devices, build...), 1 when one failed or (with --strict) missed a target.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chrootCycleBenchmark } from './chroot-cycle.js';
import { footprintBenchmark } from './footprint.js';
import { importTimeBenchmark } from './import-time.js';
import {
  BenchPrerequisiteError,
  OUT_DIR,
  formatTable,
  formatTargets,
  headlineJson,
  isMain,
  saveResult,
  type Benchmark,
} from './lib/report.js';
import { parallelBenchmark } from './parallel.js';
import { pollingBenchmark } from './polling.js';
import { regionsBenchmark } from './regions.js';

/**
 * Every benchmark, in the order they run (cheap first).
 * @internal
 */
export const BENCHMARKS: readonly Benchmark[] = [
  pollingBenchmark,
  chrootCycleBenchmark,
  regionsBenchmark,
  importTimeBenchmark,
  footprintBenchmark,
  parallelBenchmark,
];

interface Outcome {
  readonly name: string;
  readonly status: 'ok' | 'missed' | 'not run' | 'failed';
  readonly targetsMet: string;
  readonly note: string;
  readonly seconds: number;
}

/**
 * Splits the command line into the runner's options and the arguments for the benchmark.
 * @internal
 */
export function parseRunnerArgs(argv: readonly string[]): { only: string[]; strict: boolean; rest: string[] } {
  const only: string[] = [];
  const rest: string[] = [];
  let strict = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--strict') strict = true;
    else if (arg === '--only') {
      const value = argv[++i];
      if (value === undefined) throw new RangeError('--only needs a benchmark name');
      only.push(...value.split(','));
    } else if (arg.startsWith('--only=')) only.push(...arg.slice('--only='.length).split(','));
    else rest.push(arg);
  }
  return { only: only.map((n) => n.trim()).filter((n) => n !== ''), strict, rest };
}

/** Keeps the summary table readable; the full text is in the benchmark's own output. */
function shorten(text: string, max = 110): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

async function main(argv: readonly string[]): Promise<number> {
  const { only, strict, rest } = parseRunnerArgs(argv);
  const unknown = only.filter((name) => !BENCHMARKS.some((b) => b.name === name));
  if (unknown.length > 0) {
    process.stderr.write(
      `Unknown benchmark(s): ${unknown.join(', ')}. Available: ${BENCHMARKS.map((b) => b.name).join(', ')}.\n`,
    );
    return 1;
  }
  const selected = only.length === 0 ? BENCHMARKS : BENCHMARKS.filter((b) => only.includes(b.name));
  if (rest.length > 0 && selected.length !== 1) {
    process.stderr.write(`Arguments ${rest.join(' ')} can only go to a single benchmark: add --only <name>.\n`);
    return 1;
  }

  const outcomes: Outcome[] = [];
  const headlines: Record<string, unknown> = {};
  for (const bench of selected) {
    process.stdout.write(`\n=== ${bench.name}: ${bench.description}\n\n`);
    const started = performance.now();
    const seconds = (): number => (performance.now() - started) / 1000;
    try {
      const result = await bench.run(rest);
      const path = await saveResult(result);
      const missed = result.targets.filter((t) => !t.pass);
      process.stdout.write(`${result.table}\n\n`);
      if (result.targets.length > 0) process.stdout.write(`Targets\n${formatTargets(result.targets)}\n\n`);
      process.stdout.write(`Full JSON: ${path}\n${headlineJson(result)}\n`);
      headlines[bench.name] = JSON.parse(headlineJson(result)) as unknown;
      outcomes.push({
        name: bench.name,
        status: missed.length > 0 ? 'missed' : 'ok',
        targetsMet:
          result.targets.length === 0 ? '-' : `${result.targets.length - missed.length}/${result.targets.length}`,
        note:
          missed.length > 0 ? shorten(`missed: ${missed.map((t) => t.name.replace(/ \(n=\d+\)/, '')).join('; ')}`) : '',
        seconds: seconds(),
      });
    } catch (error) {
      const prerequisite = error instanceof BenchPrerequisiteError;
      const message = error instanceof Error ? error.message : String(error);
      process.stdout.write(`${prerequisite ? 'NOT RUN' : 'FAILED'}: ${message}\n`);
      if (!prerequisite && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
      outcomes.push({
        name: bench.name,
        status: prerequisite ? 'not run' : 'failed',
        targetsMet: '-',
        note: shorten(`${message.split('\n')[0]}${prerequisite ? ` (needs: ${bench.requires.join(', ')})` : ''}`),
        seconds: seconds(),
      });
    }
  }

  process.stdout.write(
    `\n=== Summary\n\n${formatTable(
      ['benchmark', 'status', 'targets met', 'seconds', 'note'],
      outcomes.map((o) => [o.name, o.status, o.targetsMet, o.seconds, o.note]),
    )}\n`,
  );
  await mkdir(OUT_DIR, { recursive: true });
  await writeFile(
    join(OUT_DIR, 'summary.json'),
    `${JSON.stringify({ generatedAt: new Date().toISOString(), node: process.version, outcomes, headlines }, null, 2)}\n`,
  );

  if (outcomes.some((o) => o.status === 'not run')) return 2;
  if (outcomes.some((o) => o.status === 'failed')) return 1;
  if (strict && outcomes.some((o) => o.status === 'missed')) return 1;
  return 0;
}

if (isMain(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
