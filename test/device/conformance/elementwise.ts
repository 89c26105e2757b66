/** embedding, gather_rows and silu_mul: row copies with conversion, and the gated activation. */
import { describe, expect, it } from 'vitest';
import type { NativeDevice, OpCall } from '../../../src/device/binding.ts';
import { decodeFloat, dtypePairs, expectClose, i32Tensor, poisoned, randomFloatTensor, Rng, tolerance } from '../harness.ts';
import * as ref from '../reference.ts';

export function defineElementwiseTests(getDevice: () => NativeDevice): void {
  describe('embedding', () => {
    it.for(dtypePairs())('table %s -> out %s, with out-of-range ids as zero rows', ([tableDtype, outDtype], ctx) => {
      const rng = new Rng(11);
      const vocab = 37;
      const hidden = 19;
      const table = randomFloatTensor(rng, tableDtype, [vocab, hidden]);
      const ids = [3, 0, 36, -1, 37, 1000, 5, 5, 17, -7, 2];
      const call: OpCall = {
        op: 'embedding',
        src: [table.tensor, i32Tensor([ids.length], ids)],
        dst: [poisoned(outDtype, [ids.length, hidden])],
      };
      if (!getDevice().supportsOp(call)) return ctx.skip();
      const [out] = getDevice().runOp(call);
      const expected = ref.embedding(table.values, vocab, hidden, Int32Array.from(ids));
      expectClose(decodeFloat(outDtype, out), expected, tolerance([tableDtype, outDtype]), 'embedding');
      // The zero rows are exactly zero, not merely small.
      expect(Array.from(decodeFloat(outDtype, out).subarray(3 * hidden, 4 * hidden))).toEqual(new Array(hidden).fill(0));
    });
  });

  describe('gather_rows', () => {
    it.for(dtypePairs())('x %s -> out %s picks rows, zeros for -1 and out-of-range', ([xDtype, outDtype], ctx) => {
      const rng = new Rng(12);
      const rows = 9;
      const hidden = 13;
      const x = randomFloatTensor(rng, xDtype, [rows, hidden]);
      const indices = [8, 0, 4, -1, 9, 4, 2];
      const call: OpCall = {
        op: 'gather_rows',
        src: [x.tensor, i32Tensor([indices.length], indices)],
        dst: [poisoned(outDtype, [indices.length, hidden])],
      };
      if (!getDevice().supportsOp(call)) return ctx.skip();
      const [out] = getDevice().runOp(call);
      expectClose(decodeFloat(outDtype, out), ref.gatherRows(x.values, rows, hidden, Int32Array.from(indices)),
        tolerance([xDtype, outDtype]), 'gather_rows');
    });

    it('reads a [T, heads, headDim] tensor as rows of heads*headDim', () => {
      const rng = new Rng(13);
      const x = randomFloatTensor(rng, 'f32', [5, 3, 4]);
      const [out] = getDevice().runOp({
        op: 'gather_rows',
        src: [x.tensor, i32Tensor([2], [4, 1])],
        dst: [poisoned('f32', [2, 12])],
      });
      expectClose(decodeFloat('f32', out), ref.gatherRows(x.values, 5, 12, Int32Array.from([4, 1])), tolerance(['f32']), 'gather 3d');
    });
  });

  describe('silu_mul', () => {
    const shapes: [number, number][] = [[1, 1], [6, 13], [3, 100]];
    it.for(dtypePairs())('gate_up %s -> out %s', ([inDtype, outDtype], ctx) => {
      const rng = new Rng(14);
      for (const [rows, inter] of shapes) {
        const gateUp = randomFloatTensor(rng, inDtype, [rows, 2 * inter], 2);
        const call: OpCall = { op: 'silu_mul', src: [gateUp.tensor], dst: [poisoned(outDtype, [rows, inter])] };
        if (!getDevice().supportsOp(call)) return ctx.skip();
        const [out] = getDevice().runOp(call);
        expectClose(decodeFloat(outDtype, out), ref.siluMul(gateUp.values, rows, inter, outDtype),
          tolerance([inDtype, outDtype]), `silu_mul [${rows}, ${inter}]`);
      }
    });
  });
}
