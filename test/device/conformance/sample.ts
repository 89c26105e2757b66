/**
 * sample: greedy, seeded inverse-CDF sampling (ascending id order) through temperature / top-k /
 * top-p / min-p, raw logprobs and top logprobs. Exact token equality wherever the reference says the
 * row is not within rounding of a boundary (a device sums f32 weights in its own order; see
 * reference.ts), and the large-vocabulary rows pick counters that keep the draw clear of one; a
 * chi-square test of the sampled distribution; exclusion tests for every filter; ties at thresholds.
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

/** How the top-logprob outputs are passed: num_top_logprobs and each view's K (null: no view). */
interface TopOutputs {
  param: number;
  ids: number | null;
  logprobs: number | null;
}

function topOutputs(numTop: number): TopOutputs {
  return { param: numTop, ids: numTop > 0 ? numTop : null, logprobs: numTop > 0 ? numTop : null };
}

function sampleCall(rows: SampleRow[], top: TopOutputs): OpCall {
  const vocab = rows[0]!.logits.length;
  const s = rows.length;
  const logits = new Float32Array(s * vocab);
  rows.forEach((r, i) => logits.set(r.logits, i * vocab));
  return {
    op: 'sample',
    params: { num_top_logprobs: top.param },
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
      top.ids === null ? null : poisoned('i32', [s, top.ids]),
      top.logprobs === null ? null : poisoned('f32', [s, top.logprobs]),
    ],
  };
}

function runSample(device: NativeDevice, rows: SampleRow[], numTop: number | TopOutputs = 0) {
  const top = typeof numTop === 'number' ? topOutputs(numTop) : numTop;
  const [ids, logprobs, topIds, topLogprobs] = device.runOp(sampleCall(rows, top));
  return {
    ids: asInt32(ids),
    logprobs: asFloat32(logprobs),
    topIds: top.ids === null ? null : asInt32(topIds),
    topLogprobs: top.logprobs === null ? null : asFloat32(topLogprobs),
  };
}

/**
 * The first counter from `from` whose draw the reference calls unambiguous (clear of every boundary),
 * so a device that sums the weights in another order or precision must still pick the same token.
 */
