import { describe, expect, it } from 'vitest';
import {
  SHAREGPT_LENGTHS,
  sampleLengths,
  sampleRequests,
  solveLognormalMu,
  textOfLength,
  truncatedLognormalMean,
  uniformLengths,
  type DatasetOptions,
} from '../../../bench/serve/datasets.ts';
import { Rng } from '../../../bench/serve/random.ts';
import { mean, median, percentile } from '../../../bench/serve/stats.ts';
import { TextTokenizer } from '../../../src/tokenizer/index.ts';
import { TOK512_DIR } from '../../fixtures/tiny-models.ts';

const tokenizer = await TextTokenizer.fromDirectory(TOK512_DIR);

function options(overrides: Partial<DatasetOptions>): DatasetOptions {
  return {
    name: 'random',
    numPrompts: 100,
    seed: 0,
    randomInputLen: 64,
    randomOutputLen: 16,
    randomRangeRatio: 0,
    sharegptOutputLen: null,
    prefixLen: 32,
    suffixLen: 8,
    numPrefixes: 4,
    promptFormat: 'text',
    tokenizer: null,
    ...overrides,
  };
}

describe('random dataset lengths', () => {
  it('ratio 0 gives the exact lengths; ratio r spreads uniformly over [len(1-r), len(1+r)]', () => {
    expect(new Set(uniformLengths(100, 0, 50, new Rng(1)))).toEqual(new Set([100]));
    const spread = uniformLengths(1000, 0.5, 20_000, new Rng(2));
    expect(Math.min(...spread)).toBe(500);
    expect(Math.max(...spread)).toBe(1500);
    expect(Math.abs(mean(spread) - 1000)).toBeLessThan(10);
  });

  it('input and output lengths both follow the ratio', () => {
    const lengths = sampleLengths(options({ numPrompts: 2000, randomInputLen: 200, randomOutputLen: 100, randomRangeRatio: 0.25 }));
    expect(Math.min(...lengths.map((l) => l.input))).toBeGreaterThanOrEqual(150);
    expect(Math.max(...lengths.map((l) => l.input))).toBeLessThanOrEqual(250);
    expect(Math.min(...lengths.map((l) => l.output))).toBeGreaterThanOrEqual(75);
    expect(Math.max(...lengths.map((l) => l.output))).toBeLessThanOrEqual(125);
  });
});

describe('ShareGPT-like lengths', () => {
  it('the truncated log-normal mean formula agrees with sampling, and the solved location hits the target mean', () => {
    const d = SHAREGPT_LENGTHS.input;
    const mu = solveLognormalMu(d);
    expect(truncatedLognormalMean(mu, d.sigma, d.min, d.max)).toBeCloseTo(d.mean, 6);
    const rng = new Rng(3);
    const xs: number[] = [];
    while (xs.length < 50_000) {
      const x = Math.exp(mu + d.sigma * rng.normal());
      if (x >= d.min && x <= d.max) xs.push(x);
    }
    expect(Math.abs(mean(xs) - d.mean) / d.mean).toBeLessThan(0.02);
  });

  it('mean input ≈ 200 and output ≈ 180 tokens, long-tailed, inside vLLM\'s ShareGPT filter', () => {
    const lengths = sampleLengths(options({ name: 'sharegpt', numPrompts: 10_000, seed: 5 }));
    const inputs = lengths.map((l) => l.input);
    const outputs = lengths.map((l) => l.output);
    expect(Math.abs(mean(inputs) - 200) / 200).toBeLessThan(0.05);
    expect(Math.abs(mean(outputs) - 180) / 180).toBeLessThan(0.05);
    // Long tail: the mean sits well above the median and p99 is several times the median.
    expect(median(inputs)).toBeLessThan(0.8 * mean(inputs));
    expect(percentile(inputs, 99) / median(inputs)).toBeGreaterThan(5);
    expect(Math.min(...inputs, ...outputs)).toBeGreaterThanOrEqual(4);
    expect(Math.max(...inputs)).toBeLessThanOrEqual(1024);
    expect(Math.max(...lengths.map((l) => l.input + l.output))).toBeLessThanOrEqual(2048);
  });

  it('is seeded', () => {
    const a = sampleLengths(options({ name: 'sharegpt', seed: 11 }));
    expect(sampleLengths(options({ name: 'sharegpt', seed: 11 }))).toEqual(a);
    expect(sampleLengths(options({ name: 'sharegpt', seed: 12 }))).not.toEqual(a);
  });

  it('--sharegpt-output-len fixes the output length', () => {
    expect(new Set(sampleLengths(options({ name: 'sharegpt', sharegptOutputLen: 64 })).map((l) => l.output))).toEqual(new Set([64]));
  });
});

describe('prompts', () => {
  it('text cut to exactly the requested tokens with a tokenizer', () => {
    const rng = new Rng(9);
    for (const length of [1, 2, 7, 64, 300]) {
      const built = textOfLength(length, tokenizer, rng);
      expect(built.exact).toBe(true);
      expect(tokenizer.encode(built.prompt as string, { addSpecialTokens: false })).toHaveLength(length);
    }
  });

  it('random dataset: exact text lengths with a tokenizer, estimates without one, token ids without special tokens', () => {
    const withTok = sampleRequests(options({ numPrompts: 20, randomRangeRatio: 0.5, tokenizer }));
    for (const r of withTok) {
      expect(r.promptLenExact).toBe(true);
      expect(tokenizer.encode(r.prompt as string, { addSpecialTokens: false })).toHaveLength(r.promptLen);
    }
    const plain = sampleRequests(options({ numPrompts: 5 }));
    expect(plain.every((r) => !r.promptLenExact && typeof r.prompt === 'string' && r.prompt.split(' ').length === 64)).toBe(true);
    const ids = sampleRequests(options({ numPrompts: 20, promptFormat: 'ids', tokenizer }));
    for (const r of ids) {
      expect(r.prompt).toHaveLength(64);
      for (const id of r.prompt as number[]) {
        expect(id).toBeLessThan(tokenizer.vocabSize);
        expect(tokenizer.specialTokenIds.has(id)).toBe(false);
      }
    }
    expect(() => sampleRequests(options({ promptFormat: 'ids' }))).toThrow(/tokenizer/);
  });

  it('prefix dataset: --num-prefixes groups, each sharing its --prefix-len prefix', () => {
    const requests = sampleRequests(options({ name: 'prefix', numPrompts: 40, promptFormat: 'ids', tokenizer }));
    const prefixes = new Map<string, number>();
    for (const r of requests) {
      const ids = r.prompt as number[];
      expect(ids).toHaveLength(40);
      expect(r.expectedOutputLen).toBe(16);
      const key = ids.slice(0, 32).join(',');
      prefixes.set(key, (prefixes.get(key) ?? 0) + 1);
    }
    expect([...prefixes.values()]).toEqual([10, 10, 10, 10]);
    // Shuffled: the groups are interleaved, not in blocks.
    const firstPrefix = (requests[0]!.prompt as number[]).slice(0, 32).join(',');
    expect(requests.slice(0, 10).every((r) => (r.prompt as number[]).slice(0, 32).join(',') === firstPrefix)).toBe(false);
    const text = sampleRequests(options({ name: 'prefix', numPrompts: 8, numPrefixes: 2, tokenizer }));
    expect(new Set(text.map((r) => (r.prompt as string).slice(0, 20))).size).toBe(2);
  });

  it('the same seed builds the same prompts', () => {
    expect(sampleRequests(options({ numPrompts: 5, tokenizer, seed: 3 }))).toEqual(sampleRequests(options({ numPrompts: 5, tokenizer, seed: 3 })));
  });
});
