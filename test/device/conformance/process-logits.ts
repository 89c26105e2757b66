/**
 * process_logits: mask, biases / bans, repetition, frequency and presence penalties on f32 logits in
 * place (kernels/ops.h), against the reference on random rows — every flag combination, padding ids
 * anywhere in the lists, repetition on negative / zero / positive logits, counts > 1, prompt-only
 * tokens, the extra (async) id in and out of the list, -inf bans, vocabularies that are not a
 * multiple of 32 and a 128k one. Bitwise equality: every step is one f32 rounding (no contraction).
 */
import { describe, expect, it } from 'vitest';
import type { NativeDevice, OpCall, OpTensor } from '../../../src/device/binding.ts';
import { asFloat32, asInt32, Rng } from '../harness.ts';
import * as ref from '../reference.ts';

interface Case {
  vocab: number;
  /** Rows of logits (S >= R). */
  logits: Float32Array;
  rows: ref.ProcessLogitsRow[];
  numTokens: number;
  numBias: number;
  withExtra: boolean;
  withMask: boolean;
}

function words(vocab: number): number {
  return Math.ceil(vocab / 32);
}

function processCall(c: Case): OpCall {
  const r = c.rows.length;
  const p = c.numTokens;
  const b = c.numBias;
  const w = words(c.vocab);
  const pad = <T extends number>(values: T[], n: number, fill: number) => [...values, ...Array<number>(Math.max(0, n - values.length)).fill(fill)];
  const tokenIds = new Int32Array(r * p);
  const tokenCounts = new Int32Array(r * p);
  const biasIds = new Int32Array(r * b);
  const biasValues = new Float32Array(r * b);
  const allowed = new Uint32Array(r * w);
  c.rows.forEach((row, s) => {
    tokenIds.set(pad(row.tokenIds, p, -1), s * p);
    tokenCounts.set(pad(row.tokenCounts, p, 0), s * p);
    biasIds.set(pad(row.biasIds, b, -1), s * b);
    biasValues.set(pad(row.biasValues, b, 0), s * b);
    if (row.allowed) allowed.set(row.allowed, s * w);
  });
  const src: (OpTensor | null)[] = [
    { dtype: 'i32', shape: [r], data: Int32Array.from(c.rows, (row) => row.flags) },
    { dtype: 'f32', shape: [r, 3], data: Float32Array.from(c.rows.flatMap((row) => row.penalties)) },
    { dtype: 'i32', shape: [r, p], data: tokenIds },
    { dtype: 'i32', shape: [r, p], data: tokenCounts },
    c.withExtra ? { dtype: 'i32', shape: [r], data: Int32Array.from(c.rows, (row) => row.extraId) } : null,
    { dtype: 'i32', shape: [r, b], data: biasIds },
    { dtype: 'f32', shape: [r, b], data: biasValues },
    c.withMask ? { dtype: 'u32', shape: [r, w], data: allowed } : null,
  ];
  const s = c.logits.length / c.vocab;
  return { op: 'process_logits', src, dst: [{ dtype: 'f32', shape: [s, c.vocab], data: Float32Array.from(c.logits) }] };
}

function expected(c: Case): Float32Array {
  const out = Float32Array.from(c.logits);
  c.rows.forEach((row, s) => ref.processLogitsRow(out.subarray(s * c.vocab, (s + 1) * c.vocab), row));
  return out;
}

/** Bitwise (NaN == NaN, -inf == -inf), naming the first difference. */
function expectSameBits(actual: Float32Array, wanted: Float32Array, vocab: number, label: string): void {
  expect(actual.length, `${label}: length`).toBe(wanted.length);
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(wanted.buffer, wanted.byteOffset, wanted.length);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== e[i] && !(Number.isNaN(actual[i]) && Number.isNaN(wanted[i]))) {
      expect.fail(`${label}: row ${Math.floor(i / vocab)} token ${i % vocab} is ${actual[i]}, expected ${wanted[i]}`);
    }
  }
}

