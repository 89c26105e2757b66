/**
 * The FP8 E4M3 codec (kernels/ops.h UD_F8E4M3): the TypeScript reference's table and encoder
 * (reference.ts) checked against the format's definition, then the C++ codec of the CPU backend
 * (kernels/cpu/dtype_convert.h) checked against the reference on every code, every rounding midpoint
 * and its f32 neighbours, saturation, NaN and signed zero. The two implementations share no code.
 *
 * The C++ side is reached through rope_kv_write with rotary_dim 0, which copies k and v unrotated
 * into the cache: f32 values in, the cache's e4m3 bytes out, each value rounded exactly once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadNativeAddon, type NativeDevice, type OpCall } from '../../src/device/binding.ts';
import { f32Tensor, i32Tensor, poisoned } from './harness.ts';
import { decode, E4M3_MAX, E4M3_VALUES, encode, f8e4m3Bits, roundTo } from './reference.ts';

const NAN_CODES = [0x7f, 0xff];
const isFiniteCode = (code: number): boolean => !NAN_CODES.includes(code);
/** The non-negative finite codes, in increasing value: 0x00 .. 0x7e. */
const POSITIVE_CODES = Array.from({ length: 0x7f }, (_, code) => code);

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);
/** The f32 neighbour of a (finite, non-zero) f32 value, away from zero (+1) or towards it (-1). */
function f32Step(x: number, direction: 1 | -1): number {
  f32Scratch[0] = x;
  u32Scratch[0] = u32Scratch[0]! + direction;
  return f32Scratch[0]!;
}

/** The midpoint between each pair of neighbouring non-negative codes, with the pair. */
function positiveMidpoints(): { low: number; high: number; midpoint: number }[] {
  return POSITIVE_CODES.slice(0, -1).map((low) => ({ low, high: low + 1, midpoint: (E4M3_VALUES[low]! + E4M3_VALUES[low + 1]!) / 2 }));
}

