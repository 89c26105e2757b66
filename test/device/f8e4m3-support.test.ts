/**
 * FP8 E4M3 is KV cache storage only (kernels/ops.h UD_F8E4M3): rope_kv_write's k/v destinations and
 * attention's k/v sources (conformance/rope-kv-write.ts and attention.ts test those). Every other op
 * computes in float dtypes, so on every backend each of them must refuse an f8e4m3 operand, wherever
 * it sits: supportsOp false, and runOp an UD_ERR_UNSUPPORTED error that leaves the device working.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadNativeAddon, type NativeDevice, type OpCall } from '../../src/device/binding.ts';
import { describeEachBackend } from './backends.ts';
import { decodeFloat, expectRefused, i32Tensor, poisoned, randomFloatTensor, Rng } from './harness.ts';

const rng = new Rng(61);
const f32 = (shape: number[]) => randomFloatTensor(rng, 'f32', shape).tensor;
const fp8 = (shape: number[]) => randomFloatTensor(rng, 'f8e4m3', shape).tensor;

/** Working f32 calls of the compute ops, small shapes. */
const CALLS: Record<string, () => OpCall> = {
  embedding: () => ({ op: 'embedding', src: [f32([5, 8]), i32Tensor([2], [1, 3])], dst: [poisoned('f32', [2, 8])] }),
  gather_rows: () => ({ op: 'gather_rows', src: [f32([5, 8]), i32Tensor([2], [4, 0])], dst: [poisoned('f32', [2, 8])] }),
  matmul: () => ({ op: 'matmul', src: [f32([2, 8]), f32([3, 8]), f32([3])], dst: [poisoned('f32', [2, 3])] }),
  rmsnorm: () => ({ op: 'rmsnorm', params: { eps: 1e-5, add_residual: 1 }, src: [f32([2, 8]), f32([2, 8]), f32([8])], dst: [poisoned('f32', [2, 8]), poisoned('f32', [2, 8])] }),
  silu_mul: () => ({ op: 'silu_mul', src: [f32([2, 16])], dst: [poisoned('f32', [2, 8])] }),
  fill_random: () => ({ op: 'fill_random', params: { seed: 3, std: 0.5 }, src: [], dst: [poisoned('f32', [16])] }),
};

/** The call with one float operand (src i or dst i) replaced by an f8e4m3 tensor of its shape. */
function withFp8Operand(call: OpCall, side: 'src' | 'dst', index: number): OpCall {
  const operands = [...call[side]];
  const tensor = operands[index]!;
  operands[index] = side === 'src' ? fp8(tensor.shape) : poisoned('f8e4m3', tensor.shape);
  return { ...call, [side]: operands };
}

/** Every (side, index) of a float operand of the call. */
function floatOperands(call: OpCall): ['src' | 'dst', number][] {
  const sides = ['src', 'dst'] as const;
  return sides.flatMap((side) => call[side].flatMap((t, i) => (t && t.dtype === 'f32' ? [[side, i] as ['src' | 'dst', number]] : [])));
}

describeEachBackend('f8e4m3 outside the KV cache', (backend) => {
  let device: NativeDevice | undefined;
  beforeAll(() => {
    device = loadNativeAddon().openDevice(backend);
  });
  afterAll(() => device?.close());

  describe.each(Object.keys(CALLS))('%s', (op) => {
    it('refuses an f8e4m3 operand in every float position, cleanly', () => {
      const call = CALLS[op]!();
      expect(device!.supportsOp(call), 'the f32 call itself').toBe(true);
      for (const [side, index] of floatOperands(call)) {
        expectRefused(device!, withFp8Operand(call, side, index), `${side}${index} f8e4m3`);
      }
      const [out] = device!.runOp(call); // the device still works
      expect(decodeFloat('f32', out).every(Number.isFinite)).toBe(true);
    });
  });
});

