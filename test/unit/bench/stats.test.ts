import { describe, expect, it } from 'vitest';
import { mean, median, percentile, std, summarize } from '../../../bench/serve/stats.ts';

describe('bench statistics (numpy definitions)', () => {
  it('mean and population std', () => {
    expect(mean([1, 2, 3, 4])).toBe(2.5);
    expect(std([2, 4, 4, 4, 5, 5, 7, 9])).toBe(2); // ddof 0
    expect(std([5])).toBe(0);
  });

  it('percentiles by linear interpolation between closest ranks, like np.percentile', () => {
    expect(percentile([1, 2, 3, 4], 90)).toBeCloseTo(3.7, 12);
    expect(percentile([15, 20, 35, 40, 50], 40)).toBeCloseTo(29, 12);
    expect(percentile([50, 15, 40, 20, 35], 40)).toBeCloseTo(29, 12); // unsorted input
    expect(percentile([3, 1, 2], 0)).toBe(1);
    expect(percentile([3, 1, 2], 100)).toBe(3);
    expect(median([1, 2, 3, 4])).toBe(2.5);
    expect(median([7, 1, 3])).toBe(3);
    // np.percentile(np.arange(1, 101), 99) = 99.01
    expect(percentile(Array.from({ length: 100 }, (_, i) => i + 1), 99)).toBeCloseTo(99.01, 10);
    expect(() => percentile([1], 101)).toThrow(RangeError);
  });

  it('an empty metric reports 0 everywhere (numpy on `x or 0`)', () => {
    expect(summarize([], [90, 99])).toEqual({ mean: 0, median: 0, std: 0, percentiles: [[90, 0], [99, 0]] });
  });

  it('summarize gives mean, median, std and each requested percentile', () => {
    const s = summarize([10, 20, 30, 40], [50, 99]);
    expect(s.mean).toBe(25);
    expect(s.median).toBe(25);
    expect(s.std).toBeCloseTo(Math.sqrt(125), 12);
    expect(s.percentiles[0]).toEqual([50, 25]);
    expect(s.percentiles[1]![1]).toBeCloseTo(39.7, 12);
  });
});
