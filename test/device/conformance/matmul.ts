/**
 * matmul: y = x · Wᵀ (+ bias) for every dtype combination, tails in every dimension, through every
 * kernel variant the backend has (ops.h `variant`), plus shapes at GPU tile sizes.
 */
import { describe, expect, it } from 'vitest';
import type { NativeDevice, OpCall } from '../../../src/device/binding.ts';
import { decodeFloat, expectClose, poisoned, randomFloatTensor, Rng, tolerance, variantsOf, withVariant } from '../harness.ts';
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

// [M, K, N] around the tiles of GPU kernels (64/128-row tiles, 64-deep K steps, split-K decode):
// a long-K decode row, a few rows, N past 1024, M and N one past a 128 tile, exact tiles, and a K
// that is not a multiple of 8 (no 16-byte rows); and M between 8 and 16, where the CUDA decode GEMV
// (v5) fills its second 8-row MMA column only in part, at a short and a long K. The last two: few
// output tiles and a long K, where a library GEMM splits K (cuBLAS summed those partials in 16 bits
// until its math mode forbade it: bench/NOTES.md runs 29–31); no bias (even M), so CUDA's variant 9 runs them.
const TILE_SHAPES: [number, number, number][] = [
  [1, 4096, 96],
  [4, 1536, 200],
  [16, 512, 1030],
  [11, 776, 300],
  [13, 6400, 136],
  [129, 264, 257],
  [256, 256, 256],
  [65, 1003, 130],
  [40, 1032, 300],
  [128, 2056, 260],
];
// The combinations models use (bf16 and f16 activations, f32 logits) and plain f32.
const TILE_COMBOS: [FloatDType, FloatDType, FloatDType][] = [
  ['bf16', 'bf16', 'bf16'],
  ['bf16', 'bf16', 'f32'],
  ['f16', 'f16', 'f16'],
  ['f32', 'f32', 'f32'],
  ['f32', 'bf16', 'f32'],
];

function runVariants(device: NativeDevice, call: OpCall, expected: ArrayLike<number>, dtypes: FloatDType[], k: number, label: string): void {
  const yDtype = call.dst[0]!.dtype;
  for (const variant of variantsOf(device, call)) {
    const [y] = device.runOp(withVariant(call, variant));
    expectClose(decodeFloat(yDtype, y), expected, tolerance(dtypes, k), `${label} (variant ${variant})`);
  }
}

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
          const expected = ref.matmul(x.values, w.values, bias ? bias.values : null, m, n, k);
          runVariants(getDevice(), call, expected, [xDtype, wDtype, yDtype], k,
            `matmul [${m}, ${k}] x [${n}, ${k}]${withBias ? ' + bias' : ''}`);
        }
      }
    });

    it.for(TILE_COMBOS)('x %s, W %s -> y %s at GPU tile sizes, every variant', ([xDtype, wDtype, yDtype], ctx) => {
      const rng = new Rng(23);
      for (const [m, k, n] of TILE_SHAPES) {
        const withBias = m % 2 === 1;
        const x = randomFloatTensor(rng, xDtype, [m, k]);
        const w = randomFloatTensor(rng, wDtype, [n, k]);
        const bias = withBias ? randomFloatTensor(rng, wDtype, [n]) : null;
        const call: OpCall = { op: 'matmul', src: [x.tensor, w.tensor, bias ? bias.tensor : null], dst: [poisoned(yDtype, [m, n])] };
        if (!getDevice().supportsOp(call)) return ctx.skip();
        const expected = ref.matmul(x.values, w.values, bias ? bias.values : null, m, n, k);
        runVariants(getDevice(), call, expected, [xDtype, wDtype, yDtype], k, `matmul [${m}, ${k}] x [${n}, ${k}]${withBias ? ' + bias' : ''}`);
      }
    });

    // More output tiles than a GPU has multiprocessors (280 tiles of 128 × 128 on CUDA), with tails in M
    // and N: a persistent grid (CUDA variant 6) walks several tiles per CTA, its operand pipeline
    // running on across tile boundaries.
    it.for([['bf16', 'bf16', 'bf16'], ['bf16', 'bf16', 'f32']] as [FloatDType, FloatDType, FloatDType][])(
      'x %s, W %s -> y %s with more tiles than multiprocessors, every variant',
      ([xDtype, wDtype, yDtype], ctx) => {
        const rng = new Rng(25);
        const [m, k, n] = [1200, 72, 3500];
        const x = randomFloatTensor(rng, xDtype, [m, k]);
        const w = randomFloatTensor(rng, wDtype, [n, k]);
        const bias = randomFloatTensor(rng, wDtype, [n]);
        const call: OpCall = { op: 'matmul', src: [x.tensor, w.tensor, bias.tensor], dst: [poisoned(yDtype, [m, n])] };
        if (!getDevice().supportsOp(call)) return ctx.skip();
        const expected = ref.matmul(x.values, w.values, bias.values, m, n, k);
        runVariants(getDevice(), call, expected, [xDtype, wDtype, yDtype], k, `matmul [${m}, ${k}] x [${n}, ${k}] + bias`);
      },
    );

    it('has variant 0 (the backend picks) and refuses variants it lacks', () => {
      const rng = new Rng(24);
      const call: OpCall = {
        op: 'matmul',
        src: [randomFloatTensor(rng, 'f32', [2, 8]).tensor, randomFloatTensor(rng, 'f32', [3, 8]).tensor, null],
        dst: [poisoned('f32', [2, 3])],
      };
      expect(getDevice().supportsOp(withVariant(call, 0))).toBe(true);
      const variants = variantsOf(getDevice(), call);
      expect(variants[0]).toBe(0);
      if (variants.length > 1) expect(getDevice().supportsOp(withVariant(call, 1 << 20))).toBe(false);
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