function randomRow(rng: Rng, vocab: number, opts: { flags?: number; numTokens: number; numBias: number; withExtra: boolean; withMask: boolean }): ref.ProcessLogitsRow {
  const flags = opts.flags ?? (rng.int(0, 8) & (opts.withMask ? 7 : 3));
  const ids = rng.shuffle(Array.from({ length: vocab }, (_, i) => i));
  const numSeen = rng.int(0, opts.numTokens + 1);
  const tokenIds = ids.slice(0, numSeen);
  // Counts: prompt-only (0), once, many times.
  const tokenCounts = tokenIds.map(() => [0, 1, 1, 2, 3, 17][rng.int(0, 6)]!);
  // Padding anywhere: -1, and ids past the vocabulary.
  for (let j = 0; j < tokenIds.length; j++) if (rng.next() < 0.15) tokenIds[j] = rng.next() < 0.5 ? -1 : vocab + rng.int(0, 5);
  const numBias = rng.int(0, opts.numBias + 1);
  const biasIds = rng.shuffle(Array.from({ length: vocab }, (_, i) => i)).slice(0, numBias);
  const biasValues = biasIds.map(() => (rng.next() < 0.2 ? -Infinity : Math.round((rng.next() * 200 - 100) * 8) / 8));
  for (let j = 0; j < biasIds.length; j++) if (rng.next() < 0.1) biasIds[j] = -1;
  // The extra id: in the list, outside it, or none.
  const pick = rng.next();
  const listed = tokenIds.filter((id) => id >= 0 && id < vocab);
  const extraId = pick < 0.3 && listed.length > 0 ? listed[rng.int(0, listed.length)]! : pick < 0.7 ? ids[vocab - 1]! : -1;
  let allowed: Uint32Array | null = null;
  if (opts.withMask) {
    allowed = new Uint32Array(words(vocab));
    const density = [0, 0.02, 0.5, 0.98, 1][rng.int(0, 5)]!;
    for (let i = 0; i < vocab; i++) if (rng.next() < density) allowed[i >>> 5]! |= 1 << (i & 31);
    // Garbage past the vocabulary must not matter.
    for (let i = vocab; i < allowed.length * 32; i++) if (rng.next() < 0.5) allowed[i >>> 5]! |= 1 << (i & 31);
  }
  const penalty = () => [0, 0.5, -0.75, 2, -2, 1.3][rng.int(0, 6)]!;
  const repetition = [1, 1.2, 0.8, 2.5, 1e-3][rng.int(0, 5)]!;
  return { flags, penalties: [penalty(), penalty(), repetition], tokenIds, tokenCounts, extraId: opts.withExtra ? extraId : -1, biasIds, biasValues, allowed };
}

function randomLogits(rng: Rng, n: number): Float32Array {
  const logits = Float32Array.from(rng.normals(n, 4));
  // Exact zeros, negatives and a few -inf / NaN inputs.
  for (let i = 0; i < n; i++) {
    const u = rng.next();
    if (u < 0.01) logits[i] = 0;
    else if (u < 0.015) logits[i] = -Infinity;
    else if (u < 0.017) logits[i] = NaN;
  }
  return logits;
}

