/**
 * What loading `@aws-sdk/client-ec2` alone costs a fresh Node process, by `require` (how
 * `src/aws/sdk.ts` loads it) and by `import()` (how an ES module's static import loads it), next
 * to an empty process: wall, CPU and peak RSS under `/usr/bin/time -v`, and the EC2Client's
 * construction, and as a bundle loads it (`scripts/bundle.ts`: only the commands the library lists,
 * as the `ami-chroot` executable does). It is the floor under a build process's start-up and RSS
 * (issue 14's 120 MiB target): no build can weigh less than the SDK it calls EC2 with.
 *
 *   npx tsx bench/sdk-load.ts [--runs 10]
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { bundleProgram } from '../scripts/bundle.js';
import { formatNumber, formatTable, isMain, runAsScript, type BenchResult } from './lib/report.js';
import { measure, type ProcessCost } from './vs-packer/measure.js';

const REPO = resolve(import.meta.dirname, '..');
const OUT = join(REPO, '.bench-out');

/** A program that makes an EC2Client through the library's loader, bundled as the CLI is. */
async function bundledProgram(): Promise<string> {
  await mkdir(OUT, { recursive: true });
  const entry = join(OUT, 'sdk-load-bundled.ts');
  const loader = JSON.stringify(join(REPO, 'src/aws/sdk.js'));
  await writeFile(
    entry,
    `import { ec2Sdk } from ${loader};\nconst { EC2Client } = await ec2Sdk();\nnew EC2Client({ region: 'us-east-1' });\n`,
  );
  const outfile = join(OUT, 'sdk-load-bundled.mjs');
  await bundleProgram({ entry, outfile });
  return outfile;
}

/** The ways measured: a label and the `node` arguments. */
const WAYS: readonly (readonly [string, readonly string[]])[] = [
  ['empty process', ['-e', '']],
  ['require, as the library', ['-e', "require('@aws-sdk/client-ec2')"]],
  [
    'require + new EC2Client',
    ['-e', "const { EC2Client } = require('@aws-sdk/client-ec2'); new EC2Client({ region: 'us-east-1' })"],
  ],
  ['import() (ESM static import)', ['--input-type=module', '-e', "await import('@aws-sdk/client-ec2')"]],
];

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Runs the SDK load benchmark.
 * @internal
 */
export async function run(argv: readonly string[]): Promise<BenchResult> {
  const index = argv.indexOf('--runs');
  const runs = index >= 0 ? Number(argv[index + 1]) : 10;
  if (!Number.isInteger(runs) || runs < 1)
    throw new RangeError(`--runs must be a positive integer, got ${argv[index + 1]}`);
  const ways = [...WAYS, ['bundled, as the CLI (+ new EC2Client)', [await bundledProgram()]] as const];
  const loadBefore = loadavg()[0] ?? 0;
  const costs = new Map<string, ProcessCost[]>(ways.map(([label]) => [label, []]));
  // One warm-up round (file cache), then rounds that alternate the ways so load drifts over all.
  for (let round = 0; round <= runs; round++)
    for (const [label, args] of ways) {
      const cost = await measure(process.execPath, args);
      if (round > 0) costs.get(label)!.push(cost);
    }
  const rows = ways.map(([label]) => {
    const of = costs.get(label)!;
    return {
      label,
      wallMs: median(of.map((c) => c.wallS * 1000)),
      cpuMs: median(of.map((c) => c.cpuS * 1000)),
      rssMiB: median(of.map((c) => c.maxRssMiB)),
    };
  });
  const table = [
    `@aws-sdk/client-ec2 in a fresh Node ${process.version} process, median of ${runs} (after a warm-up round); /usr/bin/time -v`,
    formatTable(
      ['what', 'wall ms', 'CPU ms', 'peak RSS MiB'],
      rows.map((r) => [r.label, formatNumber(r.wallMs), formatNumber(r.cpuMs), formatNumber(r.rssMiB)]),
    ),
    `Load average (1 min): ${formatNumber(loadBefore)} before, ${formatNumber(loadavg()[0] ?? 0)} after, on ${availableParallelism()} CPUs.`,
  ].join('\n\n');
  return {
    name: 'sdk-load',
    table,
    targets: [],
    data: { runs, rows, loadAverage: loadavg() },
    headline: Object.fromEntries(rows.map((r) => [r.label, { wallMs: r.wallMs, cpuMs: r.cpuMs, rssMiB: r.rssMiB }])),
  };
}

if (isMain(import.meta.url)) await runAsScript(run, process.argv.slice(2));
