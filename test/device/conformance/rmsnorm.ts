/** rmsnorm: plain and fused with the residual add, including the in-place residual (dst1 = src1). */
import { describe, expect, it } from 'vitest';
import type { NativeDevice, OpCall } from '../../../src/device/binding.ts';
import { decodeFloat, dtypePairs, expectClose, poisoned, randomFloatTensor, Rng, tolerance } from '../harness.ts';
import * as ref from '../reference.ts';

const SHAPES: [number, number][] = [[1, 1], [5, 7], [3, 67], [2, 257]]; // [M, H]
const EPS = 1e-5;

export function defineRmsNormTests(getDevice: () => NativeDevice): void {
  describe('rmsnorm', () => {
    it.for(dtypePairs())('x %s, weight %s: plain, with the optional copy in dst1', ([xDtype, wDtype], ctx) => {
      const rng = new Rng(31);
      for (const [m, h] of SHAPES) {
        for (const withCopy of [false, true]) {
          const x = randomFloatTensor(rng, xDtype, [m, h], 3);
          const weight = randomFloatTensor(rng, wDtype, [h]);
          const call: OpCall = {
            op: 'rmsnorm',
            params: { eps: EPS, add_residual: 0 },
            src: [x.tensor, null, weight.tensor],
            dst: [poisoned(xDtype, [m, h]), withCopy ? poisoned(xDtype, [m, h]) : null],
          };
          if (!getDevice().supportsOp(call)) return ctx.skip();
          const [out, copy] = getDevice().runOp(call);
          const expected = ref.rmsnorm({ x: x.values, residual: null, weight: weight.values, eps: EPS, addResidual: false, xDtype, residualDtype: xDtype });
          expectClose(decodeFloat(xDtype, out), expected.out, tolerance([xDtype, wDtype], h), `rmsnorm [${m}, ${h}]`);
          if (withCopy) expect(Array.from(decodeFloat(xDtype, copy))).toEqual(Array.from(x.values));
          else expect(copy).toBeNull();
        }
      }
    });

    it.for(dtypePairs())('fused residual add: x/residual %s, weight %s, out of place and in place', ([dtype, wDtype], ctx) => {
      const rng = new Rng(32);
      for (const [m, h] of SHAPES) {
        for (const inPlace of [false, true]) {
          const x = randomFloatTensor(rng, dtype, [m, h], 2);
          const residual = randomFloatTensor(rng, dtype, [m, h], 2);
          const weight = randomFloatTensor(rng, wDtype, [h]);
          const call: OpCall = {
            op: 'rmsnorm',
            params: { eps: EPS, add_residual: 1 },
            src: [x.tensor, residual.tensor, weight.tensor],
            dst: [poisoned(dtype, [m, h]), inPlace ? { dtype, shape: [m, h], alias: 1 } : poisoned(dtype, [m, h])],
          };
          if (!getDevice().supportsOp(call)) return ctx.skip();
          const [out, residualOut] = getDevice().runOp(call);
          const expected = ref.rmsnorm({ x: x.values, residual: residual.values, weight: weight.values, eps: EPS, addResidual: true, xDtype: dtype, residualDtype: dtype });
          const label = `rmsnorm+residual [${m}, ${h}]${inPlace ? ' in place' : ''}`;
          expectClose(decodeFloat(dtype, residualOut), expected.residualOut, tolerance([dtype]), `${label} residual`);
          expectClose(decodeFloat(dtype, out), expected.out, tolerance([dtype, wDtype], h), label);
        }
      }
    });

    it('adds eps inside the square root (small inputs, large eps)', () => {
      const rng = new Rng(34);
      const eps = 1e-2;
      const x = randomFloatTensor(rng, 'f32', [4, 33], 0.1); // mean square ~ eps
      const weight = randomFloatTensor(rng, 'f32', [33]);
      const [out] = getDevice().runOp({ op: 'rmsnorm', params: { eps }, src: [x.tensor, null, weight.tensor], dst: [poisoned('f32', [4, 33])] });
      const expected = ref.rmsnorm({ x: x.values, residual: null, weight: weight.values, eps, addResidual: false, xDtype: 'f32', residualDtype: 'f32' });
      expectClose(decodeFloat('f32', out), expected.out, tolerance(['f32'], 33), 'rmsnorm eps');
    });

    it('normalises each head of a [T, heads, headDim] tensor with a [headDim] weight', () => {
      const rng = new Rng(33);
      const x = randomFloatTensor(rng, 'f32', [3, 4, 8]);
      const weight = randomFloatTensor(rng, 'f32', [8]);
      const [out] = getDevice().runOp({
        op: 'rmsnorm',
        params: { eps: EPS },
        src: [x.tensor, null, weight.tensor],
        dst: [poisoned('f32', [3, 4, 8])],
      });
      const expected = ref.rmsnorm({ x: x.values, residual: null, weight: weight.values, eps: EPS, addResidual: false, xDtype: 'f32', residualDtype: 'f32' });
      expectClose(decodeFloat('f32', out), expected.out, tolerance(['f32'], 8), 'per-head rmsnorm');
    });
  });
}
