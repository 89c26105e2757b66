/**
 * Shared pieces of the device tests: a seeded PRNG, random operands (never zeros), poisoned outputs,
 * the tolerance table, and a closeness check whose failure message points at the worst element.
 */
import { expect } from 'vitest';
import type { NativeDevice, OpCall, OpTensor } from '../../src/device/binding.ts';
import type { DType, HostArray } from '../../src/device/program.ts';
import { decode, encode, type FloatDType, type KvDType } from './reference.ts';

// ---------------------------------------------------------------------------------------------
// Seeded randomness (mulberry32), so every run sees the same data and a failure reproduces; each
// test picks its own seed.

export class Rng {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0 || 0x9e3779b9;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [lo, hi). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo));
  }
  /** Standard normal, never exactly zero. */
  normal(): number {
    for (;;) {
      const u = this.next() || 1e-12;
      const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
      if (z !== 0) return z;
    }
  }
  normals(n: number, std = 1): number[] {
    return Array.from({ length: n }, () => this.normal() * std);
  }
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(0, i + 1);
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  }
}

// ---------------------------------------------------------------------------------------------
// Tolerances, in one place. An element passes when |actual - expected| <= atol + rtol * |expected|.
// The loosest float dtype an op touches (inputs, intermediates it rounds to, its output) decides.
// For f32 the absolute part grows with the square root of the length of the sums behind each
// element (rounding error of an f32 accumulation); for 16-bit dtypes the final rounding dominates.
//
// GPUs (cuda) are held to the same table: a bf16 result may differ from the exact value by about two
// bf16 ulps (2^-7 relative each: one rounding of an f32 intermediate that lands on the other side of a
// tie, one of the output), which rtol = atol = 1.6e-2 covers; f16 likewise with 2e-3. f32 operands
// are f32 arithmetic (f32 accumulation in any order), not TF32 or bf16 tensor-core math: a kernel that
// computes f32 operands in reduced precision must say it does not support them (supportsOp).

export interface Tolerance {
  rtol: number;
  atol: number;
}

const BASE_TOLERANCE: Record<FloatDType, Tolerance> = {
  f32: { rtol: 1e-5, atol: 1e-5 },
  f16: { rtol: 2e-3, atol: 2e-3 },
  bf16: { rtol: 1.6e-2, atol: 1.6e-2 },
};

export function tolerance(dtypes: readonly FloatDType[], accumulationLength = 1): Tolerance {
  const order: FloatDType[] = ['f32', 'f16', 'bf16'];
  const loosest = dtypes.reduce((a, b) => (order.indexOf(b) > order.indexOf(a) ? b : a), 'f32' as FloatDType);
  const base = BASE_TOLERANCE[loosest];
  const growth = loosest === 'f32' ? Math.sqrt(Math.max(1, accumulationLength)) : 1;
  return { rtol: base.rtol, atol: base.atol * growth };
}

