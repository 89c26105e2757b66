/**
 * sample: greedy, seeded inverse-CDF sampling through temperature / top-k / top-p / min-p, raw
 * logprobs and top logprobs. Exact token equality wherever the draw is not within a hair of a
 * boundary; a chi-square test of the sampled distribution; exclusion tests for every filter.
 */
import { describe, expect, it } from 'vitest';
import type { NativeDevice, OpCall } from '../../../src/device/binding.ts';
import { asFloat32, asInt32, expectClose, poisoned, Rng } from '../harness.ts';
import * as ref from '../reference.ts';

interface SampleRow {
  logits: Float32Array; // [V]
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  seed: bigint;
  counter: number;
}

function sampleCall(rows: SampleRow[], numTop: number): OpCall {
  const vocab = rows[0]!.logits.length;
  const s = rows.length;
  const logits = new Float32Array(s * vocab);
  rows.forEach((r, i) => logits.set(r.logits, i * vocab));
  return {
    op: 'sample',
    params: { num_top_logprobs: numTop },
    src: [
      { dtype: 'f32', shape: [s, vocab], data: logits },
      { dtype: 'f32', shape: [s], data: Float32Array.from(rows, (r) => r.temperature) },
      { dtype: 'i32', shape: [s], data: Int32Array.from(rows, (r) => r.topK) },
      { dtype: 'f32', shape: [s], data: Float32Array.from(rows, (r) => r.topP) },
      { dtype: 'f32', shape: [s], data: Float32Array.from(rows, (r) => r.minP) },
      { dtype: 'u64', shape: [s], data: BigUint64Array.from(rows, (r) => r.seed) },
      { dtype: 'i32', shape: [s], data: Int32Array.from(rows, (r) => r.counter) },
    ],
    dst: [
      poisoned('i32', [s]),
      poisoned('f32', [s]),
      numTop > 0 ? poisoned('i32', [s, numTop]) : null,
      numTop > 0 ? poisoned('f32', [s, numTop]) : null,
    ],
  };
}

function runSample(device: NativeDevice, rows: SampleRow[], numTop = 0) {
  const [ids, logprobs, topIds, topLogprobs] = device.runOp(sampleCall(rows, numTop));
  return {
    ids: asInt32(ids),
    logprobs: asFloat32(logprobs),
    topIds: numTop > 0 ? asInt32(topIds) : null,
    topLogprobs: numTop > 0 ? asFloat32(topLogprobs) : null,
  };
}

function randomLogits(rng: Rng, vocab: number, std: number): Float32Array {
  return Float32Array.from(rng.normals(vocab, std));
}

function reference(row: SampleRow, numTop = 0): ref.SampleRowResult {
  return ref.sampleRow({ ...row, numTopLogprobs: numTop });
}

const LOGPROB_TOLERANCE = { rtol: 1e-5, atol: 1e-5 };

/** Sum over the kept set of (observed - expected)² / expected. */
function chiSquare(tokens: Int32Array, expected: Map<number, number>): number {
  const counts = new Map<number, number>();
  for (const t of tokens) counts.set(t, (counts.get(t) ?? 0) + 1);
  let stat = 0;
  for (const [id, p] of expected) {
    const e = p * tokens.length;
    stat += ((counts.get(id) ?? 0) - e) ** 2 / e;
  }
  return stat;
}

