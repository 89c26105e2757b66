/** Bad operands come back as thrown Errors with the backend's message; the device keeps working. */
import { describe, expect, it } from 'vitest';
import type { NativeDevice, OpCall } from '../../../src/device/binding.ts';
import { decodeFloat, f32Tensor, poisoned } from '../harness.ts';

const goodMatmul: OpCall = {
  op: 'matmul',
  src: [f32Tensor([1, 2], [1, 2]), f32Tensor([1, 2], [3, 4]), null],
  dst: [poisoned('f32', [1, 1])],
};

export function defineErrorTests(getDevice: () => NativeDevice): void {
  describe('errors', () => {
    it('reports bad shapes, dtypes, params and data as Errors, then keeps working', () => {
      const device = getDevice();
      const cases: [OpCall, RegExp][] = [
        [{ ...goodMatmul, src: [f32Tensor([1, 3], [1, 2, 3]), f32Tensor([1, 2], [3, 4]), null] }, /W.*should have rows of 3/],
        [{ ...goodMatmul, dst: [poisoned('f32', [2, 1])] }, /dst0.*rows/],
        [{ ...goodMatmul, src: [{ dtype: 'i32', shape: [1, 2], data: new Int32Array(2) }, f32Tensor([1, 2], [3, 4]), null] }, /not supported|must be f32/],
        [{ ...goodMatmul, src: [f32Tensor([1, 3], [1, 2]), f32Tensor([1, 2], [3, 4]), null] }, /data has 2 elements/],
        [{ ...goodMatmul, src: [{ dtype: 'f32', shape: [1, 2], data: new Int32Array(2) }, f32Tensor([1, 2], [3, 4]), null] }, /Float32Array/],
        [{ op: 'rmsnorm', params: { add_residual: 0 }, src: [], dst: [] }, /needs param 'eps'/],
        [{ op: 'rmsnorm', params: { eps: 1e-5, bogus: 1 }, src: [], dst: [] }, /unknown param 'bogus'/],
        [{ op: 'rmsnorm', params: { eps: 1e-5 }, src: [f32Tensor([1, 2], [1, 2]), null, null], dst: [poisoned('f32', [1, 2])] }, /weight\) is required/],
        [{ op: 'nonsense' as OpCall['op'], src: [], dst: [] }, /unknown op 'nonsense'/],
      ];
      for (const [call, message] of cases) expect(() => device.runOp(call)).toThrow(message);
      // The ud_status travels as error.code.
      expect(() => device.runOp(cases[0]![0])).toThrow(expect.objectContaining({ code: 'UD_ERR_INVALID_ARGUMENT' }));
      expect(() => device.runOp(cases[2]![0])).toThrow(expect.objectContaining({ code: 'UD_ERR_UNSUPPORTED' }));
      expect(Array.from(decodeFloat('f32', device.runOp(goodMatmul)[0]))).toEqual([11]);
    });

    it('supportsOp answers for dtypes without running anything', () => {
      expect(getDevice().supportsOp(goodMatmul)).toBe(true);
      expect(getDevice().supportsOp({ ...goodMatmul, src: [{ dtype: 'i32', shape: [1, 2] }, { dtype: 'f32', shape: [1, 2] }, null] })).toBe(false);
    });
  });
}
