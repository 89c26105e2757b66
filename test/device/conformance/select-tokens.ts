/** select_tokens: token ids taken from the previous step's samples on the device (async scheduling). */
import { describe, expect, it } from 'vitest';
import type { NativeDevice } from '../../../src/device/binding.ts';
import { asInt32, i32Tensor } from '../harness.ts';
import * as ref from '../reference.ts';

export function defineSelectTokensTests(getDevice: () => NativeDevice): void {
  describe('select_tokens', () => {
    const ids = Int32Array.from([11, 12, 13, 14, 15, 16, 17]);
    const sources = Int32Array.from([-1, 2, -1, 0, 4, -1, 1]);
    const table = Int32Array.from([901, 902, 903, 904, 905]);

    it('takes table entries where a source is given, the host id elsewhere; rows past the ids stay', () => {
      const untouched = -777;
      const [out] = getDevice().runOp({
        op: 'select_tokens',
        src: [i32Tensor([7], ids), i32Tensor([7], sources), i32Tensor([5], table)],
        dst: [{ dtype: 'i32', shape: [9], data: new Int32Array(9).fill(untouched) }],
      });
      const got = asInt32(out);
      expect(Array.from(got.subarray(0, 7))).toEqual(Array.from(ref.selectTokens(ids, sources, table)));
      expect(Array.from(got.subarray(0, 7))).toEqual([11, 903, 13, 901, 905, 16, 902]);
      expect(Array.from(got.subarray(7))).toEqual([untouched, untouched]);
    });

    it('without sources, copies the ids into a larger buffer', () => {
      const [out] = getDevice().runOp({
        op: 'select_tokens',
        src: [i32Tensor([5], table), null, null],
        dst: [{ dtype: 'i32', shape: [8], data: new Int32Array(8).fill(-1) }],
      });
      expect(Array.from(asInt32(out))).toEqual([901, 902, 903, 904, 905, -1, -1, -1]);
    });

    it('rejects a source outside the table', () => {
      expect(() =>
        getDevice().runOp({
          op: 'select_tokens',
          src: [i32Tensor([2], [1, 2]), i32Tensor([2], [0, 5]), i32Tensor([5], table)],
          dst: [{ dtype: 'i32', shape: [2] }],
        }),
      ).toThrow(/select_tokens: row 1 takes sample 5 of a table with 5/);
    });
  });
}
