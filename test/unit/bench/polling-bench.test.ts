import { describe, expect, it } from 'vitest';
import { runPollingBench, parsePollingArgs } from '../../../bench/polling.js';
import { formatTable, headlineJson, under, verdict } from '../../../bench/lib/report.js';
import { BUILD_WAITS } from '../../../bench/polling/timelines.js';

interface StrategyData {
  id: string;
  kinds: Record<string, { n: number; timeouts: number; lagS: { min: number }; calls: { min: number } }>;
  build: { callsVsPacker: number };
  targets: { name: string; pass: boolean }[];
}

describe('runPollingBench', () => {
  it('is reproducible, compares every strategy on the same timelines, and never detects a change before it happens', async () => {
    const a = await runPollingBench({ samples: 60, seed: 4 });
    const b = await runPollingBench({ samples: 60, seed: 4 });
    // Everything but the wall time the simulation took.
    const strategiesOf = (r: typeof a) => (r.data as { strategies: StrategyData[] }).strategies;
    expect(strategiesOf(a)).toEqual(strategiesOf(b));

    const strategies = (a.data as { strategies: StrategyData[] }).strategies;
    expect(strategies.map((s) => s.id)).toEqual(['ours', 'packer', 'sdk-v3']);
    for (const s of strategies) {
      for (const kind of BUILD_WAITS) {
        const k = s.kinds[kind]!;
        expect(k.n).toBe(60);
        expect(k.timeouts).toBe(0);
        expect(k.lagS.min).toBeGreaterThanOrEqual(0);
        expect(k.calls.min).toBeGreaterThanOrEqual(1);
      }
    }
    expect(strategies.find((s) => s.id === 'packer')!.build.callsVsPacker).toBe(1);
    // The targets returned are ours, one per short/long bucket present plus the per-build ratio,
    // then the concurrent builds' (calls and lag at 8 builds in one process).
    expect(a.targets.map((t) => t.name).slice(-3)).toEqual([
      'Describe calls per build / Packer',
      '8 builds in one process: calls per build / Packer',
      '8 builds in one process: mean lag, waits < 60 s',
    ]);
    const concurrent = (a.data as { concurrent: { concurrency: number; callsPerBuild: number }[] }).concurrent;
    expect(concurrent.map((c) => c.concurrency)).toEqual([1, 8, 32]);
    // Shared calls: more builds at once, fewer calls each.
    expect(concurrent[2]!.callsPerBuild).toBeLessThan(concurrent[0]!.callsPerBuild / 2);
    expect(a.targets.some((t) => t.name.startsWith('copyAvailable: mean lag / duration'))).toBe(true);
    expect(JSON.parse(headlineJson(a))).toMatchObject({
      benchmark: 'polling',
      headline: { ours: {}, packer: {}, 'sdk-v3': {} },
    });
  });

  it('adds the labelled experiments only when asked', async () => {
    const result = await runPollingBench({ samples: 10, experiments: true });
    const ids = (result.data as { strategies: StrategyData[] }).strategies.map((s) => s.id);
    expect(ids.slice(0, 3)).toEqual(['ours', 'packer', 'sdk-v3']);
    expect(ids.length).toBeGreaterThan(3);
    expect(ids.slice(3).every((id) => id.startsWith('x-'))).toBe(true);
    expect(result.table).toContain('EXPERIMENT');
  });

  it('parses its command line and rejects bad values', () => {
    expect(parsePollingArgs(['--samples', '50', '--seed', '3', '--durations', 'log-uniform', '--experiments'])).toEqual(
      {
        samples: 50,
        seed: 3,
        durations: 'log-uniform',
        experiments: true,
      },
    );
    expect(() => parsePollingArgs(['--durations', 'normal'])).toThrow(/uniform or log-uniform/);
    expect(() => parsePollingArgs(['--bogus'])).toThrow();
  });
});

describe('formatTable', () => {
  it('aligns text left and numbers right, with a rule under the header', () => {
    expect(
      formatTable(
        ['name', 'n'],
        [
          ['a', 1.5],
          ['long name', 120],
        ],
      ),
    ).toBe(['name          n', '---------  ----', 'a          1.50', 'long name   120'].join('\n'));
  });
});

describe('under', () => {
  it('flags a mean within two standard errors of its limit as marginal', () => {
    expect(verdict(under('clear pass', 0.5, 1, 's', 0.01))).toBe('PASS');
    expect(verdict(under('close pass', 0.99, 1, 's', 0.01))).toBe('PASS (marginal)');
    expect(verdict(under('close miss', 1.01, 1, 's', 0.01))).toBe('MISS (marginal)');
    expect(verdict(under('no error given', 1.01, 1, 's'))).toBe('MISS');
  });
});