describe('f8e4m3 reference codec (reference.ts)', () => {
  it('decodes known codes to their values', () => {
    const known: [number, number][] = [
      [0x00, 0], [0x01, 2 ** -9], [0x07, 7 * 2 ** -9], [0x08, 2 ** -6], [0x0f, 1.875 * 2 ** -6],
      [0x38, 1], [0x39, 1.125], [0x40, 2], [0x77, 240], [0x78, 256], [0x7e, 448],
      [0x81, -(2 ** -9)], [0xb8, -1], [0xfe, -448],
    ];
    for (const [code, value] of known) expect(E4M3_VALUES[code], `code 0x${code.toString(16)}`).toBe(value);
    expect(Object.is(E4M3_VALUES[0x80], -0)).toBe(true);
    for (const code of NAN_CODES) expect(E4M3_VALUES[code]).toBeNaN();
    expect(E4M3_MAX).toBe(448);
  });

  it('has 127 increasing non-negative values, negatives that mirror them, and no other NaN', () => {
    for (const code of POSITIVE_CODES.slice(1)) expect(E4M3_VALUES[code]!).toBeGreaterThan(E4M3_VALUES[code - 1]!);
    for (const code of POSITIVE_CODES) expect(E4M3_VALUES[code | 0x80]).toBe(-E4M3_VALUES[code]!);
    expect(E4M3_VALUES.filter(Number.isNaN)).toHaveLength(2);
    // Subnormals are evenly spaced by 2^-9 and continue into the first binade without a gap.
    for (let code = 1; code <= 0x10; code++) expect(E4M3_VALUES[code]! - E4M3_VALUES[code - 1]!).toBe(2 ** -9);
  });

  it('round-trips every finite code (both zeros included)', () => {
    for (let code = 0; code < 256; code++) {
      if (!isFiniteCode(code)) continue;
      expect(f8e4m3Bits(E4M3_VALUES[code]!), `code 0x${code.toString(16)}`).toBe(code);
    }
    const all = Uint8Array.from({ length: 256 }, (_, code) => code);
    const decoded = decode('f8e4m3', all);
    expect(Array.from(encode('f8e4m3', decoded)).filter((_, code) => isFiniteCode(code))).toEqual(Array.from(all).filter(isFiniteCode));
  });

  it('rounds midpoints to the even code and everything else to the nearest', () => {
    for (const { low, high, midpoint } of positiveMidpoints()) {
      const even = low % 2 === 0 ? low : high;
      expect(f8e4m3Bits(midpoint), `midpoint of 0x${low.toString(16)}, 0x${high.toString(16)}`).toBe(even);
      expect(f8e4m3Bits(-midpoint)).toBe(even | 0x80);
      expect(f8e4m3Bits(f32Step(midpoint, -1))).toBe(low);
      expect(f8e4m3Bits(f32Step(midpoint, 1))).toBe(high);
    }
    expect(f8e4m3Bits(2 ** -10)).toBe(0x00); // half the smallest subnormal: ties to the even zero
    expect(f8e4m3Bits(3 * 2 ** -10)).toBe(0x02); // between 0x01 and 0x02: ties to 0x02
    expect(f8e4m3Bits(1.0625)).toBe(0x38); // between 1 and 1.125: ties to 1 (mantissa 0)
    expect(f8e4m3Bits(1.1875)).toBe(0x3a); // between 1.125 and 1.25: ties to 1.25 (mantissa 2)
  });

  it('saturates beyond 448 (infinities too), maps NaN to 0x7f and keeps the sign of zero', () => {
    for (const x of [448, 449, 463.99, 464, 465, 480, 1e9, Number.MAX_VALUE, Infinity]) {
      expect(f8e4m3Bits(x), `${x}`).toBe(0x7e);
      expect(f8e4m3Bits(-x), `${-x}`).toBe(0xfe);
    }
    expect(f8e4m3Bits(NaN)).toBe(0x7f);
    expect(f8e4m3Bits(-0)).toBe(0x80);
    expect(f8e4m3Bits(-(2 ** -11))).toBe(0x80);
    expect(f8e4m3Bits(2 ** -11)).toBe(0x00);
    expect(roundTo('f8e4m3', 1000)).toBe(448);
    expect(roundTo('f8e4m3', 0.3)).toBe(0.3125); // 0.3 = 1.2 * 2^-2: nearest is 1.25 * 2^-2
  });
});

// ---------------------------------------------------------------------------------------------
// The C++ codec, through the CPU backend.

/** Everything worth rounding: codes, midpoints and their f32 neighbours, range ends, specials, randoms. */
function codecProbes(): number[] {
  const probes: number[] = [];
  for (let code = 0; code < 256; code++) if (isFiniteCode(code)) probes.push(E4M3_VALUES[code]!);
  for (const { midpoint } of positiveMidpoints()) {
    for (const x of [midpoint, f32Step(midpoint, -1), f32Step(midpoint, 1)]) probes.push(x, -x);
  }
  probes.push(448, 449, 464, f32Step(464, -1), f32Step(464, 1), 1e9, 3.4e38, Infinity, -Infinity, NaN, -NaN, 0, -0);
  probes.push(2 ** -10, f32Step(2 ** -10, -1), f32Step(2 ** -10, 1), 2 ** -11, 2 ** -126, 2 ** -149, -(2 ** -149));
  // Pseudo-random f32 values spread over every binade from 2^-12 to 2^10, both signs.
  let state = 12345;
  for (let i = 0; i < 4000; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    const exponent = (state % 23) - 12;
    const mantissa = 1 + ((state >>> 8) % 4096) / 4096;
    probes.push((state & 1 ? -1 : 1) * mantissa * 2 ** exponent);
  }
  return probes.map(Math.fround);
}