export function defineSampleTests(getDevice: () => NativeDevice): void {
  describe('sample', () => {
    it('greedy takes the argmax (lowest id on ties) whatever the filters, with raw logprobs', () => {
      const rng = new Rng(61);
      const rows: SampleRow[] = [0, 1, 2, 3, 4].map((i) => ({
        logits: randomLogits(rng, 1000, 3),
        temperature: 0,
        topK: [0, 1, 5, 0, 50][i]!,
        topP: [1, 0.5, 1, 0.1, 0.9][i]!,
        minP: [0, 0, 0.5, 0, 0.1][i]!,
        seed: BigInt(i),
        counter: i,
      }));
      const tied = randomLogits(rng, 1000, 1);
      tied[400] = 9;
      tied[17] = 9;
      tied[900] = 9;
      rows.push({ logits: tied, temperature: 0, topK: 0, topP: 1, minP: 0, seed: 7n, counter: 0 });
      const out = runSample(getDevice(), rows);
      const expected = rows.map((r) => reference(r));
      expect(Array.from(out.ids)).toEqual(expected.map((e) => e.token));
      expect(out.ids[5]).toBe(17);
      expectClose(out.logprobs, expected.map((e) => e.logprob), LOGPROB_TOLERANCE, 'greedy logprobs');
    });

    it('returns the K largest raw logprobs in order, ties by lower id, for K = 1 and 5', () => {
      const rng = new Rng(62);
      const base = randomLogits(rng, 301, 1); // all well below the planted values
      base[250] = 7; // ties at the top and inside the top 5
      base[3] = 7;
      base[100] = 5;
      base[42] = 5;
      for (const numTop of [1, 5]) {
        const rows: SampleRow[] = [
          { logits: base, temperature: 0, topK: 0, topP: 1, minP: 0, seed: 1n, counter: 0 },
          { logits: randomLogits(rng, 301, 2), temperature: 1.3, topK: 0, topP: 1, minP: 0, seed: 2n, counter: 5 },
        ];
        const out = runSample(getDevice(), rows, numTop);
        const expected = rows.map((r) => reference(r, numTop));
        expect(Array.from(out.topIds!)).toEqual(expected.flatMap((e) => e.topIds));
        expectClose(out.topLogprobs!, expected.flatMap((e) => e.topLogprobs), LOGPROB_TOLERANCE, `top ${numTop} logprobs`);
        if (numTop === 5) expect(Array.from(out.topIds!.subarray(0, 4))).toEqual([3, 250, 42, 100]);
      }
    });

    it('seeded sampling picks exactly the reference token across temperatures and filters', () => {
      const rng = new Rng(63);
      const rows: SampleRow[] = [];
      for (const temperature of [0.5, 1, 1.7]) {
        for (const topK of [0, 1, 5, 100]) {
          for (const topP of [1, 0.9, 0.5]) {
            for (const minP of [0, 0.05, 0.3]) {
              const seed = (BigInt(rng.int(0, 2 ** 31)) << 33n) ^ BigInt(rng.int(0, 2 ** 31)); // > 2^53
              rows.push({ logits: randomLogits(rng, 77, 2), temperature, topK, topP, minP, seed, counter: rng.int(0, 1 << 30) });
            }
          }
        }
      }
      const out = runSample(getDevice(), rows);
      let compared = 0;
      rows.forEach((row, i) => {
        const expected = reference(row);
        if (expected.ambiguous) return;
        compared++;
        expect(out.ids[i], `row ${i}: T=${row.temperature} k=${row.topK} p=${row.topP} min_p=${row.minP}`).toBe(expected.token);
        expectClose([out.logprobs[i]!], [expected.logprob], LOGPROB_TOLERANCE, `row ${i} logprob`);
      });
      expect(compared).toBeGreaterThan(rows.length * 0.9);
    });

    it('orders equal scaled logits by lower id for the draw', () => {
      const logits = Float32Array.from([0.5, 2, -1, 2, 0.5, 2]); // ids 1, 3, 5 tie for the top
      const rows = Array.from({ length: 300 }, (_, i): SampleRow => ({ logits, temperature: 0.9, topK: i % 2 ? 2 : 0, topP: 1, minP: 0, seed: 17n, counter: i }));
      const out = runSample(getDevice(), rows);
      rows.forEach((row, i) => {
        const expected = reference(row);
        if (!expected.ambiguous) expect(out.ids[i], `counter ${i}`).toBe(expected.token);
      });
      expect(new Set(out.ids.filter((_, i) => i % 2 === 1))).toEqual(new Set([1, 3])); // top-2 of a 3-way tie
    });

    it('samples exactly from a large vocabulary (lazy sorting path)', () => {
      const rng = new Rng(64);
      const rows: SampleRow[] = [
        { logits: randomLogits(rng, 32003, 3), temperature: 1, topK: 0, topP: 1, minP: 0, seed: 11n, counter: 3 },
        { logits: randomLogits(rng, 32003, 3), temperature: 0.8, topK: 0, topP: 0.9, minP: 0, seed: 12n, counter: 4 },
        { logits: randomLogits(rng, 32003, 3), temperature: 1.2, topK: 2000, topP: 0.95, minP: 0.01, seed: 13n, counter: 5 },
        { logits: randomLogits(rng, 32003, 1), temperature: 1, topK: 0, topP: 1, minP: 0.2, seed: 14n, counter: 6 },
      ];
      const out = runSample(getDevice(), rows, 3);
      rows.forEach((row, i) => {
        const expected = reference(row, 3);
        if (!expected.ambiguous) expect(out.ids[i], `row ${i}`).toBe(expected.token);
        expect(Array.from(out.topIds!.subarray(i * 3, i * 3 + 3))).toEqual(expected.topIds);
      });
    });

    it('draws from the temperature-scaled distribution (chi-square over 4000 counters)', () => {
      const logits = Float32Array.from([1.0, 0.5, 0.2, -0.3, -1.0, 0.9]);
      for (const temperature of [0.7, 1.5]) {
        const rows = Array.from({ length: 4000 }, (_, i): SampleRow => ({ logits, temperature, topK: 0, topP: 1, minP: 0, seed: 99n, counter: i }));
        const out = runSample(getDevice(), rows);
        const expected = ref.keptDistribution(logits, temperature, 0, 1, 0);
        // df = 5; P(chi² > 20.5) = 0.001 for a correct sampler (and the counters are fixed, so no flakes).
        expect(chiSquare(out.ids, expected), `T=${temperature}`).toBeLessThan(20.5);
        // The same draws against the wrong temperature must fail the test, or it proves nothing.
        const wrong = ref.keptDistribution(logits, temperature === 0.7 ? 1.5 : 0.7, 0, 1, 0);
        expect(chiSquare(out.ids, wrong)).toBeGreaterThan(20.5);
      }
    });

    it('top-k, top-p and min-p keep exactly their sets (and nothing outside them is ever drawn)', () => {
      const logits = Float32Array.from([2.0, 1.6, 1.5, 0.7, 0.1, -0.4, -2.0, 1.9]);
      const cases = [
        { topK: 2, topP: 1, minP: 0, kept: [0, 7] },
        { topK: 0, topP: 0.6, minP: 0, kept: null },
        { topK: 0, topP: 1, minP: 0.5, kept: null },
        { topK: 4, topP: 0.8, minP: 0.45, kept: null },
        { topK: 0, topP: 0, minP: 0, kept: [0] },
      ];
      for (const c of cases) {
        const distribution = ref.keptDistribution(logits, 1, c.topK, c.topP, c.minP);
        const kept = [...distribution.keys()].sort((a, b) => a - b);
        if (c.kept) expect(kept).toEqual(c.kept);
        expect(kept.length).toBeLessThan(logits.length); // each case really filters
        const rows = Array.from({ length: 1500 }, (_, i): SampleRow => ({ logits, temperature: 1, ...c, seed: 5n, counter: i }));
        const out = runSample(getDevice(), rows);
        const seen = [...new Set(out.ids)].sort((a, b) => a - b);
        expect(seen, `k=${c.topK} p=${c.topP} min_p=${c.minP}`).toEqual(kept);
        if (kept.length > 1) expect(chiSquare(out.ids, distribution)).toBeLessThan(30);
      }
    });

    it('logprobs are of the raw logits, not the temperature-scaled ones', () => {
      const logits = Float32Array.from([3, 1, 0.5, -1]);
      const out = runSample(getDevice(), [{ logits, temperature: 2.5, topK: 0, topP: 1, minP: 0, seed: 3n, counter: 1 }]);
      const lse = Math.log(Array.from(logits).reduce((a, x) => a + Math.exp(x), 0));
      expectClose([out.logprobs[0]!], [logits[out.ids[0]!]! - lse], LOGPROB_TOLERANCE, 'raw logprob');
    });
  });
}
