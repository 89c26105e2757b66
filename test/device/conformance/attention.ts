/**
 * attention: paged causal attention with GQA over a batch that mixes a fresh prompt, a decode row,
 * a chunked-prefill continuation and an idle sequence, with scattered blocks and -1 padding; float
 * caches and the f8e4m3 KV cache (every code read back, and refused where a backend lacks it).
 */
import { describe, expect, it } from 'vitest';
import type { NativeDevice, OpCall, OpTensor } from '../../../src/device/binding.ts';
import {
  decodeFloat, dtypePairs, expectClose, expectFp8KvCacheContract, floatTensor, i32Tensor, normalsWithOutliers, poisoned, randomFloatTensor, Rng,
  skipUnlessFp8RefusedByDesign, tolerance, variantsOf, withVariant,
} from '../harness.ts';
import * as ref from '../reference.ts';
import { E4M3_VALUES, type FloatDType, type KvDType } from '../reference.ts';

// [numHeads, numKvHeads, headDim]: GQA ratios 1, 2, 4, 8; headDims with and without a multiple of 8.
const CONFIGS: [number, number, number][] = [
  [2, 2, 16],
  [4, 2, 16],
  [8, 2, 12],
  [8, 1, 8],
];

interface Batch {
  queryLens: number[];
  seqLens: number[];
  numTokens: number; // > sum of queryLens: trailing padding rows
  blockSize: number;
}

// Order mixes kinds: decode (1 row, 20 cached), fresh prompt (7), idle (seq_len 0 with 2 rows),
// chunked prefill (5 new rows after 8 cached).
const MIXED: Omit<Batch, 'blockSize'> = { queryLens: [1, 7, 2, 5], seqLens: [20, 7, 0, 13], numTokens: 17 };

// Long contexts for GPU kernels (64-key tiles, split-KV decode, 64-row prefill tiles): a decode row
// over 517 positions, a one-token prompt, a 70-row prompt chunk after 60 cached, an idle sequence,
// 3 rows after 997 cached, and padding rows.
const LONG: Omit<Batch, 'blockSize'> = { queryLens: [1, 1, 70, 2, 3], seqLens: [517, 1, 130, 0, 1000], numTokens: 80 };
// Real head dims with GQA ratios 8, 7 (Qwen2.5-0.5B's 14/2), 1 and 4 (Llama 3 8B's 32/8 with fewer heads).
const LONG_CONFIGS: [number, number, number][] = [
  [8, 1, 128],
  [14, 2, 64],
  [4, 4, 128],
  [8, 2, 64],
];
const LONG_DTYPES: [FloatDType, FloatDType][] = [['bf16', 'bf16'], ['f16', 'f16'], ['f32', 'f32'], ['bf16', 'f32']];

// FP8 E4M3 cache: real head dims (64, 128) with GQA groups of 4 and 8, over three kinds of batch.
const FP8_CONFIGS: [number, number, number][] = [
  [8, 2, 64],
  [8, 1, 128],
  [16, 4, 128],
  [16, 2, 64],
];
const FP8_BATCHES: Record<'decode' | 'prompt' | 'mixed', Omit<Batch, 'blockSize'>> = {
  // One row per sequence (graph-captured decode steps), an idle sequence and a padding row.
  decode: { queryLens: [1, 1, 1, 1, 1, 1], seqLens: [1, 17, 33, 300, 517, 0], numTokens: 7 },
  // Fresh prompts only (prefill kernels' tiles, a one-token prompt).
  prompt: { queryLens: [70, 33, 1], seqLens: [70, 33, 1], numTokens: 104 },
  // Decode rows next to a prompt, an idle sequence and chunked-prefill continuations.
  mixed: { queryLens: [1, 7, 2, 40, 3], seqLens: [300, 7, 0, 100, 1000], numTokens: 56 },
};

/**
 * K/V for an FP8 cache: N(0, 1) (a few land among e4m3's subnormals, below 2^-6) plus 0.5% outliers
 * of magnitude 20..300, as real K/V activations have. Rounded to e4m3 by the reference encoder: the
 * cache's bytes and the values the reference attends over are the same.
 */
function fp8Cache(rng: Rng, shape: number[]): ReturnType<typeof floatTensor> {
  return floatTensor('f8e4m3', shape, normalsWithOutliers(rng, shape.reduce((a, b) => a * b, 1), 0.005, 20, 300));
}

