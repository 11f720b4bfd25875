/**
 * What every benchmark returns, and the plumbing to print and save it.
 *
 * A benchmark is a module exporting `run(options)`; it can also run alone (`tsx bench/x.ts`).
 * Results go three ways: a table for people, JSON on stdout for tools, and
 * `.bench-out/<name>.json` for diffs between runs.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * One stated goal and whether this run met it.
 * @internal
 */
export interface Target {
  /** What is measured, e.g. `volumeAvailable: mean lag (waits < 60 s)`. */
  readonly name: string;
  /** Measured value, in `unit`. */
  readonly value: number;
  /** The bound it must stay under (or over, when `higherIsBetter`). */
  readonly limit: number;
  readonly unit: string;
  readonly pass: boolean;
  /**
   * The value is within two standard errors of the limit: another seed may flip the verdict,
   * so it says little either way.
   */
  readonly marginal?: boolean;
}

/**
 * The outcome of one benchmark.
 * @internal
 */
export interface BenchResult {
  /** Short name, also the JSON file's name (`polling` → `.bench-out/polling.json`). */
  readonly name: string;
  /** Human-readable tables. */
  readonly table: string;
  /** Targets with PASS/MISS. */
  readonly targets: readonly Target[];
  /** Everything measured, as saved to JSON. */
  readonly data: unknown;
  /** The few numbers worth a glance, printed as one JSON line (the full data goes to the file). */
  readonly headline: Record<string, unknown>;
}

/**
 * A benchmark as the runner sees it.
 * @internal
 */
export interface Benchmark {
  /** Name used by `--only` and for the JSON file. */
  readonly name: string;
  /** One line for the runner's summary. */
  readonly description: string;
  /** What the machine needs (shown when the benchmark can't run). */
  readonly requires: readonly string[];
  /** Runs it with its own command-line arguments. */
  readonly run: (argv: readonly string[]) => Promise<BenchResult>;
}

/**
 * Thrown when a benchmark can't run here (not root, no loop devices, build failure...): the
 * runner prints the message and exits non-zero rather than reporting made-up numbers.
 * @internal
 */
export class BenchPrerequisiteError extends Error {
  override readonly name = 'BenchPrerequisiteError';
}

/**
 * The repository root (bench/ lives directly under it).
 * @internal
 */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Where JSON results go (gitignored).
 * @internal
 */
export const OUT_DIR = join(REPO_ROOT, '.bench-out');

/**
 * A target measured against an upper bound.
 * @internal
 */
export function atMost(name: string, value: number, limit: number, unit: string): Target {
  return { name, value, limit, unit, pass: value <= limit };
}

/**
 * A target measured against a strict upper bound ("under 1 s"). With `standardError` (of a
 * mean), a value within two of them of the limit is flagged marginal.
 * @internal
 */
export function under(name: string, value: number, limit: number, unit: string, standardError?: number): Target {
  const marginal =
    standardError !== undefined && Number.isFinite(standardError) && Math.abs(value - limit) < 2 * standardError;
  return { name, value, limit, unit, pass: value < limit, ...(marginal ? { marginal } : {}) };
}

/**
 * PASS or MISS, with "(marginal)" when the sample can't really tell.
 * @internal
 */
export function verdict(target: Target): string {
  return `${target.pass ? 'PASS' : 'MISS'}${target.marginal ? ' (marginal)' : ''}`;
}

/**
 * Formats rows as an aligned text table. Numbers are right-aligned, text left-aligned.
 * @internal
 */
export function formatTable(header: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const cells = [header, ...rows].map((row) => row.map((c) => (typeof c === 'number' ? formatNumber(c) : c)));
  const widths = header.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? '').length)));
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((row) => typeof row[i] === 'number'));
  const line = (row: readonly string[]): string =>
    row
      .map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(cells[0]!), rule, ...cells.slice(1).map(line)].join('\n');
}

/**
 * Three significant digits at most, no exponent for ordinary magnitudes.
 * @internal
 */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value)) return String(value);
  const abs = Math.abs(value);
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  return value.toFixed(3);
}

/**
 * The targets as a PASS/MISS table.
 * @internal
 */
export function formatTargets(targets: readonly Target[]): string {
  return formatTable(
    ['target', 'value', 'limit', 'unit', 'result'],
    targets.map((t) => [t.name, t.value, t.limit, t.unit, verdict(t)]),
  );
}

/**
 * Saves a result's data to `.bench-out/<name>.json` and returns the path.
 * @internal
 */
export async function saveResult(result: BenchResult): Promise<string> {
  await mkdir(OUT_DIR, { recursive: true });
  const path = join(OUT_DIR, `${result.name}.json`);
  await writeFile(path, `${JSON.stringify(jsonDocument(result), null, 2)}\n`);
  return path;
}

/**
 * The JSON form of a result: data plus targets, with the run's time and machine.
 * @internal
 */
export function jsonDocument(result: BenchResult): Record<string, unknown> {
  return {
    benchmark: result.name,
    generatedAt: new Date().toISOString(),
    node: process.version,
    targets: result.targets,
    data: result.data,
  };
}

/**
 * The one-line JSON summary printed after the tables: targets and headline numbers, rounded.
 * @internal
 */
export function headlineJson(result: BenchResult): string {
  return JSON.stringify(
    { benchmark: result.name, targets: result.targets, headline: result.headline },
    (_key, value: unknown) =>
      typeof value === 'number' && !Number.isInteger(value) ? Number(value.toPrecision(4)) : value,
  );
}

/**
 * Runs one benchmark as a script: prints its tables, targets and a one-line JSON summary on
 * stdout (with `--json`, only the full JSON document), saves the full JSON, and sets the exit
 * code: 2 when a prerequisite is missing, 1 on any other error; a missed target is reported,
 * not an error, unless `--strict`.
 * @internal
 */
export async function runAsScript(
  run: (argv: readonly string[]) => Promise<BenchResult>,
  argv: readonly string[],
): Promise<void> {
  const jsonOnly = argv.includes('--json');
  const strict = argv.includes('--strict');
  try {
    const result = await run(argv.filter((a) => a !== '--json' && a !== '--strict'));
    const path = await saveResult(result);
    if (jsonOnly) {
      process.stdout.write(`${JSON.stringify(jsonDocument(result))}\n`);
    } else {
      const targets =
        result.targets.length > 0
          ? `Targets\n${formatTargets(result.targets)}`
          : 'Targets: none set for this benchmark (figures are reported, not judged)';
      process.stdout.write(`${result.table}\n\n${targets}\n\nFull JSON: ${path}\n${headlineJson(result)}\n`);
    }
    if (strict && result.targets.some((t) => !t.pass)) process.exitCode = 1;
  } catch (error) {
    if (error instanceof BenchPrerequisiteError) {
      process.stderr.write(`Cannot run this benchmark here: ${error.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw error;
  }
}

/**
 * True when the module at `metaUrl` is the script Node was started with.
 * @internal
 */
export function isMain(metaUrl: string): boolean {
  const entry = process.argv[1];
  return entry !== undefined && resolve(entry) === fileURLToPath(metaUrl);
}
