/** matmul: y = x · Wᵀ (+ bias) for every dtype combination, tails in every dimension. */
import { describe, it } from 'vitest';
import type { NativeDevice, OpCall } from '../../../src/device/binding.ts';
import { decodeFloat, expectClose, poisoned, randomFloatTensor, Rng, tolerance } from '../harness.ts';
import * as ref from '../reference.ts';
import { FLOAT_DTYPES, type FloatDType } from '../reference.ts';

// [M, K, N]: single elements, odd K (vector tails), N not a multiple of 2/4/8/16/32/64, a decode-like
// single row with long K, and M past one 64-row tile.
const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [3, 17, 5],
  [7, 33, 29],
  [1, 515, 131],
  [69, 67, 45],
  [130, 40, 70],
];

export function defineMatmulTests(getDevice: () => NativeDevice): void {
  describe('matmul', () => {
    const combos = FLOAT_DTYPES.flatMap((x) =>
      FLOAT_DTYPES.flatMap((w) => ([x, 'f32'] as FloatDType[]).filter((y, i, all) => all.indexOf(y) === i).map((y) => [x, w, y] as const)),
    );
    it.for(combos)('x %s, W %s -> y %s, with and without bias', ([xDtype, wDtype, yDtype], ctx) => {
      const rng = new Rng(21);
      for (const [m, k, n] of SHAPES) {
        for (const withBias of [false, true]) {
          const x = randomFloatTensor(rng, xDtype, [m, k]);
          const w = randomFloatTensor(rng, wDtype, [n, k]);
          const bias = withBias ? randomFloatTensor(rng, wDtype, [n]) : null;
          const call: OpCall = {
            op: 'matmul',
            src: [x.tensor, w.tensor, bias ? bias.tensor : null],
            dst: [poisoned(yDtype, [m, n])],
          };
          if (!getDevice().supportsOp(call)) return ctx.skip();
          const [y] = getDevice().runOp(call);
          const expected = ref.matmul(x.values, w.values, bias ? bias.values : null, m, n, k);
          expectClose(decodeFloat(yDtype, y), expected, tolerance([xDtype, wDtype, yDtype], k),
            `matmul [${m}, ${k}] x [${n}, ${k}]${withBias ? ' + bias' : ''}`);
        }
      }
    });

    it('treats a 3-D x as [rows, rest]', () => {
      const rng = new Rng(22);
      const x = randomFloatTensor(rng, 'f32', [4, 3, 5]);
      const w = randomFloatTensor(rng, 'f32', [6, 15]);
      const [y] = getDevice().runOp({ op: 'matmul', src: [x.tensor, w.tensor, null], dst: [poisoned('f32', [4, 6])] });
      expectClose(decodeFloat('f32', y), ref.matmul(x.values, w.values, null, 4, 6, 15), tolerance(['f32'], 15), 'matmul 3-D');
    });
  });
}
