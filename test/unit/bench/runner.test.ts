import { describe, expect, it } from 'vitest';
import { BENCHMARKS, parseRunnerArgs } from '../../../bench/run.js';
import { parseFootprintArgs } from '../../../bench/footprint.js';

describe('bench runner', () => {
  it('takes --only (repeated or comma-separated) and --strict, and leaves the rest for the benchmark', () => {
    expect(
      parseRunnerArgs(['--only', 'polling,footprint', '--strict', '--samples', '5', '--only=chroot-cycle']),
    ).toEqual({
      only: ['polling', 'footprint', 'chroot-cycle'],
      strict: true,
      rest: ['--samples', '5'],
    });
    expect(parseRunnerArgs([])).toEqual({ only: [], strict: false, rest: [] });
    expect(() => parseRunnerArgs(['--only'])).toThrow(/needs a benchmark name/);
  });

  it('knows every benchmark by a unique name, each saying what it needs', () => {
    const names = BENCHMARKS.map((b) => b.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toContain('polling');
    expect(names).toContain('footprint');
    expect(names).toEqual(expect.arrayContaining(['chroot-cycle', 'regions', 'parallel']));
    for (const b of BENCHMARKS) expect(b.description.length).toBeGreaterThan(0);
  });

  it('parses the footprint options', () => {
    expect(parseFootprintArgs(['--runs', '3', '--no-build'])).toEqual({ runs: 3, build: false });
    expect(parseFootprintArgs(['--no-rss'])).toEqual({ rss: false });
    expect(parseFootprintArgs([])).toEqual({});
  });
});