/** The cache bytes the CPU backend's rope_kv_write stores for `values` (k) and their negations (v). */
function cppEncode(device: NativeDevice, values: number[]): { k: Uint8Array; v: Uint8Array } {
  const headDim = 64;
  const numTokens = Math.ceil(values.length / headDim);
  const padded = [...values, ...new Array<number>(numTokens * headDim - values.length).fill(1)];
  const qkv = new Float32Array(numTokens * 3 * headDim); // [numTokens, q + k + v heads, headDim]
  for (let t = 0; t < numTokens; t++) {
    const row = padded.slice(t * headDim, (t + 1) * headDim);
    qkv.set(row, (t * 3 + 1) * headDim);
    qkv.set(row.map((x) => -x), (t * 3 + 2) * headDim);
  }
  const cacheShape = [numTokens, 1, 1, headDim]; // one slot per token: slot t holds token t
  const call: OpCall = {
    op: 'rope_kv_write',
    params: { num_heads: 1, num_kv_heads: 1, head_dim: headDim, rotary_dim: 0 },
    src: [
      f32Tensor([numTokens, 3, headDim], qkv), i32Tensor([numTokens], new Array<number>(numTokens).fill(0)),
      f32Tensor([0], []), i32Tensor([numTokens], Array.from({ length: numTokens }, (_, t) => t)),
    ],
    dst: [poisoned('f32', [numTokens, 1, headDim]), poisoned('f8e4m3', cacheShape), poisoned('f8e4m3', cacheShape)],
  };
  const [, k, v] = device.runOp(call);
  if (!(k instanceof Uint8Array) || !(v instanceof Uint8Array)) throw new Error('expected Uint8Array caches');
  return { k: k.subarray(0, values.length), v: v.subarray(0, values.length) };
}

/** Indices where the C++ bytes differ from the reference's, with both, for the failure message. */
function mismatches(inputs: number[], actual: Uint8Array): string[] {
  const hex = (b: number): string => `0x${b.toString(16).padStart(2, '0')}`;
  return inputs.flatMap((x, i) => {
    const expected = f8e4m3Bits(x);
    return actual[i] === expected ? [] : [`${x}: C++ ${hex(actual[i]!)}, reference ${hex(expected)}`];
  });
}

describe('f8e4m3 C++ codec (cpu backend) against the reference', () => {
  let device: NativeDevice | undefined;
  beforeAll(() => {
    device = loadNativeAddon().openDevice('cpu');
  });
  afterAll(() => device?.close());

  it('stores every probe as the reference rounds it (k: the value, v: its negation)', () => {
    const probes = codecProbes();
    const { k, v } = cppEncode(device!, probes);
    expect(mismatches(probes, k).slice(0, 10)).toEqual([]);
    expect(mismatches(probes.map((x) => -x), v).slice(0, 10)).toEqual([]);
  });

  it('reads every finite code back exactly (attention over one position returns v)', () => {
    // Attention with one cached position has softmax weight exactly 1: out = v, an exact f32 widening.
    const codes = Uint8Array.from({ length: 256 }, (_, code) => code).filter(isFiniteCode);
    const headDim = codes.length;
    const cache = { dtype: 'f8e4m3' as const, shape: [1, 1, 1, headDim], data: codes };
    const call: OpCall = {
      op: 'attention',
      params: { scale: 1, num_heads: 1, num_kv_heads: 1, head_dim: headDim, block_size: 1 },
      src: [f32Tensor([1, 1, headDim], new Array<number>(headDim).fill(0.5)), cache, cache, i32Tensor([1, 1], [0]), i32Tensor([1], [1]), i32Tensor([2], [0, 1])],
      dst: [poisoned('f32', [1, headDim])],
    };
    const out = Array.from(device!.runOp(call)[0] as Float32Array);
    const expected = Array.from(codes, (code) => E4M3_VALUES[code]!);
    expect(out.map((x, i) => (x === expected[i] ? 'ok' : `code 0x${codes[i]!.toString(16)}: ${x}, expected ${expected[i]}`)).filter((s) => s !== 'ok')).toEqual([]);
  });
});
