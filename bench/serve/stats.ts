/**
 * The statistics `vllm bench serve` reports, computed the way numpy does so numbers compare: population
 * standard deviation (ddof 0), percentiles by linear interpolation between closest ranks, and 0 for an
 * empty list (numpy on `x or 0`).
 */

export function mean(values: readonly number[]): number {
  if (values.length === 0) return 0;
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

/** Population standard deviation, as np.std. */
export function std(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const m = mean(values);
  let sum = 0;
  for (const v of values) sum += (v - m) * (v - m);
  return Math.sqrt(sum / values.length);
}

/** np.percentile(values, p) with the default 'linear' method; p in [0, 100]. `values` must be sorted ascending. */
export function percentileOfSorted(values: ArrayLike<number>, p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be in [0, 100], got ${p}`);
  const n = values.length;
  if (n === 0) return 0;
  const rank = (p / 100) * (n - 1);
  const lo = Math.floor(rank);
  const hi = Math.min(lo + 1, n - 1);
  const frac = rank - lo;
  const a = values[lo]!;
  const b = values[hi]!;
  return frac === 0 ? a : a + (b - a) * frac;
}

export function percentile(values: readonly number[], p: number): number {
  return percentileOfSorted(Float64Array.from(values).sort(), p);
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

export interface Summary {
  mean: number;
  median: number;
  std: number;
  /** [p, value] for each requested percentile. */
  percentiles: [number, number][];
}

/** Mean, median, std and the requested percentiles of one metric, sorting once. */
export function summarize(values: readonly number[], percentiles: readonly number[]): Summary {
  const s = Float64Array.from(values).sort();
  return {
    mean: mean(values),
    median: percentileOfSorted(s, 50),
    std: std(values),
    percentiles: percentiles.map((p) => [p, percentileOfSorted(s, p)]),
  };
}