function clearCounter(row: Omit<SampleRow, 'counter'>, from: number, keptSet?: ref.KeptSet | null): number {
  const kept = keptSet !== undefined ? keptSet : ref.keptSet(row.logits, row.temperature, row.topK, row.topP, row.minP);
  if (!kept) return from; // greedy-like rows: no draw
  if (kept.ambiguous) throw new Error('the kept set itself sits on a boundary: pick other logits');
  for (let counter = from; counter < from + 1000; counter++) {
    if (!ref.drawFromKept(kept, ref.udUniform(row.seed, counter)).ambiguous) return counter;
  }
  throw new Error('no counter keeps this row clear of a boundary');
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

    it('keeps every token tied with a top-k, top-p or min-p threshold', () => {
      const cases: { logits: number[]; topK: number; topP: number; minP: number; kept: number[] }[] = [
        // ids 1, 3, 5 tie for the top: top-2 keeps all three, and so does a top-p the first one reaches.
        { logits: [0.5, 2, -1, 2, 0.5, 2], topK: 2, topP: 1, minP: 0, kept: [1, 3, 5] },
        { logits: [0.5, 2, -1, 2, 0.5, 2], topK: 0, topP: 0.1, minP: 0, kept: [1, 3, 5] },
        { logits: [0.5, 2, -1, 2, 0.5, 2], topK: 1, topP: 1, minP: 0, kept: [1, 3, 5] },
        // A tie below the top: the 4th largest is 0.5, held by ids 0 and 4.
        { logits: [0.5, 2, -1, 2, 0.5, 2], topK: 4, topP: 1, minP: 0, kept: [0, 1, 3, 4, 5] },
        // Top-p crosses inside the 0.5 group (at T = 0.9: mass 0.88 before it, 0.99 after): the group stays.
        { logits: [0.5, 2, -1, 2, 0.5, 2], topK: 0, topP: 0.9, minP: 0, kept: [0, 1, 3, 4, 5] },
        // Top-k 3 ends inside a three-way tie at 1 (ids 1, 3, 5).
        { logits: [3, 1, 2, 1, 0, 1], topK: 3, topP: 1, minP: 0, kept: [0, 1, 2, 3, 5] },
        // Min-p 0.3: the three tokens of weight e^-1 all pass, e^-3 does not.
        { logits: [0, -1, -1, -1, -3], topK: 0, topP: 1, minP: 0.3, kept: [0, 1, 2, 3] },
      ];
      for (const c of cases) {
        const logits = Float32Array.from(c.logits);
        const label = `logits ${c.logits} k=${c.topK} p=${c.topP} min_p=${c.minP}`;
        expect([...ref.keptDistribution(logits, 0.9, c.topK, c.topP, c.minP).keys()], label).toEqual(c.kept);
        const rows = Array.from({ length: 400 }, (_, i): SampleRow => ({ logits, temperature: 0.9, topK: c.topK, topP: c.topP, minP: c.minP, seed: 17n, counter: i }));
        const out = runSample(getDevice(), rows);
        rows.forEach((row, i) => {
          const expected = reference(row);
          if (!expected.ambiguous) expect(out.ids[i], `${label}, counter ${i}`).toBe(expected.token);
        });
        expect([...new Set(out.ids)].sort((a, b) => a - b), label).toEqual(c.kept);
      }
    });

    it('keeps tokens whose scaled logits tie only after the f32 division', () => {
      // 2 and the float below it differ, but x / 1.7 rounds both to the same s: both are the maximum.
      const below2 = Math.fround(1.99999988);
      expect(Math.fround(below2 / Math.fround(1.7))).toBe(Math.fround(2 / Math.fround(1.7)));
      const rng = new Rng(67);
      const logits = Float32Array.from(rng.normals(3000, 0.3));
      logits[1000] = below2;
      logits[2000] = 2;
      const second = Float32Array.from(logits);
      second[10] = 5; // now the pair ties at the 2nd largest s
      const cases = [
        { logits, topK: 1, topP: 1, minP: 0 },
        { logits, topK: 0, topP: 1e-6, minP: 0 },
        { logits, topK: 0, topP: 1, minP: 1.5 },
        { logits: second, topK: 2, topP: 1, minP: 0 },
      ];
      for (const c of cases) {
        const label = `k=${c.topK} p=${c.topP} min_p=${c.minP}`;
        const kept = c.logits === second ? [10, 1000, 2000] : [1000, 2000];
        expect([...ref.keptDistribution(c.logits, 1.7, c.topK, c.topP, c.minP).keys()], label).toEqual(kept);
        const rows = Array.from({ length: 200 }, (_, i): SampleRow => ({ ...c, temperature: 1.7, seed: 29n, counter: i }));
        const out = runSample(getDevice(), rows);
        rows.forEach((row, i) => {
          const expected = reference(row);
          if (!expected.ambiguous) expect(out.ids[i], `${label}, counter ${i}`).toBe(expected.token);
        });
        expect([...new Set(out.ids)].sort((a, b) => a - b), label).toEqual(kept);
      }
      // Greedy still takes the larger raw logit.
      expect(runSample(getDevice(), [{ logits, temperature: 0, topK: 0, topP: 1, minP: 0, seed: 0n, counter: 0 }]).ids[0]).toBe(2000);
    });

    it('draws the first kept id at u = 0 and the last at u = 1 - 2^-24', () => {
      // ud_uniform(0, 33897418) = 0 and ud_uniform(0, 14790804) = 1 - 2^-24 (found by search).
      expect(ref.udUniform(0n, 33897418)).toBe(0);
      expect(ref.udUniform(0n, 14790804)).toBe(1 - 2 ** -24);
      const rng = new Rng(68);
      const masked = randomLogits(rng, 20000, 2);
      for (let i = 0; i < 10000; i++) masked[i] = -Infinity; // weightless ids before the first kept one
      const plain = randomLogits(rng, 20000, 2);
      const settings = [
        { logits: masked, topK: 0, topP: 1, minP: 0 },
        { logits: plain, topK: 5, topP: 1, minP: 0 },
        { logits: plain, topK: 0, topP: 0.5, minP: 0 },
        { logits: plain, topK: 0, topP: 1, minP: 0.2 },
      ];
      const rows = settings.flatMap((c) => [33897418, 14790804].map((counter): SampleRow => ({ ...c, temperature: 1, seed: 0n, counter })));
      const out = runSample(getDevice(), rows);
      rows.forEach((row, i) => {
        const kept = ref.keptSet(row.logits, row.temperature, row.topK, row.topP, row.minP)!;
        const positive = kept.ids.filter((_, j) => kept.weights[j]! > 0);
        const want = row.counter === 33897418 ? positive[0]! : positive[positive.length - 1]!;
        expect(reference(row).token, `reference row ${i}`).toBe(want);
        expect(kept.weights[kept.ids.indexOf(want)], 'a weight a device holds exactly (not within rounding of 0)').toBeGreaterThan(1e-9);
        expect(out.ids[i], `row ${i}`).toBe(want);
      });
    });

    it('draws by inverse CDF in ascending id order', () => {
      // p = [0.25, 0.75] and [0.6, 0.1, 0.3]: the draw walks ids upwards, whatever their probabilities.
      const cases = [
        { logits: [0, Math.log(3)], cdf: [0.25, 1] },
        { logits: [Math.log(6), 0, Math.log(3)], cdf: [0.6, 0.7, 1] },
      ];
      for (const c of cases) {
        const logits = Float32Array.from(c.logits);
        const rows = Array.from({ length: 300 }, (_, i): SampleRow => ({ logits, temperature: 1, topK: 0, topP: 1, minP: 0, seed: 23n, counter: i }));
        const out = runSample(getDevice(), rows);
        let compared = 0;
        rows.forEach((row, i) => {
          const u = ref.udUniform(row.seed, row.counter);
          if (c.cdf.some((edge) => Math.abs(u - edge) < 1e-5)) return; // f32 logits make the edges inexact
          compared++;
          const token = c.cdf.findIndex((edge) => u < edge);
          expect(reference(row).token, `reference, u = ${u}`).toBe(token);
          expect(out.ids[i], `u = ${u}`).toBe(token);
        });
        expect(compared).toBeGreaterThan(290);
      }
    });

    it('samples exactly from large vocabularies (every row drawn clear of a boundary)', () => {
      const rng = new Rng(64);
      // Quantised logits: thousands of ties, at every threshold.
      const quantised = (vocab: number) => Float32Array.from(rng.normals(vocab, 2), (x) => Math.round(x * 4) / 4);
      const settings = [
        { std: 3, temperature: 1, topK: 0, topP: 1, minP: 0 },
        { std: 3, temperature: 0.8, topK: 0, topP: 0.9, minP: 0 },
        { std: 3, temperature: 1.2, topK: 2000, topP: 0.95, minP: 0.01 },
        { std: 1, temperature: 1, topK: 0, topP: 1, minP: 0.2 },
        { std: 2, temperature: 0.7, topK: 50, topP: 1, minP: 0 },
        { std: 2, temperature: 1, topK: 1000, topP: 0.8, minP: 0 },
        { std: 0, temperature: 1, topK: 100, topP: 0.8, minP: 0 }, // quantised
        { std: 0, temperature: 0.6, topK: 0, topP: 0.5, minP: 0.05 }, // quantised
      ];
      for (const vocab of [32003, 128256]) {
        const rows = settings.map((c, i): SampleRow => {
          // Logits whose kept set is clear of the top-p / min-p boundaries (a few tries at most).
          for (;;) {
            const logits = c.std > 0 ? randomLogits(rng, vocab, c.std) : quantised(vocab);
            const row = { logits, temperature: c.temperature, topK: c.topK, topP: c.topP, minP: c.minP, seed: BigInt(11 + i) };
            const kept = ref.keptSet(logits, c.temperature, c.topK, c.topP, c.minP)!;
            if (!kept.ambiguous) return { ...row, counter: clearCounter(row, 3 * i, kept) };
          }
        });
        const out = runSample(getDevice(), rows, 3);
        const expected = rows.map((row) => reference(row, 3));
        rows.forEach((row, i) => {
          expect(out.ids[i], `V=${vocab} row ${i}`).toBe(expected[i]!.token);
          expect(Array.from(out.topIds!.subarray(i * 3, i * 3 + 3)), `V=${vocab} row ${i} top ids`).toEqual(expected[i]!.topIds);
        });
        expectClose(out.logprobs, expected.map((e) => e.logprob), LOGPROB_TOLERANCE, `V=${vocab} logprobs`);
        expectClose(out.topLogprobs!, expected.flatMap((e) => e.topLogprobs), LOGPROB_TOLERANCE, `V=${vocab} top logprobs`);
      }
    });

    it('handles masked (-inf), NaN and overflowing scaled logits', () => {
      const rng = new Rng(65);
      const masked = randomLogits(rng, 5000, 2);
      for (let i = 0; i < 5000; i++) if (i % 3 !== 1) masked[i] = -Infinity; // only ids 1, 4, 7, ... possible
      const withNaN = randomLogits(rng, 5000, 2);
      for (let i = 0; i < 5000; i += 7) withNaN[i] = NaN;
      withNaN[700] = 20; // NaN counts as -inf, so this is the unique maximum
      const allMasked = new Float32Array(5000).fill(-Infinity);
      const overflow = randomLogits(rng, 5000, 1);
      overflow[321] = 4.5;
      overflow[4000] = 5; // logits / 1e-38 overflow to +inf at both: the lowest id wins
      const rows: SampleRow[] = [
        { logits: masked, temperature: 1, topK: 0, topP: 1, minP: 0, seed: 1n, counter: 0 },
        { logits: masked, temperature: 1.5, topK: 20, topP: 0.9, minP: 0.01, seed: 2n, counter: 0 },
        { logits: masked, temperature: 1, topK: 4000, topP: 1, minP: 0, seed: 3n, counter: 0 }, // k-th largest is -inf
        { logits: withNaN, temperature: 1, topK: 0, topP: 1, minP: 0, seed: 4n, counter: 0 },
        { logits: withNaN, temperature: 0, topK: 0, topP: 1, minP: 0, seed: 5n, counter: 0 },
        { logits: withNaN, temperature: 3, topK: 10, topP: 0.5, minP: 0, seed: 6n, counter: 0 },
        { logits: allMasked, temperature: 1, topK: 5, topP: 0.5, minP: 0.1, seed: 7n, counter: 0 },
        { logits: overflow, temperature: 1e-38, topK: 0, topP: 1, minP: 0, seed: 8n, counter: 0 },
      ].map((row) => ({ ...row, counter: clearCounter(row, 0) }));
      const out = runSample(getDevice(), rows, 2);
      rows.forEach((row, i) => {
        const expected = reference(row, 2);
        expect(out.ids[i], `row ${i}`).toBe(expected.token);
        if (Number.isFinite(expected.logprob)) expectClose([out.logprobs[i]!], [expected.logprob], LOGPROB_TOLERANCE, `row ${i} logprob`);
        if (i !== 6) expect(Array.from(out.topIds!.subarray(i * 2, i * 2 + 2)), `row ${i} top ids`).toEqual(expected.topIds);
      });
      expect(out.ids[0]! % 3).toBe(1);
      expect(out.ids[2]! % 3).toBe(1);
      expect(out.ids[4]).toBe(700);
      expect(out.ids[6]).toBe(0);
      expect(out.ids[7]).toBe(321);
    });

    it('writes no top logprobs for K = 0 or absent views, and fills a single present view', () => {
      const rng = new Rng(66);
      const rows: SampleRow[] = [0, 1, 2].map((i) => ({ logits: randomLogits(rng, 500, 2), temperature: [0, 1, 0.7][i]!, topK: 0, topP: 1, minP: 0, seed: BigInt(i), counter: 9 }));
      const expected = rows.map((r) => reference(r, 4));
      const layouts: TopOutputs[] = [
        { param: 0, ids: null, logprobs: null },
        { param: 4, ids: null, logprobs: null }, // a bound but no views
        { param: 4, ids: 0, logprobs: 0 }, // K = 0 views
        { param: 0, ids: 0, logprobs: 0 },
        { param: 4, ids: 4, logprobs: null },
        { param: 4, ids: null, logprobs: 4 },
        { param: 8, ids: 4, logprobs: 4 }, // K below the bound
      ];
      for (const top of layouts) {
        const label = `num_top_logprobs ${top.param}, K ${top.ids} / ${top.logprobs}`;
        const out = runSample(getDevice(), rows, top);
        expect(Array.from(out.ids), label).toEqual(expected.map((e) => e.token));
        expectClose(out.logprobs, expected.map((e) => e.logprob), LOGPROB_TOLERANCE, label);
        if (top.ids !== null) expect(Array.from(out.topIds!), label).toEqual(expected.flatMap((e) => e.topIds.slice(0, top.ids!)));
        if (top.logprobs !== null) {
          expectClose(out.topLogprobs!, expected.flatMap((e) => e.topLogprobs.slice(0, top.logprobs!)), LOGPROB_TOLERANCE, label);
        }
      }
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
