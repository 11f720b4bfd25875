/**
 * Summary statistics for benchmark samples.
 */

/**
 * Mean, median, tail percentiles and extremes of a sample.
 * @internal
 */
export interface Summary {
  readonly n: number;
  readonly mean: number;
  /** Sample standard deviation. */
  readonly sd: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly min: number;
  readonly max: number;
}

/**
 * The q-quantile (0..1) of an ascending sample, interpolating between ranks (R's type 7,
 * numpy's default), so p50 of an even sample is the mean of the middle two.
 * @internal
 */
export function quantileSorted(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo]!;
  const b = sorted[hi]!;
  return a + (b - a) * (pos - lo);
}

/**
 * Summarizes a sample (NaN fields for an empty one).
 * @internal
 */
export function summarize(values: readonly number[]): Summary {
  const sorted = [...values].sort((x, y) => x - y);
  const mean = sorted.length === 0 ? Number.NaN : sorted.reduce((s, v) => s + v, 0) / sorted.length;
  const variance =
    sorted.length < 2 ? Number.NaN : sorted.reduce((s, v) => s + (v - mean) ** 2, 0) / (sorted.length - 1);
  return {
    n: sorted.length,
    mean,
    sd: Math.sqrt(variance),
    p50: quantileSorted(sorted, 0.5),
    p95: quantileSorted(sorted, 0.95),
    p99: quantileSorted(sorted, 0.99),
    min: sorted[0] ?? Number.NaN,
    max: sorted[sorted.length - 1] ?? Number.NaN,
  };
}

/**
 * Arithmetic mean (NaN for an empty sample).
 * @internal
 */
export function mean(values: readonly number[]): number {
  return values.length === 0 ? Number.NaN : values.reduce((s, v) => s + v, 0) / values.length;
}
