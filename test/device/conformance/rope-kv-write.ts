/**
 * rope_kv_write: rotate-half RoPE on q and k, k/v scattered into the paged cache by slot, into float
 * caches and the f8e4m3 KV cache (bit-exact e4m3 rounding, refused where a backend lacks it).
 */
import { describe, expect, it } from 'vitest';
import type { NativeDevice, OpCall } from '../../../src/device/binding.ts';
import {
  decodeFloat, dtypePairs, expectClose, expectFp8KvCacheContract, f32Tensor, floatTensor, i32Tensor, normalsWithOutliers, poisoned, randomFloatTensor, Rng,
  skipUnlessFp8RefusedByDesign, tolerance,
} from '../harness.ts';
import * as ref from '../reference.ts';
import { FLOAT_DTYPES, type KvDType } from '../reference.ts';

// [numHeads, numKvHeads, headDim, rotaryDim]: GQA ratios 1, 2, 4, 8, partial rotary, headDim not a multiple of 8.
const CONFIGS: [number, number, number, number][] = [
  [4, 4, 16, 16],
  [4, 2, 16, 8],
  [8, 2, 12, 12],
  [8, 1, 16, 16],
];
const NUM_BLOCKS = 5;
const BLOCK_SIZE = 4;

// FP8 cache cases: the toy shapes above plus real head dims (64, 128) with GQA ratios 4 and 8.
const FP8_CONFIGS: [number, number, number, number][] = [...CONFIGS, [8, 2, 64, 64], [8, 1, 128, 128], [16, 2, 128, 64]];

/**
 * How far a device's rotated value may be from the f64 reference's before it is rounded to the cache
 * dtype, relative to |a| + |b| of the pair `a cos - b sin` it comes from: f32 cos/sin (within an ulp,
 * 6e-8 relative), two f32 products and a sum (or an FMA) stay within ~4 * 2^-24 = 2.4e-7 of it, so
 * 1e-6 leaves a margin. Copied values (v, k past rotary_dim) are exact: no margin.
 */
const ROTATION_MARGIN = 1e-6;

/**
 * For every cache element rope_kv_write writes, the margin within which the device's f32 value may
 * differ from the reference (0 elsewhere): ROTATION_MARGIN * (|a| + |b|) for rotated k features.
 */
function rotationMargins(
  qkv: Float64Array, slots: number[], dims: { numHeads: number; numKvHeads: number; headDim: number; rotaryDim: number }, cacheLength: number,
): Float64Array {
  const { numHeads: H, numKvHeads: KV, headDim: D, rotaryDim: R } = dims;
  const margins = new Float64Array(cacheLength);
  slots.forEach((slot, t) => {
    if (slot < 0) return;
    for (let g = 0; g < KV; g++) {
      const k = (t * (H + 2 * KV) + H + g) * D;
      for (let d = 0; d < R; d++) {
        const partner = d < R / 2 ? d + R / 2 : d - R / 2;
        margins[(slot * KV + g) * D + d] = ROTATION_MARGIN * (Math.abs(qkv[k + d]!) + Math.abs(qkv[k + partner]!));
      }
    }
  });
  return margins;
}

/**
 * Each f8e4m3 code is the reference's rounding of the exact value, bit for bit, except where the
 * exact value lies within its margin of a rounding midpoint (or of zero, for the sign of a zero): there
 * the neighbouring code, the rounding of a value within the margin, is accepted too.
 */
function expectE4m3Codes(actual: Uint8Array, expected: Float64Array, margins: Float64Array, label: string): void {
  const hex = (code: number): string => `0x${code.toString(16).padStart(2, '0')}`;
  const wrong: string[] = [];
  expected.forEach((e, i) => {
    const allowed = new Set([ref.f8e4m3Bits(e), ref.f8e4m3Bits(e - margins[i]!), ref.f8e4m3Bits(e + margins[i]!)]);
    if (!allowed.has(actual[i]!)) wrong.push(`element ${i}: ${hex(actual[i]!)}, expected ${[...allowed].map(hex).join(' or ')} (exact ${e})`);
  });
  expect(wrong.slice(0, 8), `${label}: ${wrong.length} wrong codes`).toEqual([]);
}

/** Normal values with a few outliers: some saturate at +-448, some rotate into or out of the range. */
function valuesWithOutliers(rng: Rng, n: number): number[] {
  return normalsWithOutliers(rng, n, 0.02, 200, 1000);
}

