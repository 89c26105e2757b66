/** fill_random: bit-exact against the reference formula in every float dtype, roughly N(0, std²). */
import { describe, expect, it } from 'vitest';
import type { NativeDevice, OpCall } from '../../../src/device/binding.ts';
import { decodeFloat, poisoned } from '../harness.ts';
import * as ref from '../reference.ts';
import { FLOAT_DTYPES } from '../reference.ts';

export function defineFillRandomTests(getDevice: () => NativeDevice): void {
  describe('fill_random', () => {
    it.for(FLOAT_DTYPES)('%s: matches the reference exactly (the same dummy weights on every backend)', (dtype, ctx) => {
      const shape = [37, 29];
      const seed = 1234567;
      const std = 0.02;
      const call: OpCall = { op: 'fill_random', params: { seed, std }, src: [], dst: [poisoned(dtype, shape)] };
      if (!getDevice().supportsOp(call)) return ctx.skip();
      const [out] = getDevice().runOp(call);
      const expected = ref.fillRandom(BigInt(seed), 37 * 29, std).map((v) => ref.roundTo(dtype, v));
      expect(Array.from(decodeFloat(dtype, out))).toEqual(Array.from(expected));
    });

    it('looks like N(0, std²), differs between seeds and is never all zeros', () => {
      const n = 20000;
      const std = 0.5;
      const draw = (seed: number): Float64Array =>
        decodeFloat('f32', getDevice().runOp({ op: 'fill_random', params: { seed, std }, src: [], dst: [poisoned('f32', [n])] })[0]);
      const a = draw(1);
      const b = draw(2);
      const mean = a.reduce((p, x) => p + x, 0) / n;
      const variance = a.reduce((p, x) => p + (x - mean) ** 2, 0) / n;
      expect(Math.abs(mean)).toBeLessThan(0.02);
      expect(Math.sqrt(variance)).toBeGreaterThan(std * 0.95);
      expect(Math.sqrt(variance)).toBeLessThan(std * 1.05);
      expect(a.filter((x) => x === 0).length).toBeLessThan(n / 1000);
      expect(a.filter((x, i) => x === b[i]).length).toBeLessThan(n / 100);
    });
  });
}