/** Fails with the worst element's index and values; NaN (a poisoned, unwritten output) always fails. */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance, label: string): void {
  expect(actual.length, `${label}: length`).toBe(expected.length);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    const limit = tol.atol + tol.rtol * Math.abs(e);
    const excess = Number.isNaN(a) || Number.isNaN(e) ? Infinity : Math.abs(a - e) / limit;
    if (excess > 1 && excess > worstExcess) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    expect.fail(
      `${label}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} ` +
        `(rtol ${tol.rtol}, atol ${tol.atol}; ${worstExcess.toFixed(1)}x over)`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// FP8 E4M3 KV cache (docs/design/fp8-kv-cache.md): the backends that must store one, and those that
// must refuse it (supportsOp false, runOp an UD_ERR_UNSUPPORTED error). Unlisted backends: no claim.

const FP8_KV_CACHE_BACKENDS: Record<string, boolean> = { cpu: true, cuda: true, ascend: false, 'ascend-sim': false };

/** Whether `backend` must accept an f8e4m3 KV cache; undefined when the design says nothing of it. */
export function mustSupportFp8KvCache(backend: string): boolean | undefined {
  return FP8_KV_CACHE_BACKENDS[backend];
}

/**
 * An f8e4m3 case that `device` ran nothing of: done (passed) on a backend the design rules FP8 out for,
 * since refusing is what it must do (the contract cases check how); skipped on any other backend.
 */
export function skipUnlessFp8RefusedByDesign(device: NativeDevice, ctx: { skip: () => void }): void {
  if (mustSupportFp8KvCache(device.info().backend) !== false) ctx.skip();
}

const UNSUPPORTED = expect.objectContaining({ code: 'UD_ERR_UNSUPPORTED' });

/** supportsOp says no and runOp throws UD_ERR_UNSUPPORTED (a clean refusal, not a crash). */
export function expectRefused(device: NativeDevice, call: OpCall, label: string): void {
  expect(device.supportsOp(call), label).toBe(false);
  expect(() => device.runOp(call), label).toThrow(UNSUPPORTED);
}

/**
 * One op's FP8 KV cache contract on `device`: the `refused` calls (f8e4m3 outside the cache, k and v of
 * two dtypes) are refused cleanly on every backend; `fp8Cache` is supported where the design requires
 * it and refused cleanly where it rules it out, after which the device still runs `noFp8`.
 */
export function expectFp8KvCacheContract(device: NativeDevice, refused: [string, OpCall][], fp8Cache: OpCall, noFp8: OpCall): void {
  for (const [label, call] of refused) expectRefused(device, call, label);
  const must = mustSupportFp8KvCache(device.info().backend);
  if (must === undefined) return;
  expect(device.supportsOp(fp8Cache), 'an f8e4m3 cache').toBe(must);
  if (must) return;
  expectRefused(device, fp8Cache, 'an f8e4m3 cache');
  const out = noFp8.dst[0]!;
  expect(decodeFloat(out.dtype, device.runOp(noFp8)[0]).every(Number.isFinite), 'the device works after a refusal').toBe(true);
}

/** Normal values (never zero) with a few outliers of either sign up to `outlierMax`. */
export function normalsWithOutliers(rng: Rng, n: number, outlierRate: number, outlierMin: number, outlierMax: number): number[] {
  return Array.from({ length: n }, () =>
    rng.next() < outlierRate ? (rng.next() < 0.5 ? -1 : 1) * (outlierMin + (outlierMax - outlierMin) * rng.next()) : rng.normal(),
  );
}

// ---------------------------------------------------------------------------------------------
// Operands

/** A float operand (or an f8e4m3 KV cache): its device encoding and the decoded values the reference uses. */
export interface FloatTensor {
  tensor: OpTensor;
  values: Float64Array;
}

export function floatTensor(dtype: KvDType, shape: number[], values: ArrayLike<number>): FloatTensor {
  const data = encode(dtype, values);
  return { tensor: { dtype, shape, data }, values: decode(dtype, data) };
}

export function randomFloatTensor(rng: Rng, dtype: KvDType, shape: number[], std = 1): FloatTensor {
  return floatTensor(dtype, shape, rng.normals(shape.reduce((a, b) => a * b, 1), std));
}

export function i32Tensor(shape: number[], values: ArrayLike<number>): OpTensor {
  return { dtype: 'i32', shape, data: Int32Array.from(values) };
}

export function f32Tensor(shape: number[], values: ArrayLike<number>): OpTensor {
  return { dtype: 'f32', shape, data: Float32Array.from(values) };
}

const POISON_I32 = -0x5eed;

/** An output pre-filled with NaN (i32: a sentinel) so an op that skips a write is caught. */
export function poisoned(dtype: DType, shape: number[]): OpTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  let data: HostArray;
  switch (dtype) {
    case 'f32': data = new Float32Array(n).fill(NaN); break;
    case 'bf16': data = new Uint16Array(n).fill(0x7fc0); break;
    case 'f16': data = new Uint16Array(n).fill(0x7e00); break;
    case 'i32': data = new Int32Array(n).fill(POISON_I32); break;
    case 'u32': data = new Uint32Array(n).fill(0xdeadbeef); break;
    case 'u64': data = new BigUint64Array(n).fill(0xdeadbeefn); break;
    case 'f8e4m3': data = new Uint8Array(n).fill(0x7f); break; // NaN
  }
  return { dtype, shape, data };
}

export function decodeFloat(dtype: DType, data: HostArray | null | undefined): Float64Array {
  if (!data) throw new Error('missing output');
  if (dtype !== 'f32' && dtype !== 'bf16' && dtype !== 'f16' && dtype !== 'f8e4m3') throw new Error(`${dtype} is not a float dtype`);
  return decode(dtype, data);
}

export function asInt32(data: HostArray | null | undefined): Int32Array {
  if (!(data instanceof Int32Array)) throw new Error('expected an Int32Array output');
  return data;
}

export function asFloat32(data: HostArray | null | undefined): Float32Array {
  if (!(data instanceof Float32Array)) throw new Error('expected a Float32Array output');
  return data;
}

/** Every ordered pair of float dtypes, for dtype-combination loops. */
export function dtypePairs(): [FloatDType, FloatDType][] {
  const all: FloatDType[] = ['f32', 'bf16', 'f16'];
  return all.flatMap((a) => all.map((b) => [a, b] as [FloatDType, FloatDType]));
}

/**
 * Two backends' results are each within `tol` of the exact value, hence within twice it of each other.
 */
export function betweenBackends(tol: Tolerance): Tolerance {
  return { rtol: 2 * tol.rtol, atol: 2 * tol.atol };
}

// ---------------------------------------------------------------------------------------------
// Kernel variants (ops.h `variant`, matmul and attention): 0 = the backend's choice, k > 0 = the k-th
// kernel of its ladder. A backend without that variant says so through supportsOp.

/** No backend has this many kernels for one op: a backend that accepts it ignores `variant`. */
const NONSENSE_VARIANT = 1 << 20;
const MAX_VARIANT = 16;

export function withVariant(call: OpCall, variant: number): OpCall {
  return { ...call, params: { ...call.params, variant } };
}

/**
 * The variants to run `call` with: 0, then every k in 1..16 the backend supports for these dtypes and
 * this shape. A backend that ignores `variant` (it accepts a nonsense one, like cpu) has only 0.
 */
export function variantsOf(device: NativeDevice, call: OpCall): number[] {
  if (device.supportsOp(withVariant(call, NONSENSE_VARIANT))) return [0];
  const variants = [0];
  for (let v = 1; v <= MAX_VARIANT; v++) if (device.supportsOp(withVariant(call, v))) variants.push(v);
  return variants;
}