/** A small rope_kv_write call (real head dim 64, two tokens into distinct slots) with these dtypes. */
function smallRopeCall(rng: Rng, dtypes: { qkv: KvDType; qOut: KvDType; k: KvDType; v: KvDType }): OpCall {
  const [numHeads, numKvHeads, headDim, numTokens] = [4, 2, 64, 2];
  const cacheShape = [2, 16, numKvHeads, headDim];
  return {
    op: 'rope_kv_write',
    params: { num_heads: numHeads, num_kv_heads: numKvHeads, head_dim: headDim, rotary_dim: headDim },
    src: [
      randomFloatTensor(rng, dtypes.qkv, [numTokens, numHeads + 2 * numKvHeads, headDim]).tensor, i32Tensor([numTokens], [0, 9]),
      f32Tensor([headDim / 2], inverseFrequencies(headDim)), i32Tensor([numTokens], [3, 20]),
    ],
    dst: [poisoned(dtypes.qOut, [numTokens, numHeads, headDim]), randomFloatTensor(rng, dtypes.k, cacheShape).tensor, randomFloatTensor(rng, dtypes.v, cacheShape).tensor],
  };
}

export function inverseFrequencies(rotaryDim: number, base = 10000): Float32Array {
  return Float32Array.from({ length: rotaryDim / 2 }, (_, i) => 1 / Math.pow(base, (2 * i) / rotaryDim));
}