export function defineProcessLogitsTests(getDevice: () => NativeDevice): void {
  describe('process_logits', () => {
    const run = (c: Case) => asFloat32(getDevice().runOp(processCall(c))[0]);
    const supported = (c: Case) => getDevice().supportsOp(processCall(c));

    for (const [vocab, numSeqs, numRows, numTokens, numBias, seed] of [
      [77, 5, 5, 40, 12, 1],
      [1000, 9, 7, 300, 64, 2],
      [4096, 4, 4, 1024, 300, 3],
      [128256, 3, 2, 2048, 300, 4],
    ] as const) {
      for (const withExtra of [true, false]) {
        for (const withMask of [true, false]) {
          it(`V=${vocab}, ${numRows} of ${numSeqs} rows, P=${numTokens}, B=${numBias}${withExtra ? ', extra ids' : ''}${withMask ? ', mask' : ''}`, (ctx) => {
            const rng = new Rng(seed * 100 + (withExtra ? 10 : 0) + (withMask ? 1 : 0));
            const rows = Array.from({ length: numRows }, () => randomRow(rng, vocab, { numTokens, numBias, withExtra, withMask }));
            // Every flag combination appears when there are enough rows.
            rows.forEach((row, i) => {
              if (i < 8) row.flags = i & (withMask ? 7 : 3);
            });
            const c: Case = { vocab, logits: randomLogits(rng, numSeqs * vocab), rows, numTokens, numBias, withExtra, withMask };
            if (!supported(c)) return ctx.skip();
            expectSameBits(run(c), expected(c), vocab, 'logits');
          });
        }
      }
    }

    it('leaves rows with flags 0 untouched whatever their other operands hold, and rows past R', (ctx) => {
      const vocab = 100;
      const rng = new Rng(7);
      const garbage: ref.ProcessLogitsRow = {
        flags: 0, penalties: [NaN, Infinity, -5], tokenIds: [5, 5, 1e9, -7], tokenCounts: [-3, 99, 1, 1],
        extraId: 3, biasIds: [1, 1, 2], biasValues: [NaN, -Infinity, 1], allowed: new Uint32Array(words(vocab)),
      };
      const active = randomRow(rng, vocab, { flags: 7, numTokens: 10, numBias: 4, withExtra: true, withMask: true });
      const c: Case = { vocab, logits: randomLogits(rng, 4 * vocab), rows: [garbage, active, garbage], numTokens: 10, numBias: 4, withExtra: true, withMask: true };
      if (!supported(c)) return ctx.skip();
      const out = run(c);
      expectSameBits(out, expected(c), vocab, 'logits');
      expectSameBits(out.subarray(0, vocab), c.logits.subarray(0, vocab), vocab, 'row 0');
      expectSameBits(out.subarray(2 * vocab), c.logits.subarray(2 * vocab), vocab, 'rows 2-3');
    });

    it('R = 0 is a no-op', (ctx) => {
      const vocab = 64;
      const c: Case = { vocab, logits: randomLogits(new Rng(8), 2 * vocab), rows: [], numTokens: 0, numBias: 0, withExtra: true, withMask: true };
      const call = processCall(c);
      if (!getDevice().supportsOp(call)) return ctx.skip();
      expectSameBits(asFloat32(getDevice().runOp(call)[0]), c.logits, vocab, 'logits');
    });

    it('follows the documented semantics on hand-checked values', (ctx) => {
      const vocab = 40;
      const logits = new Float32Array(vocab).fill(1);
      logits.set([2, -2, 0, 3, -1, 4, 5], 0);
      const row: ref.ProcessLogitsRow = {
        flags: 7,
        penalties: [0.5, 0.25, 2],
        // 0: prompt only; 1: output twice; 2: zero logit, once; 3: masked (stays -inf); 4: the extra id is listed.
        tokenIds: [0, 1, 2, 3, 4],
        tokenCounts: [0, 2, 1, 1, 1],
        extraId: 4,
        biasIds: [3, 5, 6],
        biasValues: [100, -Infinity, 1.5],
        allowed: Uint32Array.of(0xffffffff & ~(1 << 3), 0xff),
      };
      const c: Case = { vocab, logits, rows: [row], numTokens: 5, numBias: 3, withExtra: true, withMask: true };
      if (!supported(c)) return ctx.skip();
      const out = Array.from(run(c));
      expect(out.slice(0, 7)).toEqual([
        1, // 2 / 2 (prompt only: repetition, no frequency / presence)
        -4 - 0.5 - 0.5, // -2 * 2, then - 0.25 * 2 - 0.5
        0 - 0.25 - 0.5, // 0 * 2 = 0, then - 0.25 - 0.5
        -Infinity, // masked: bias +100 and the penalties cannot bring it back
        -2 - 0.5 - 0.5, // -1 * 2; count 1 + 1 (the extra id) = 2
        -Infinity, // banned
        6.5, // 5 + 1.5; not seen, so no penalty
      ]);
      // Word 0 allows every id but 3, word 1 allows 32..39.
      expect(out.slice(7, 40)).toEqual(Array(33).fill(1));
    });

    it('an all-masked row stays all -inf (no NaN), and sample then returns id 0', (ctx) => {
      const vocab = 50;
      const row: ref.ProcessLogitsRow = {
        flags: 7, penalties: [2, -2, 0.5], tokenIds: [1, 2], tokenCounts: [3, 0], extraId: 7, biasIds: [4], biasValues: [100], allowed: new Uint32Array(words(vocab)),
      };
      const c: Case = { vocab, logits: randomLogits(new Rng(9), vocab).map((x) => (Number.isNaN(x) ? 0 : x)), rows: [row], numTokens: 2, numBias: 1, withExtra: true, withMask: true };
      if (!supported(c)) return ctx.skip();
      const out = run(c);
      expect(Array.from(out).every((x) => x === -Infinity)).toBe(true);
      const sample: OpCall = {
        op: 'sample',
        src: [
          { dtype: 'f32', shape: [1, vocab], data: out },
          { dtype: 'f32', shape: [1], data: Float32Array.of(0.7) },
          { dtype: 'i32', shape: [1], data: Int32Array.of(0) },
          { dtype: 'f32', shape: [1], data: Float32Array.of(1) },
          { dtype: 'f32', shape: [1], data: Float32Array.of(0) },
          { dtype: 'u64', shape: [1], data: BigUint64Array.of(5n) },
          { dtype: 'i32', shape: [1], data: Int32Array.of(0) },
        ],
        dst: [{ dtype: 'i32', shape: [1] }, { dtype: 'f32', shape: [1] }, null, null],
      };
      expect(Array.from(asInt32(getDevice().runOp(sample)[0]))).toEqual([0]);
    });

    it('rejects a row that asks for the mask without one, and a mask of the wrong width', (ctx) => {
      const vocab = 100;
      const row: ref.ProcessLogitsRow = { flags: 4, penalties: [0, 0, 1], tokenIds: [], tokenCounts: [], extraId: -1, biasIds: [], biasValues: [], allowed: null };
      const c: Case = { vocab, logits: new Float32Array(2 * vocab), rows: [{ ...row, flags: 1 }, row], numTokens: 1, numBias: 1, withExtra: false, withMask: false };
      if (!supported(c)) return ctx.skip();
      expect(() => run(c)).toThrow(/process_logits: row 1 asks for the mask, but src7 \(allowed\) has 0 words per row \(a vocabulary of 100 needs 4\)/);
      const wrongWidth = processCall({ ...c, withMask: true, rows: [{ ...row, allowed: new Uint32Array(4) }] });
      wrongWidth.src[7] = { dtype: 'u32', shape: [1, 3], data: new Uint32Array(3) };
      expect(() => getDevice().runOp(wrongWidth)).toThrow(/process_logits: src7 \(allowed\).*0 or 4 words/);
      // The device keeps working.
      expectSameBits(run({ ...c, rows: [{ ...row, flags: 0 }] }), c.logits, vocab, 'logits');
    });
  });
}
