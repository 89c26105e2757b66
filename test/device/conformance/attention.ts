/**
 * attention: paged causal attention with GQA over a batch that mixes a fresh prompt, a decode row,
 * a chunked-prefill continuation and an idle sequence, with scattered blocks and -1 padding.
 */
import { describe, expect, it } from 'vitest';
import type { NativeDevice, OpCall, OpTensor } from '../../../src/device/binding.ts';
import { decodeFloat, dtypePairs, expectClose, i32Tensor, poisoned, randomFloatTensor, Rng, tolerance, variantsOf, withVariant } from '../harness.ts';
import * as ref from '../reference.ts';
import type { FloatDType } from '../reference.ts';

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
