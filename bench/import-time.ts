/**
 * Import-time benchmark (issue 13 item 5): how long `import` of each package entry takes in a
 * fresh Node process, now that the AWS SDK loads on the first AWS call. The import part of the
 * footprint benchmark, alone and quick.
 *
 *   npx tsx bench/import-time.ts [--runs 10] [--no-build]
 *
 * Targets, net of an empty Node process's start-up, median of the runs: `ami-chroot/config`
 * under 150 ms, `ami-chroot` (no AWS call) under 300 ms.
 */
import { parseArgs } from 'node:util';
import { importTimes } from './footprint.js';
import { isMain, runAsScript, type Benchmark, type BenchResult } from './lib/report.js';

/**
 * Options of {@link runImportTimeBench}.
 * @internal
 */
export interface ImportTimeOptions {
  /** Fresh processes per entry. @defaultValue 10 */
  readonly runs?: number;
  /** Run `npm run build` first. @defaultValue true */
  readonly build?: boolean;
}

/**
 * Runs the import-time benchmark.
 * @internal
 */
export async function runImportTimeBench(options: ImportTimeOptions = {}): Promise<BenchResult> {
  const runs = options.runs ?? 10;
  const { baselineWallMs, imports, table, targets } = await importTimes(
    runs,
    options.build ?? true,
    'import times are measured on dist/',
  );
  const entryName = (label: string): string => label.split(' ')[0]!;
  return {
    name: 'import-time',
    table: [
      `Import time: ${runs} fresh Node ${process.version} processes per entry (plus one warm-up); an empty \`node -e ""\` takes ${baselineWallMs.p50.toFixed(0)} ms (median)`,
      '',
      table,
    ].join('\n'),
    targets,
    headline: Object.fromEntries(
      imports.filter((i) => i.label.startsWith('ami-chroot')).map((i) => [`${entryName(i.label)} netMs`, i.netWallMs]),
    ),
    data: { runs, node: process.version, baselineWallMs, imports },
  };
}

/**
 * CLI arguments → options.
 * @internal
 */
export function parseImportTimeArgs(argv: readonly string[]): ImportTimeOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: { runs: { type: 'string' }, 'no-build': { type: 'boolean' } },
    strict: true,
  });
  return {
    ...(values.runs === undefined ? {} : { runs: Number(values.runs) }),
    ...(values['no-build'] ? { build: false } : {}),
  };
}

/**
 * The import-time benchmark, for the runner.
 * @internal
 */
export const importTimeBenchmark: Benchmark = {
  name: 'import-time',
  description: 'import time of each package entry in fresh Node processes (no AWS call), median of the runs',
  requires: ['a buildable src/ (npm run build)'],
  run: (argv) => runImportTimeBench(parseImportTimeArgs(argv)),
};

if (isMain(import.meta.url)) {
  await runAsScript(importTimeBenchmark.run, process.argv.slice(2));
}
