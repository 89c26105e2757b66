/** rope_kv_write: rotate-half RoPE on q and k, k/v scattered into the paged cache by slot. */
import { describe, expect, it } from 'vitest';
import type { NativeDevice, OpCall } from '../../../src/device/binding.ts';
import { decodeFloat, dtypePairs, expectClose, f32Tensor, i32Tensor, poisoned, randomFloatTensor, Rng, tolerance } from '../harness.ts';
import * as ref from '../reference.ts';

// [numHeads, numKvHeads, headDim, rotaryDim]: GQA ratios 1, 2, 4, 8, partial rotary, headDim not a multiple of 8.
const CONFIGS: [number, number, number, number][] = [
  [4, 4, 16, 16],
  [4, 2, 16, 8],
  [8, 2, 12, 12],
  [8, 1, 16, 16],
];
const NUM_BLOCKS = 5;
const BLOCK_SIZE = 4;

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