export function defineRopeKvWriteTests(getDevice: () => NativeDevice): void {
  describe('rope_kv_write', () => {
    it.for(dtypePairs())('qkv %s, cache %s: every GQA ratio, partial rotary, -1 slots skipped', ([dtype, cacheDtype], ctx) => {
      const rng = new Rng(41);
      for (const [numHeads, numKvHeads, headDim, rotaryDim] of CONFIGS) {
        const numTokens = 6;
        const qkv = randomFloatTensor(rng, dtype, [numTokens, numHeads + 2 * numKvHeads, headDim]);
        // Large positions too: the angle must be formed in f32 exactly as ops.h says.
        const positions = Int32Array.from({ length: numTokens }, (_, t) => (t === 0 ? 0 : rng.int(1, 5000)));
        const slots = rng.shuffle(Array.from({ length: NUM_BLOCKS * BLOCK_SIZE }, (_, i) => i)).slice(0, numTokens);
        slots[2] = -1;
        const invFreq = inverseFrequencies(rotaryDim);
        const cacheShape = [NUM_BLOCKS, BLOCK_SIZE, numKvHeads, headDim];
        const kCache = randomFloatTensor(rng, cacheDtype, cacheShape); // prior contents must survive
        const vCache = randomFloatTensor(rng, cacheDtype, cacheShape);
        const call: OpCall = {
          op: 'rope_kv_write',
          params: { num_heads: numHeads, num_kv_heads: numKvHeads, head_dim: headDim, rotary_dim: rotaryDim },
          src: [qkv.tensor, i32Tensor([numTokens], positions), f32Tensor([rotaryDim / 2], invFreq), i32Tensor([numTokens], slots)],
          dst: [poisoned(dtype, [numTokens, numHeads, headDim]), kCache.tensor, vCache.tensor],
        };
        if (!getDevice().supportsOp(call)) return ctx.skip();
        const [qOut, kOut, vOut] = getDevice().runOp(call);
        const expectedK = Float64Array.from(kCache.values);
        const expectedV = Float64Array.from(vCache.values);
        const expectedQ = ref.ropeKvWrite({
          qkv: qkv.values, positions, invFreq, slotMapping: Int32Array.from(slots),
          numHeads, numKvHeads, headDim, rotaryDim, kCache: expectedK, vCache: expectedV,
        });
        const label = `rope H=${numHeads} KV=${numKvHeads} D=${headDim} R=${rotaryDim}`;
        const tol = tolerance([dtype, cacheDtype], 2);
        expectClose(decodeFloat(dtype, qOut), expectedQ, tol, `${label} q`);
        expectClose(decodeFloat(cacheDtype, kOut), expectedK, tol, `${label} k_cache`);
        expectClose(decodeFloat(cacheDtype, vOut), expectedV, tol, `${label} v_cache`);
      }
    });

    it.for(FLOAT_DTYPES)('qkv %s, cache f8e4m3: k/v rounded once to e4m3 (nearest even, saturating), prior contents kept', (dtype, ctx) => {
      const rng = new Rng(43);
      let ran = 0;
      for (const [numHeads, numKvHeads, headDim, rotaryDim] of FP8_CONFIGS) {
        const numTokens = 7;
        const qkvShape = [numTokens, numHeads + 2 * numKvHeads, headDim];
        // Outliers in the k and v heads only: q_out keeps the f32-exact tolerance of the cases above.
        const qkvValues = Array.from({ length: numTokens }, () => [
          ...rng.normals(numHeads * headDim), ...valuesWithOutliers(rng, 2 * numKvHeads * headDim),
        ]).flat();
        const qkv = floatTensor(dtype, qkvShape, qkvValues);
        const positions = Int32Array.from({ length: numTokens }, (_, t) => (t === 0 ? 0 : rng.int(1, 5000)));
        const slots = rng.shuffle(Array.from({ length: NUM_BLOCKS * BLOCK_SIZE }, (_, i) => i)).slice(0, numTokens);
        slots[3] = -1;
        const invFreq = inverseFrequencies(rotaryDim);
        const cacheShape = [NUM_BLOCKS, BLOCK_SIZE, numKvHeads, headDim];
        const cacheLength = cacheShape.reduce((a, b) => a * b, 1);
        const kCache = floatTensor('f8e4m3', cacheShape, valuesWithOutliers(rng, cacheLength)); // must survive where unwritten
        const vCache = floatTensor('f8e4m3', cacheShape, valuesWithOutliers(rng, cacheLength));
        const call: OpCall = {
          op: 'rope_kv_write',
          params: { num_heads: numHeads, num_kv_heads: numKvHeads, head_dim: headDim, rotary_dim: rotaryDim },
          src: [qkv.tensor, i32Tensor([numTokens], positions), f32Tensor([rotaryDim / 2], invFreq), i32Tensor([numTokens], slots)],
          dst: [poisoned(dtype, [numTokens, numHeads, headDim]), kCache.tensor, vCache.tensor],
        };
        if (!getDevice().supportsOp(call)) continue;
        ran++;
        const [qOut, kOut, vOut] = getDevice().runOp(call);
        const expectedK = Float64Array.from(kCache.values);
        const expectedV = Float64Array.from(vCache.values);
        const dims = { numHeads, numKvHeads, headDim, rotaryDim };
        const expectedQ = ref.ropeKvWrite({
          qkv: qkv.values, positions, invFreq, slotMapping: Int32Array.from(slots), ...dims, kCache: expectedK, vCache: expectedV,
        });
        const label = `rope fp8 H=${numHeads} KV=${numKvHeads} D=${headDim} R=${rotaryDim}`;
        expectClose(decodeFloat(dtype, qOut), expectedQ, tolerance([dtype], 2), `${label} q`);
        if (!(kOut instanceof Uint8Array) || !(vOut instanceof Uint8Array)) throw new Error('f8e4m3 caches come back as Uint8Array');
        expectE4m3Codes(kOut, expectedK, rotationMargins(qkv.values, slots, dims, cacheLength), `${label} k_cache`);
        expectE4m3Codes(vOut, expectedV, new Float64Array(cacheLength), `${label} v_cache`); // v is copied: exact
      }
      if (ran === 0) skipUnlessFp8RefusedByDesign(getDevice(), ctx);
    });

    it('f8e4m3: a cache where the design requires it (else refused cleanly), never qkv, q_out or a k/v mix', () => {
      const rng = new Rng(44);
      const refused: { qkv: KvDType; qOut: KvDType; k: KvDType; v: KvDType }[] = [
        { qkv: 'f8e4m3', qOut: 'bf16', k: 'f8e4m3', v: 'f8e4m3' },
        { qkv: 'bf16', qOut: 'f8e4m3', k: 'f8e4m3', v: 'f8e4m3' },
        { qkv: 'bf16', qOut: 'bf16', k: 'f8e4m3', v: 'bf16' },
        { qkv: 'bf16', qOut: 'bf16', k: 'bf16', v: 'f8e4m3' },
      ];
      expectFp8KvCacheContract(
        getDevice(), refused.map((dtypes) => [JSON.stringify(dtypes), smallRopeCall(rng, dtypes)]),
        smallRopeCall(rng, { qkv: 'bf16', qOut: 'bf16', k: 'f8e4m3', v: 'f8e4m3' }), smallRopeCall(rng, { qkv: 'bf16', qOut: 'bf16', k: 'bf16', v: 'bf16' }),
      );
    });

    it('rejects a slot outside the cache', () => {
      const rng = new Rng(42);
      const qkv = randomFloatTensor(rng, 'f32', [2, 3, 4]);
      const call: OpCall = {
        op: 'rope_kv_write',
        params: { num_heads: 1, num_kv_heads: 1, head_dim: 4, rotary_dim: 4 },
        src: [qkv.tensor, i32Tensor([2], [0, 1]), f32Tensor([2], inverseFrequencies(4)), i32Tensor([2], [0, 8])],
        dst: [poisoned('f32', [2, 1, 4]), poisoned('f32', [2, 4, 1, 4]), poisoned('f32', [2, 4, 1, 4])],
      };
      expect(() => getDevice().runOp(call)).toThrow(/slot_mapping\[1\] = 8/);
    });
  });
}