interface BatchTensors {
  queryStartLoc: Int32Array;
  blockTables: Int32Array;
  maxBlocksPerSeq: number;
  numBlocks: number;
  /** Rows no sequence computes (idle sequence, padding), which must keep their contents. */
  untouchedRows: number[];
}

function layoutBatch(rng: Rng, batch: Batch): BatchTensors {
  const numSeqs = batch.seqLens.length;
  const queryStartLoc = new Int32Array(numSeqs + 1);
  batch.queryLens.forEach((len, s) => (queryStartLoc[s + 1] = queryStartLoc[s]! + len));
  const blocksNeeded = batch.seqLens.map((len) => Math.ceil(len / batch.blockSize));
  const maxBlocksPerSeq = Math.max(...blocksNeeded) + 1; // always some -1 padding
  const numBlocks = blocksNeeded.reduce((a, b) => a + b, 0) + 3; // spare blocks no one owns
  const free = rng.shuffle(Array.from({ length: numBlocks }, (_, i) => i)); // non-contiguous
  const blockTables = new Int32Array(numSeqs * maxBlocksPerSeq).fill(-1);
  blocksNeeded.forEach((n, s) => {
    for (let b = 0; b < n; b++) blockTables[s * maxBlocksPerSeq + b] = free.pop()!;
  });
  const untouchedRows: number[] = [];
  for (let t = 0; t < batch.numTokens; t++) {
    const s = batch.queryLens.findIndex((_, i) => t >= queryStartLoc[i]! && t < queryStartLoc[i + 1]!);
    if (s < 0 || batch.seqLens[s] === 0) untouchedRows.push(t);
  }
  return { queryStartLoc, blockTables, maxBlocksPerSeq, numBlocks, untouchedRows };
}

function attentionCall(
  q: OpTensor, kCache: OpTensor, vCache: OpTensor, layout: BatchTensors, seqLens: number[],
  outDtype: FloatDType, params: { numHeads: number; numKvHeads: number; headDim: number; blockSize: number; scale: number },
): OpCall {
  const numSeqs = seqLens.length;
  const numTokens = q.shape[0]!;
  return {
    op: 'attention',
    params: { scale: params.scale, num_heads: params.numHeads, num_kv_heads: params.numKvHeads, head_dim: params.headDim, block_size: params.blockSize },
    src: [
      q, kCache, vCache,
      i32Tensor([numSeqs, layout.maxBlocksPerSeq], layout.blockTables),
      i32Tensor([numSeqs], seqLens),
      i32Tensor([numSeqs + 1], layout.queryStartLoc),
    ],
    dst: [poisoned(outDtype, [numTokens, params.numHeads * params.headDim])],
  };
}

/** Active rows close to the reference; rows of no active sequence still hold the NaN poison. */
function expectRows(
  out: Float64Array, expected: Float64Array, rowLen: number, numTokens: number, untouchedRows: number[],
  tol: ReturnType<typeof tolerance>, label: string,
): void {
  for (let t = 0; t < numTokens; t++) {
    const row = out.subarray(t * rowLen, (t + 1) * rowLen);
    if (untouchedRows.includes(t)) {
      expect(row.every(Number.isNaN), `${label}: row ${t} belongs to no active sequence and must stay untouched`).toBe(true);
    } else {
      expectClose(row, expected.subarray(t * rowLen, (t + 1) * rowLen), tol, `${label} row ${t}`);
    }
  }
}

interface AttentionCase {
  batch: Batch;
  heads: [number, number, number]; // numHeads, numKvHeads, headDim
  dtype: FloatDType; // q and out
  q: Float64Array; // decoded q values
  call: OpCall;
  kValues: Float64Array;
  vValues: Float64Array;
  layout: BatchTensors;
  scale: number;
}

/** The reference output of a case (every row; rows of no active sequence stay 0 here). */
function expectedOutput(c: AttentionCase): Float64Array {
  const [numHeads, numKvHeads, headDim] = c.heads;
  return ref.attention({
    q: c.q, kCache: c.kValues, vCache: c.vValues, blockTables: c.layout.blockTables, maxBlocksPerSeq: c.layout.maxBlocksPerSeq,
    seqLens: Int32Array.from(c.batch.seqLens), queryStartLoc: c.layout.queryStartLoc, numHeads, numKvHeads, headDim,
    blockSize: c.batch.blockSize, scale: c.scale, out: new Float64Array(c.batch.numTokens * numHeads * headDim),
  });
}

