import { describe, expect, it } from 'vitest';
import { arrivalTimes, interArrivalGaps } from '../../../bench/serve/arrivals.ts';
import { Rng } from '../../../bench/serve/random.ts';
import { mean, std } from '../../../bench/serve/stats.ts';

describe('arrival processes', () => {
  it('Poisson: exponential gaps with mean 1/rate and coefficient of variation 1', () => {
    const gaps = interArrivalGaps(40_000, 16, 1, new Rng(1));
    expect(mean(gaps)).toBeCloseTo(1 / 16, 2);
    expect(Math.abs(mean(gaps) * 16 - 1)).toBeLessThan(0.02);
    expect(std(gaps) / mean(gaps)).toBeGreaterThan(0.97);
    expect(std(gaps) / mean(gaps)).toBeLessThan(1.03);
  });

  it('gamma burstiness b keeps the mean rate and sets the coefficient of variation to 1/sqrt(b)', () => {
    for (const b of [0.25, 0.5, 4]) {
      const gaps = interArrivalGaps(40_000, 10, b, new Rng(7));
      expect(Math.abs(mean(gaps) * 10 - 1)).toBeLessThan(0.03);
      const cv = std(gaps) / mean(gaps);
      expect(Math.abs(cv - 1 / Math.sqrt(b)) / (1 / Math.sqrt(b))).toBeLessThan(0.05);
    }
  });

  it('infinite rate sends everything at 0; infinite burstiness is a fixed interval', () => {
    expect(arrivalTimes(5, Infinity, 1, new Rng(0))).toEqual([0, 0, 0, 0, 0]);
    expect(interArrivalGaps(3, 4, Infinity, new Rng(0))).toEqual([0.25, 0.25, 0.25]);
  });

  it('arrival times ascend and the last is exactly n / rate (the offered load does not depend on the seed)', () => {
    for (const seed of [1, 2, 3]) {
      const times = arrivalTimes(800, 16, 1, new Rng(seed));
      expect(times[times.length - 1]).toBeCloseTo(50, 9);
      for (let i = 1; i < times.length; i++) expect(times[i]!).toBeGreaterThanOrEqual(times[i - 1]!);
    }
  });

  it('is seeded: the same seed gives the same schedule, another seed another', () => {
    expect(arrivalTimes(50, 5, 0.5, new Rng(42))).toEqual(arrivalTimes(50, 5, 0.5, new Rng(42)));
    expect(arrivalTimes(50, 5, 0.5, new Rng(42))).not.toEqual(arrivalTimes(50, 5, 0.5, new Rng(43)));
  });

  it('rejects a non-positive rate or burstiness', () => {
    expect(() => interArrivalGaps(3, 0, 1, new Rng(0))).toThrow(RangeError);
    expect(() => interArrivalGaps(3, 1, 0, new Rng(0))).toThrow(RangeError);
  });
});