/** A random case with an f8e4m3 cache: q ~ N(0, 1) in `dtype`, K/V from fp8Cache. */
function fp8Case(rng: Rng, batch: Batch, heads: [number, number, number], dtype: FloatDType): AttentionCase {
  const [numHeads, numKvHeads, headDim] = heads;
  const layout = layoutBatch(rng, batch);
  const q = randomFloatTensor(rng, dtype, [batch.numTokens, numHeads, headDim]);
  const cacheShape = [layout.numBlocks, batch.blockSize, numKvHeads, headDim];
  const kCache = fp8Cache(rng, cacheShape);
  const vCache = fp8Cache(rng, cacheShape);
  const scale = 1 / Math.sqrt(headDim);
  const params = { numHeads, numKvHeads, headDim, blockSize: batch.blockSize, scale };
  const call = attentionCall(q.tensor, kCache.tensor, vCache.tensor, layout, batch.seqLens, dtype, params);
  return { batch, heads, dtype, q: q.values, call, kValues: kCache.values, vValues: vCache.values, layout, scale };
}

/**
 * Runs a case on every variant the backend has for it and checks each output against the reference
 * (computed only when the backend supports the case); false when it does not.
 */
function runEveryVariant(
  device: NativeDevice, c: AttentionCase, check: (out: Float64Array, expected: Float64Array, variant: number) => void,
): boolean {
  if (!device.supportsOp(c.call)) return false;
  const expected = expectedOutput(c);
  for (const variant of variantsOf(device, c.call)) check(decodeFloat(c.dtype, device.runOp(withVariant(c.call, variant))[0]), expected, variant);
  return true;
}

/** An attention call of one decode row over 20 positions with these dtypes (for support checks). */
function smallAttentionCall(
  dtypes: { q: KvDType; k: KvDType; v: KvDType; out: KvDType }, [numHeads, numKvHeads, headDim]: [number, number, number] = [8, 2, 128], blockSize = 16,
): OpCall {
  const rng = new Rng(59);
  const layout = layoutBatch(rng, { queryLens: [1], seqLens: [20], numTokens: 1, blockSize });
  const cacheShape = [layout.numBlocks, blockSize, numKvHeads, headDim];
  const q = randomFloatTensor(rng, dtypes.q, [1, numHeads, headDim]).tensor;
  const call = attentionCall(q, randomFloatTensor(rng, dtypes.k, cacheShape).tensor, randomFloatTensor(rng, dtypes.v, cacheShape).tensor, layout, [20],
    'f32', { numHeads, numKvHeads, headDim, blockSize, scale: 1 / Math.sqrt(headDim) });
  return { ...call, dst: [poisoned(dtypes.out, [1, numHeads * headDim])] };
}

export function defineAttentionTests(getDevice: () => NativeDevice): void {
  describe('attention', () => {
    it.for(dtypePairs())('q/out %s, cache %s: mixed prompt/decode/chunked rows, every GQA ratio', ([dtype, cacheDtype], ctx) => {
      const rng = new Rng(51);
      for (const blockSize of [4, 16]) {
        for (const [numHeads, numKvHeads, headDim] of CONFIGS) {
          const layout = layoutBatch(rng, { ...MIXED, blockSize });
          const q = randomFloatTensor(rng, dtype, [MIXED.numTokens, numHeads, headDim]);
          const cacheShape = [layout.numBlocks, blockSize, numKvHeads, headDim];
          const kCache = randomFloatTensor(rng, cacheDtype, cacheShape);
          const vCache = randomFloatTensor(rng, cacheDtype, cacheShape);
          const params = { numHeads, numKvHeads, headDim, blockSize, scale: 1 / Math.sqrt(headDim) };
          const call = attentionCall(q.tensor, kCache.tensor, vCache.tensor, layout, MIXED.seqLens, dtype, params);
          if (!getDevice().supportsOp(call)) return ctx.skip();
          const rowLen = numHeads * headDim;
          const expected = ref.attention({
            q: q.values, kCache: kCache.values, vCache: vCache.values, blockTables: layout.blockTables,
            maxBlocksPerSeq: layout.maxBlocksPerSeq, seqLens: Int32Array.from(MIXED.seqLens),
            queryStartLoc: layout.queryStartLoc, ...params, out: new Float64Array(MIXED.numTokens * rowLen),
          });
          for (const variant of variantsOf(getDevice(), call)) {
            const out = decodeFloat(dtype, getDevice().runOp(withVariant(call, variant))[0]);
            const label = `attention bs=${blockSize} H=${numHeads} KV=${numKvHeads} D=${headDim} (variant ${variant})`;
            expectRows(out, expected, rowLen, MIXED.numTokens, layout.untouchedRows, tolerance([dtype, cacheDtype], headDim), label);
          }
        }
      }
    });

    it.for(LONG_DTYPES)('q/out %s, cache %s: long contexts, real head dims, every variant', ([dtype, cacheDtype], ctx) => {
      const rng = new Rng(54);
      const blockSize = 16;
      for (const [numHeads, numKvHeads, headDim] of LONG_CONFIGS) {
        const layout = layoutBatch(rng, { ...LONG, blockSize });
        const q = randomFloatTensor(rng, dtype, [LONG.numTokens, numHeads, headDim]);
        const cacheShape = [layout.numBlocks, blockSize, numKvHeads, headDim];
        const kCache = randomFloatTensor(rng, cacheDtype, cacheShape);
        const vCache = randomFloatTensor(rng, cacheDtype, cacheShape);
        const params = { numHeads, numKvHeads, headDim, blockSize, scale: 1 / Math.sqrt(headDim) };
        const call = attentionCall(q.tensor, kCache.tensor, vCache.tensor, layout, LONG.seqLens, dtype, params);
        if (!getDevice().supportsOp(call)) return ctx.skip();
        const rowLen = numHeads * headDim;
        const expected = ref.attention({
          q: q.values, kCache: kCache.values, vCache: vCache.values, blockTables: layout.blockTables,
          maxBlocksPerSeq: layout.maxBlocksPerSeq, seqLens: Int32Array.from(LONG.seqLens),
          queryStartLoc: layout.queryStartLoc, ...params, out: new Float64Array(LONG.numTokens * rowLen),
        });
        for (const variant of variantsOf(getDevice(), call)) {
          const out = decodeFloat(dtype, getDevice().runOp(withVariant(call, variant))[0]);
          const label = `attention long H=${numHeads} KV=${numKvHeads} D=${headDim} (variant ${variant})`;
          expectRows(out, expected, rowLen, LONG.numTokens, layout.untouchedRows, tolerance([dtype, cacheDtype], headDim), label);
        }
      }
    });

    it('decode-only batches (one row per sequence, as graph-captured decode steps are), every variant', () => {
      const rng = new Rng(55);
      const batch = { queryLens: [1, 1, 1, 1, 1], seqLens: [1, 16, 17, 300, 0], numTokens: 5, blockSize: 16 };
      for (const [numHeads, numKvHeads, headDim] of [[8, 1, 128], [14, 2, 64]] as [number, number, number][]) {
        for (const dtype of ['bf16', 'f16'] as FloatDType[]) {
          const layout = layoutBatch(rng, batch);
          const q = randomFloatTensor(rng, dtype, [batch.numTokens, numHeads, headDim]);
          const cacheShape = [layout.numBlocks, batch.blockSize, numKvHeads, headDim];
          const kCache = randomFloatTensor(rng, dtype, cacheShape);
          const vCache = randomFloatTensor(rng, dtype, cacheShape);
          const params = { numHeads, numKvHeads, headDim, blockSize: batch.blockSize, scale: 1 / Math.sqrt(headDim) };
          const call = attentionCall(q.tensor, kCache.tensor, vCache.tensor, layout, batch.seqLens, dtype, params);
          if (!getDevice().supportsOp(call)) continue;
          const rowLen = numHeads * headDim;
          const expected = ref.attention({
            q: q.values, kCache: kCache.values, vCache: vCache.values, blockTables: layout.blockTables,
            maxBlocksPerSeq: layout.maxBlocksPerSeq, seqLens: Int32Array.from(batch.seqLens),
            queryStartLoc: layout.queryStartLoc, ...params, out: new Float64Array(batch.numTokens * rowLen),
          });
          for (const variant of variantsOf(getDevice(), call)) {
            const out = decodeFloat(dtype, getDevice().runOp(withVariant(call, variant))[0]);
            const label = `attention decode ${dtype} H=${numHeads} KV=${numKvHeads} D=${headDim} (variant ${variant})`;
            expectRows(out, expected, rowLen, batch.numTokens, layout.untouchedRows, tolerance([dtype], headDim), label);
          }
        }
      }
    });

    // FP8 cache. The reference attends over exactly the e4m3 values the cache holds, so the only error
    // left is the kernel's arithmetic on q/out's dtype: the tolerance of q/out alone (bf16: 1.6e-2
    // relative and absolute), as for a 16-bit cache. Widening e4m3 to bf16, f16 or f32 is exact (every
    // e4m3 value is one of theirs), so tensor-core kernels that widen K/V tiles lose nothing there.
    // q/out bf16 and f16 only: the outliers' scores (up to ~80) carry f32 rounding errors of ~1e-5
    // relative into the softmax weights, beyond f32's table entry (made for N(0, 1) scores); f32 q/out
    // over an f8e4m3 cache is checked by the every-code cases below, whose scores are small.
    const fp8Kinds = Object.keys(FP8_BATCHES) as (keyof typeof FP8_BATCHES)[];
    it.for(fp8Kinds.flatMap((kind) => (['bf16', 'f16'] as FloatDType[]).map((dtype) => [kind, dtype] as const)))(
      '%s batch, cache f8e4m3, q/out %s: head dims 64/128, GQA 4/8, block sizes 16/32, every variant',
      ([kind, dtype], ctx) => {
        const rng = new Rng(56);
        let ran = 0;
        for (const blockSize of [16, 32]) {
          for (const heads of FP8_CONFIGS) {
            const batch = { ...FP8_BATCHES[kind], blockSize };
            // Ask before building the (large) case: a backend that refuses the dtypes costs nothing.
            if (!getDevice().supportsOp(smallAttentionCall({ q: dtype, k: 'f8e4m3', v: 'f8e4m3', out: dtype }, heads, blockSize))) continue;
            const c = fp8Case(rng, batch, heads, dtype);
            const rowLen = heads[0] * heads[2];
            const supported = runEveryVariant(getDevice(), c, (out, expected, variant) => {
              const label = `attention fp8 ${kind} q/out ${dtype} bs=${blockSize} H=${heads[0]} KV=${heads[1]} D=${heads[2]} (variant ${variant})`;
              expectRows(out, expected, rowLen, batch.numTokens, c.layout.untouchedRows, tolerance([dtype], heads[2]), label);
            });
            if (supported) ran++;
          }
        }
        if (ran === 0) skipUnlessFp8RefusedByDesign(getDevice(), ctx);
      },
    );

    it.for(['bf16', 'f16', 'f32'] as FloatDType[])('cache f8e4m3, q/out %s: every finite e4m3 code read back exactly as v', (dtype, ctx) => {
      // Sequences of one position (decode rows) and the first row of a prompt attend to one position
      // only: softmax weight exactly 1, out = v. Their v rows hold every finite code (NaN codes aside),
      // and e4m3 ⊂ bf16/f16/f32, so out must equal v bit for bit.
      const rng = new Rng(57);
      const [numHeads, numKvHeads, headDim, blockSize] = [8, 2, 128, 16];
      const batch: Batch = { queryLens: [1, 1, 5], seqLens: [1, 1, 5], numTokens: 7, blockSize };
      const c = fp8Case(rng, batch, [numHeads, numKvHeads, headDim], dtype);
      const finiteCodes = Array.from({ length: 256 }, (_, code) => code).filter((code) => (code & 0x7f) !== 0x7f);
      const vBytes = c.call.src[2]!.data as Uint8Array;
      const oneRowPositions = [0, 1, 2].map((s) => c.layout.blockTables[s * c.layout.maxBlocksPerSeq]! * blockSize); // position 0 of each
      oneRowPositions.forEach((position, s) => {
        const row = vBytes.subarray(position * numKvHeads * headDim, (position + 1) * numKvHeads * headDim);
        row.forEach((_, i) => (row[i] = finiteCodes[(i + 97 * s) % finiteCodes.length]!)); // each sequence shifts the lanes
      });
      c.vValues = ref.decode('f8e4m3', vBytes);
      const rowLen = numHeads * headDim;
      const exactRows = [0, 1, 2]; // the two one-position sequences and the prompt's first row
      const supported = runEveryVariant(getDevice(), c, (out, expected, variant) => {
        const label = `attention fp8 codes q/out ${dtype} (variant ${variant})`;
        for (const t of exactRows) {
          const wrong = Array.from(out.subarray(t * rowLen, (t + 1) * rowLen)).flatMap((x, i) => (x === expected[t * rowLen + i] ? [] : [`row ${t} element ${i}: ${x}, expected ${expected[t * rowLen + i]}`]));
          expect(wrong.slice(0, 8), label).toEqual([]);
        }
        expectRows(out, expected, rowLen, batch.numTokens, c.layout.untouchedRows, tolerance([dtype], headDim), label);
      });
      if (!supported) skipUnlessFp8RefusedByDesign(getDevice(), ctx);
    });

    it.for(['bf16', 'f16', 'f32'] as FloatDType[])('cache f8e4m3, q/out %s: every finite e4m3 code read back as k', (dtype, ctx) => {
      // Two positions per sequence: k0 holds codes, k1 = 0; v0 = +1, v1 = -1. A q head that is 2^-e on
      // one feature d (zero elsewhere) with scale 1 scores s = 2^-e * k0[d] against 0, so every output
      // element is tanh(s / 2). e is the exponent of k0[d], putting |s| in [1, 2): there a one-code error
      // in k0[d] moves s by >= 1/8 and the output by > 0.025, which f32's tolerance sees (bf16's not
      // always), and a wrong binade, sign or subnormal decode moves it far more, in every dtype.
      const rng = new Rng(58);
      const [numHeads, numKvHeads, headDim, blockSize] = [16, 2, 64, 16];
      const finiteCodes = Array.from({ length: 256 }, (_, code) => code).filter((code) => (code & 0x7f) !== 0x7f);
      const codesPerSeq = numHeads; // one per q head
      const numSeqs = Math.ceil(finiteCodes.length / codesPerSeq);
      const batch: Batch = { queryLens: new Array<number>(numSeqs).fill(1), seqLens: new Array<number>(numSeqs).fill(2), numTokens: numSeqs, blockSize };
      const layout = layoutBatch(rng, batch);
      const cacheShape = [layout.numBlocks, blockSize, numKvHeads, headDim];
      const cacheLength = cacheShape.reduce((a, b) => a * b, 1);
      const kBytes = new Uint8Array(cacheLength).fill(0x38); // unused slots: 1.0
      const vBytes = new Uint8Array(cacheLength).fill(0x38);
      const qValues = new Float64Array(numSeqs * numHeads * headDim);
      const group = numHeads / numKvHeads;
      for (let s = 0; s < numSeqs; s++) {
        const base = layout.blockTables[s * layout.maxBlocksPerSeq]! * blockSize; // positions 0 and 1 share a block
        for (let h = 0; h < numHeads; h++) {
          const code = finiteCodes[(s * codesPerSeq + h) % finiteCodes.length]!;
          const kvHead = Math.floor(h / group);
          const feature = (h % group) * 7; // distinct features for the heads of one kv head
          const at = (position: number, d: number): number => ((base + position) * numKvHeads + kvHead) * headDim + d;
          for (let d = 0; d < headDim; d++) kBytes[at(1, d)] = 0x00;
          kBytes[at(0, feature)] = code;
          const value = Math.abs(E4M3_VALUES[code]!);
          qValues[(s * numHeads + h) * headDim + feature] = value === 0 ? 1 : 2 ** -Math.floor(Math.log2(value));
          for (let d = 0; d < headDim; d++) {
            vBytes[at(0, d)] = 0x38; // +1
            vBytes[at(1, d)] = 0xb8; // -1
          }
        }
        // k0's other features: zero, so only the chosen feature scores.
        for (let kvHead = 0; kvHead < numKvHeads; kvHead++) {
          for (let d = 0; d < headDim; d++) {
            const index = (base * numKvHeads + kvHead) * headDim + d;
            if (d % 7 !== 0 || d / 7 >= group) kBytes[index] = 0x00;
          }
        }
      }
      const q = floatTensor(dtype, [numSeqs, numHeads, headDim], qValues);
      const kCache = { dtype: 'f8e4m3' as const, shape: cacheShape, data: kBytes };
      const vCache = { dtype: 'f8e4m3' as const, shape: cacheShape, data: vBytes };
      const params = { numHeads, numKvHeads, headDim, blockSize, scale: 1 };
      const call = attentionCall(q.tensor, kCache, vCache, layout, batch.seqLens, dtype, params);
      const c: AttentionCase = {
        batch, heads: [numHeads, numKvHeads, headDim], dtype, q: q.values, call, layout, scale: 1,
        kValues: ref.decode('f8e4m3', kBytes), vValues: ref.decode('f8e4m3', vBytes),
      };
      const supported = runEveryVariant(getDevice(), c, (out, expected, variant) => {
        expectRows(out, expected, numHeads * headDim, numSeqs, layout.untouchedRows, tolerance([dtype], headDim), `attention fp8 k codes q/out ${dtype} (variant ${variant})`);
      });
      if (!supported) skipUnlessFp8RefusedByDesign(getDevice(), ctx);
    });

    it('f8e4m3: a k/v cache where the design requires it (else refused cleanly), never q, out or a k/v mix', () => {
      const refused: { q: KvDType; k: KvDType; v: KvDType; out: KvDType }[] = [
        { q: 'f8e4m3', k: 'f8e4m3', v: 'f8e4m3', out: 'bf16' },
        { q: 'bf16', k: 'f8e4m3', v: 'f8e4m3', out: 'f8e4m3' },
        { q: 'bf16', k: 'f8e4m3', v: 'bf16', out: 'bf16' },
        { q: 'bf16', k: 'bf16', v: 'f8e4m3', out: 'bf16' },
      ];
      expectFp8KvCacheContract(
        getDevice(), refused.map((dtypes) => [JSON.stringify(dtypes), smallAttentionCall(dtypes)]),
        smallAttentionCall({ q: 'bf16', k: 'f8e4m3', v: 'f8e4m3', out: 'bf16' }), smallAttentionCall({ q: 'bf16', k: 'bf16', v: 'bf16', out: 'bf16' }),
      );
    });

    it('skips positions whose block id is -1 inside the context', () => {
      const rng = new Rng(52);
      const [numHeads, numKvHeads, headDim, blockSize] = [4, 2, 8, 4];
      const layout = layoutBatch(rng, { queryLens: [3], seqLens: [14], numTokens: 3, blockSize });
      layout.blockTables[1] = -1; // positions 4..7 are masked out
      const q = randomFloatTensor(rng, 'f32', [3, numHeads, headDim]);
      const cacheShape = [layout.numBlocks, blockSize, numKvHeads, headDim];
      const kCache = randomFloatTensor(rng, 'f32', cacheShape);
      const vCache = randomFloatTensor(rng, 'f32', cacheShape);
      const params = { numHeads, numKvHeads, headDim, blockSize, scale: 0.3 };
      const out = decodeFloat('f32', getDevice().runOp(attentionCall(q.tensor, kCache.tensor, vCache.tensor, layout, [14], 'f32', params))[0]);
      const expected = ref.attention({
        q: q.values, kCache: kCache.values, vCache: vCache.values, blockTables: layout.blockTables,
        maxBlocksPerSeq: layout.maxBlocksPerSeq, seqLens: Int32Array.from([14]), queryStartLoc: layout.queryStartLoc,
        ...params, out: new Float64Array(3 * numHeads * headDim),
      });
      expectClose(out, expected, tolerance(['f32'], headDim), 'attention with a -1 block');
    });

    it('rejects a block id outside the cache and seq_len < query rows', () => {
      const rng = new Rng(53);
      const layout = layoutBatch(rng, { queryLens: [2], seqLens: [5], numTokens: 2, blockSize: 4 });
      const q = randomFloatTensor(rng, 'f32', [2, 2, 4]);
      const cache = randomFloatTensor(rng, 'f32', [layout.numBlocks, 4, 1, 4]);
      const params = { numHeads: 2, numKvHeads: 1, headDim: 4, blockSize: 4, scale: 0.5 };
      layout.blockTables[0] = layout.numBlocks;
      expect(() => getDevice().runOp(attentionCall(q.tensor, cache.tensor, cache.tensor, layout, [5], 'f32', params))).toThrow(/block/);
      layout.blockTables[0] = 0;
      expect(() => getDevice().runOp(attentionCall(q.tensor, cache.tensor, cache.tensor, layout, [1], 'f32', params))).toThrow(/seq_len/);
    });
  });
}
