/**
 * A naive, independent TypeScript reference of every op in kernels/ops.h, written from the header's
 * text (not from the C++ kernels). Arithmetic is f64 except where ops.h pins an f32 step (RoPE angle,
 * temperature scaling, FILL_RANDOM) or a rounding to a tensor's dtype (RMSNorm, SiLU).
 *
 * Tensors here are plain f64 arrays of decoded values, row-major, outermost dim first.
 */
import type { HostArray } from '../../src/device/program.ts';

export type FloatDType = 'f32' | 'f16' | 'bf16';
export const FLOAT_DTYPES: readonly FloatDType[] = ['f32', 'bf16', 'f16'];
/** What a KV cache may hold: a float dtype, or FP8 E4M3 (storage only: no op computes in it). */
export type KvDType = FloatDType | 'f8e4m3';

// ---------------------------------------------------------------------------------------------
// dtype codecs. f16 goes through V8's Float16Array, bf16 through bit arithmetic (round to nearest
// even), f8e4m3 through a table of its 256 values and a search for the nearest, so none shares code
// with kernels/cpu/dtype_convert.h.

interface Float16ArrayLike {
  [index: number]: number;
  readonly buffer: ArrayBufferLike;
  readonly length: number;
}
type Float16ArrayCtor = new (lengthOrBuffer: number | ArrayBufferLike) => Float16ArrayLike;
const Float16 = (globalThis as unknown as { Float16Array?: Float16ArrayCtor }).Float16Array;
function float16Ctor(): Float16ArrayCtor {
  if (!Float16) throw new Error('the reference needs Float16Array (Node 24+)');
  return Float16;
}

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

export function f32ToBf16Bits(x: number): number {
  scratchF32[0] = x;
  const u = scratchU32[0]!;
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x40) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

export function bf16BitsToNumber(bits: number): number {
  scratchU32[0] = (bits & 0xffff) << 16;
  return scratchF32[0]!;
}

/**
 * FP8 E4M3 (OCP e4m3fn) code -> value, from the format's definition: sign, 4 exponent bits (bias 7),
 * 3 mantissa bits; exponent 0 is subnormal (m * 2^-9); 0x7f and 0xff are NaN; no infinities.
 */
function e4m3Value(code: number): number {
  const sign = code & 0x80 ? -1 : 1;
  const exponent = (code >> 3) & 0xf;
  const mantissa = code & 0x7;
  if ((code & 0x7f) === 0x7f) return NaN;
  if (exponent === 0) return sign * mantissa * 2 ** -9;
  return sign * (1 + mantissa / 8) * 2 ** (exponent - 7);
}

/** Every code's value, index = code. */
export const E4M3_VALUES: readonly number[] = Array.from({ length: 256 }, (_, code) => e4m3Value(code));
/** The largest finite e4m3 value (code 0x7e), where encoding saturates. */
export const E4M3_MAX = 448;
const E4M3_MAX_CODE = 0x7e;

/**
 * x -> the nearest e4m3 code, ties to the even code (even mantissa), saturating to +-448 beyond the
 * range (infinities included); NaN -> 0x7f; the sign survives rounding to zero. Codes 0..0x7e hold the
 * non-negative values in increasing order, so the search is over that table.
 */
export function f8e4m3Bits(x: number): number {
  if (Number.isNaN(x)) return 0x7f;
  const sign = x < 0 || Object.is(x, -0) ? 0x80 : 0;
  const magnitude = Math.abs(x);
  if (magnitude >= E4M3_MAX) return sign | E4M3_MAX_CODE;
  // Bisect for the largest code whose value is <= magnitude: values[below] <= magnitude < values[above].
  let below = 0;
  let above = E4M3_MAX_CODE;
  while (above - below > 1) {
    const middle = (below + above) >> 1;
    if (E4M3_VALUES[middle]! <= magnitude) below = middle;
    else above = middle;
  }
  const midpoint = (E4M3_VALUES[below]! + E4M3_VALUES[above]!) / 2; // exact: short dyadic rationals
  const nearest = magnitude < midpoint ? below : magnitude > midpoint ? above : below % 2 === 0 ? below : above;
  return sign | nearest;
}

export function encode(dtype: FloatDType, values: ArrayLike<number>): Float32Array | Uint16Array;
export function encode(dtype: KvDType, values: ArrayLike<number>): Float32Array | Uint16Array | Uint8Array;
export function encode(dtype: KvDType, values: ArrayLike<number>): Float32Array | Uint16Array | Uint8Array {
  if (dtype === 'f32') return Float32Array.from(values);
  if (dtype === 'bf16') return Uint16Array.from(values, (v) => f32ToBf16Bits(v));
  if (dtype === 'f8e4m3') {
    const codes = new Uint8Array(values.length); // a plain loop: caches run to millions of values
    for (let i = 0; i < values.length; i++) codes[i] = f8e4m3Bits(values[i]!);
    return codes;
  }
  const half = new (float16Ctor())(values.length);
  for (let i = 0; i < values.length; i++) half[i] = values[i]!;
  return new Uint16Array(half.buffer);
}

export function decode(dtype: KvDType, data: HostArray): Float64Array {
  if (dtype === 'f32') {
    if (!(data instanceof Float32Array)) throw new Error('f32 data must be a Float32Array');
    return Float64Array.from(data);
  }
  if (dtype === 'f8e4m3') {
    if (!(data instanceof Uint8Array)) throw new Error('f8e4m3 data must be a Uint8Array');
    const values = new Float64Array(data.length);
    for (let i = 0; i < data.length; i++) values[i] = E4M3_VALUES[data[i]!]!;
    return values;
  }
  if (!(data instanceof Uint16Array)) throw new Error(`${dtype} data must be a Uint16Array`);
  if (dtype === 'bf16') return Float64Array.from(data, (b) => bf16BitsToNumber(b));
  const half = new (float16Ctor())(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  return Float64Array.from({ length: data.length }, (_, i) => half[i]!);
}

/** The value a tensor of `dtype` would hold for x. */
export function roundTo(dtype: KvDType, x: number): number {
  return decode(dtype, encode(dtype, [x]))[0]!;
}

// ---------------------------------------------------------------------------------------------
// Counter-based RNG of ops.h, in BigInt.

const MASK64 = (1n << 64n) - 1n;

export function mix64(z: bigint): bigint {
  z = (z + 0x9e3779b97f4a7c15n) & MASK64;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

/** ud_uniform(seed, counter): 24 random bits in [0, 1). */
export function udUniform(seed: bigint, counter: number): number {
  const r = mix64((seed & MASK64) ^ mix64(BigInt(counter >>> 0)));
  return Number(r >> 40n) / 16777216;
}

// ---------------------------------------------------------------------------------------------
// Ops

/** out[t] = table[ids[t]] or zeros when the id is outside [0, vocab). */
export function embedding(table: Float64Array, vocab: number, hidden: number, ids: Int32Array): Float64Array {
  const out = new Float64Array(ids.length * hidden);
  ids.forEach((id, t) => {
    if (id >= 0 && id < vocab) out.set(table.subarray(id * hidden, (id + 1) * hidden), t * hidden);
  });
  return out;
}

/** y[m, n] = Σ_k x[m, k] W[n, k] (+ bias[n]). */
export function matmul(x: Float64Array, w: Float64Array, bias: Float64Array | null, m: number, n: number, k: number): Float64Array {
  const y = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = bias ? bias[j]! : 0;
      for (let kk = 0; kk < k; kk++) s += x[i * k + kk]! * w[j * k + kk]!;
      y[i * n + j] = s;
    }
  }
  return y;
}

export interface RmsNormArgs {
  x: Float64Array; // [M, H]
  residual: Float64Array | null; // [M, H]
  weight: Float64Array; // [H]
  eps: number;
  addResidual: boolean;
  xDtype: FloatDType;
  /** dtype of dst1 (the residual out), which the sum is rounded to. */
  residualDtype: FloatDType;
}

/** HF Llama order: normalise in high precision, round to the input dtype, multiply by the weight. */
export function rmsnorm(a: RmsNormArgs): { out: Float64Array; residualOut: Float64Array } {
  const hidden = a.weight.length;
  const rows = a.x.length / hidden;
  const out = new Float64Array(a.x.length);
  const residualOut = new Float64Array(a.x.length);
  const eps = Math.fround(a.eps);
  for (let r = 0; r < rows; r++) {
    const base = new Float64Array(hidden);
    for (let i = 0; i < hidden; i++) {
      const x = a.x[r * hidden + i]!;
      base[i] = a.addResidual ? roundTo(a.residualDtype, x + a.residual![r * hidden + i]!) : x;
    }
    residualOut.set(base, r * hidden);
    let meanSquare = 0;
    for (const v of base) meanSquare += v * v;
    meanSquare /= hidden;
    const inv = 1 / Math.sqrt(meanSquare + eps);
    const normDtype = a.addResidual ? a.residualDtype : a.xDtype;
    for (let i = 0; i < hidden; i++) out[r * hidden + i] = roundTo(normDtype, base[i]! * inv) * a.weight[i]!;
  }
  return { out, residualOut };
}

export interface RopeArgs {
  qkv: Float64Array; // [T, H + 2KV, D]
  positions: Int32Array; // [T]
  invFreq: Float32Array; // [R/2]
  slotMapping: Int32Array; // [T]
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rotaryDim: number;
  kCache: Float64Array; // [numSlots, KV, D], updated in place
  vCache: Float64Array; // [numSlots, KV, D], updated in place
}

/** Rotate-half RoPE on q and k; k and v written to cache row slotMapping[t] unless -1. Returns q_out. */
export function ropeKvWrite(a: RopeArgs): Float64Array {
  const { numHeads: H, numKvHeads: KV, headDim: D, rotaryDim: R } = a;
  const T = a.positions.length;
  const half = R / 2;
  const rowLen = (H + 2 * KV) * D;
  const qOut = new Float64Array(T * H * D);
  for (let t = 0; t < T; t++) {
    const cos: number[] = [];
    const sin: number[] = [];
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(Math.fround(a.positions[t]!) * a.invFreq[i]!); // f32, as PyTorch
      cos.push(Math.cos(angle));
      sin.push(Math.sin(angle));
    }
    const head = (h: number): Float64Array => {
      const v = a.qkv.slice(t * rowLen + h * D, t * rowLen + (h + 1) * D);
      if (h >= H + KV) return v; // v heads are not rotated
      const out = Float64Array.from(v);
      for (let i = 0; i < half; i++) {
        out[i] = v[i]! * cos[i]! - v[i + half]! * sin[i]!;
        out[i + half] = v[i + half]! * cos[i]! + v[i]! * sin[i]!;
      }
      return out;
    };
    for (let h = 0; h < H; h++) qOut.set(head(h), (t * H + h) * D);
    const slot = a.slotMapping[t]!;
    if (slot < 0) continue;
    for (let g = 0; g < KV; g++) {
      a.kCache.set(head(H + g), (slot * KV + g) * D);
      a.vCache.set(head(H + KV + g), (slot * KV + g) * D);
    }
  }
  return qOut;
}

export interface AttentionArgs {
  q: Float64Array; // [T, H, D]
  kCache: Float64Array; // [numBlocks, blockSize, KV, D]
  vCache: Float64Array;
  blockTables: Int32Array; // [S, maxBlocks]
  maxBlocksPerSeq: number;
  seqLens: Int32Array; // [S]
  queryStartLoc: Int32Array; // [S + 1]
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  blockSize: number;
  scale: number;
  /** Initial contents of out (rows no sequence owns stay as they are). */
  out: Float64Array; // [T, H * D]
}

/** Causal paged attention with GQA, softmax in f64. Returns out (a copy). */
export function attention(a: AttentionArgs): Float64Array {
  const { numHeads: H, numKvHeads: KV, headDim: D, blockSize: B } = a;
  const out = Float64Array.from(a.out);
  const group = H / KV;
  const scale = Math.fround(a.scale);
  for (let s = 0; s < a.seqLens.length; s++) {
    const seqLen = a.seqLens[s]!;
    if (seqLen === 0) continue;
    const start = a.queryStartLoc[s]!;
    const queryLen = a.queryStartLoc[s + 1]! - start;
    for (let j = 0; j < queryLen; j++) {
      const t = start + j;
      const position = seqLen - queryLen + j;
      for (let h = 0; h < H; h++) {
        const kvHead = Math.floor(h / group);
        const scores: number[] = [];
        const rows: number[] = [];
        for (let c = 0; c <= position; c++) {
          const block = a.blockTables[s * a.maxBlocksPerSeq + Math.floor(c / B)]!;
          if (block < 0) continue;
          const row = ((block * B + (c % B)) * KV + kvHead) * D;
          let dot = 0;
          for (let d = 0; d < D; d++) dot += a.q[(t * H + h) * D + d]! * a.kCache[row + d]!;
          scores.push(dot * scale);
          rows.push(row);
        }
        const max = Math.max(...scores);
        const weights = scores.map((x) => Math.exp(x - max));
        const sum = weights.reduce((p, x) => p + x, 0);
        for (let d = 0; d < D; d++) {
          let acc = 0;
          weights.forEach((w, i) => (acc += w * a.vCache[rows[i]! + d]!));
          out[t * H * D + h * D + d] = rows.length ? acc / sum : 0;
        }
      }
    }
  }
  return out;
}

/** out[m, i] = round(silu(gate)) * up, gate/up the halves of each row. */
export function siluMul(gateUp: Float64Array, rows: number, inter: number, outDtype: FloatDType): Float64Array {
  const out = new Float64Array(rows * inter);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < inter; i++) {
      const g = gateUp[r * 2 * inter + i]!;
      out[r * inter + i] = roundTo(outDtype, g / (1 + Math.exp(-g))) * gateUp[r * 2 * inter + inter + i]!;
    }
  }
  return out;
}

/** dst[i] = x[indices[i]], zeros for indices outside [0, rows). */
export function gatherRows(x: Float64Array, rows: number, hidden: number, indices: Int32Array): Float64Array {
  return embedding(x, rows, hidden, indices);
}

/** FILL_RANDOM's value at linear index i, exactly (all steps are exactly rounded f32 operations). */
export function fillRandomValue(seed: bigint, index: number, std: number): number {
  const r = mix64((seed & MASK64) ^ mix64(BigInt(index)));
  const sum = Number(r & 0xffffn) + Number((r >> 16n) & 0xffffn) + Number((r >> 32n) & 0xffffn) + Number(r >> 48n);
  const unit = Math.fround(Math.fround(1.7320508) / 65536);
  const z = Math.fround((sum - 2 * 65535) * unit);
  return Math.fround(z * Math.fround(std));
}

export function fillRandom(seed: bigint, count: number, std: number): Float64Array {
  return Float64Array.from({ length: count }, (_, i) => fillRandomValue(seed, i, std));
}

// ---------------------------------------------------------------------------------------------
// Sampling

export interface SampleRowArgs {
  logits: Float32Array; // [V]
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  seed: bigint;
  counter: number;
  numTopLogprobs: number;
}

export interface SampleRowResult {
  token: number;
  logprob: number;
  topIds: number[];
  topLogprobs: number[];
  /** The set of tokens the filters keep (ids), ascending. */
  kept: number[];
  /**
   * The row sits within rounding of a boundary (top-p group mass, min-p weight, or an end of the
   * drawn token's CDF interval), so a device computing in f32 / fixed point may legitimately differ.
   */
  ambiguous: boolean;
}

/**
 * Relative distance to a mass boundary (top-p, the CDF) under which a device may differ. A device
 * sums f32 exp() weights (relative error ~1e-7 each; in any order or fixed point), so its masses are
 * within a few 1e-7 of this f64 reference: 1e-5 leaves a wide margin without hiding real errors.
 */
const MASS_MARGIN = 1e-5;
/** Relative distance of a weight exp(s - s_max) from min_p under which a device may differ. */
const WEIGHT_MARGIN = 1e-4;

/** The n ids of largest key, descending, ties by lower id (key without NaN). */
function topByKey(key: ArrayLike<number>, n: number): number[] {
  if (n <= 0) return [];
  if (n > 32) {
    const ids = Array.from({ length: key.length }, (_, i) => i);
    return ids.sort((a, b) => (key[b]! - key[a]!) || a - b).slice(0, n);
  }
  const top: number[] = []; // insertion into a short sorted list: O(V n)
  for (let i = 0; i < key.length; i++) {
    if (top.length === n && !(key[i]! > key[top[n - 1]!]!)) continue;
    let j = Math.min(top.length, n - 1);
    while (j > 0 && key[i]! > key[top[j - 1]!]!) j--;
    top.splice(j, 0, i);
    if (top.length > n) top.pop();
  }
  return top;
}

/** The tokens a sampling row keeps and their weights exp(s - s_max), ascending ids. */
export interface KeptSet {
  ids: number[];
  weights: number[];
  mass: number;
  /** Membership sits within rounding of a top-p or min-p boundary. */
  ambiguous: boolean;
}

/**
 * The kept set of a sampling row (temperature > 0) as ops.h states it: thresholds on s = logits / T,
 * every tie with a threshold kept. Null when s has no finite maximum (the draw is then the lowest id
 * holding the maximum).
 */
export function keptSet(logits: ArrayLike<number>, temperatureArg: number, topK: number, topPArg: number, minPArg: number): KeptSet | null {
  const V = logits.length;
  const temperature = Math.fround(temperatureArg);
  const scaled = new Float64Array(V);
  let sMax = -Infinity;
  for (let i = 0; i < V; i++) {
    const x = logits[i]!;
    scaled[i] = Number.isNaN(x) ? -Infinity : Math.fround(x / temperature); // f32 division
    sMax = Math.max(sMax, scaled[i]!);
  }
  if (!Number.isFinite(sMax)) return null;
  const weights = new Float64Array(V);
  for (let i = 0; i < V; i++) weights[i] = Math.exp(scaled[i]! - sMax);
  let ambiguous = false;

  // Top-k: the k-th largest scaled logit; every token tied with it stays.
  let threshold = -Infinity;
  const topP = Math.fround(topPArg);
  // The values in descending order (a weight is a function of its value, so this is all top-p needs).
  const sorted = (topK > 0 && topK < V) || topP < 1 ? Float64Array.from(scaled).sort().reverse() : new Float64Array(0);
  if (topK > 0 && topK < V) threshold = sorted[topK - 1]!;

  // Top-p over the top-k set: the first group of equal values (descending) at which the cumulative
  // mass reaches top_p of the set's mass. The group before it and the group itself must both be
  // clear of that target (the first group is kept whatever the mass).
  if (topP < 1) {
    let topKMass = 0;
    for (let i = 0; i < V; i++) if (scaled[i]! >= threshold) topKMass += weights[i]!;
    const target = topP * topKMass;
    let cumulative = 0;
    for (let r = 0; r < V; ) {
      const value = sorted[r]!;
      if (value < threshold) break;
      const before = cumulative;
      for (; r < V && sorted[r]! === value; r++) cumulative += Math.exp(value - sMax);
      if (target > 0 && Math.abs(cumulative - target) < MASS_MARGIN * topKMass) ambiguous = true;
      if (before > 0 && Math.abs(before - target) < MASS_MARGIN * topKMass) ambiguous = true;
      if (cumulative >= target) {
        threshold = value;
        break;
      }
    }
  }
  threshold = Math.min(threshold, sMax);

  // Min-p (weight = p / p_max >= min_p); the most likely tokens always stay.
  const minP = minPArg > 0 ? Math.fround(minPArg) : 0;
  const kept: KeptSet = { ids: [], weights: [], mass: 0, ambiguous };
  for (let i = 0; i < V; i++) {
    let keep = scaled[i] === sMax;
    if (!keep && scaled[i]! >= threshold) {
      if (minP > 0 && Math.abs(weights[i]! - minP) < WEIGHT_MARGIN * minP) kept.ambiguous = true;
      keep = weights[i]! >= minP;
    }
    if (keep) {
      kept.ids.push(i);
      kept.weights.push(weights[i]!);
      kept.mass += weights[i]!;
    }
  }
  return kept;
}

/**
 * Inverse CDF over a kept set in ascending id order. `ambiguous`: the target lies within rounding of
 * an end of the drawn token's interval [before, cumulative).
 */
export function drawFromKept(kept: KeptSet, u: number): { token: number; ambiguous: boolean } {
  const target = u * kept.mass;
  let cumulative = 0;
  for (let j = 0; j < kept.ids.length; j++) {
    const before = cumulative;
    cumulative += kept.weights[j]!;
    if (target < cumulative) {
      const ambiguous = (before > 0 && target - before < MASS_MARGIN * kept.mass) || cumulative - target < MASS_MARGIN * kept.mass;
      return { token: kept.ids[j]!, ambiguous };
    }
  }
  return { token: kept.ids[kept.ids.length - 1]!, ambiguous: true }; // only through rounding
}

/** One row of UD_OP_SAMPLE as ops.h states it. */
export function sampleRow(a: SampleRowArgs): SampleRowResult {
  const key = new Float64Array(a.logits.length);
  let maxRaw = -Infinity;
  for (let i = 0; i < key.length; i++) {
    key[i] = Number.isNaN(a.logits[i]!) ? -Infinity : a.logits[i]!;
    maxRaw = Math.max(maxRaw, key[i]!);
  }
  let sumExp = 0;
  for (const x of key) sumExp += Math.exp(x - maxRaw);
  const logNorm = maxRaw + Math.log(sumExp);
  const logprob = (id: number): number => key[id]! - logNorm;
  const topIds = topByKey(key, a.numTopLogprobs);
  const topLogprobs = topIds.map(logprob);
  const result = (token: number, kept: number[], ambiguous: boolean): SampleRowResult => ({ token, logprob: logprob(token), topIds, topLogprobs, kept, ambiguous });

  if (!(Math.fround(a.temperature) > 0)) {
    const token = key.indexOf(maxRaw); // greedy: the lowest id on ties
    return result(token, [token], false);
  }
  const kept = keptSet(a.logits, a.temperature, a.topK, a.topP, a.minP);
  if (!kept) {
    // No finite maximum of s (all -inf, or x / T overflowed): the lowest id holding the maximum s.
    const t = Math.fround(a.temperature);
    const s = Array.from(key, (x) => Math.fround(x / t));
    const token = s.indexOf(s.reduce((m, x) => Math.max(m, x), -Infinity));
    return result(token, [token], false);
  }
  const draw = drawFromKept(kept, udUniform(a.seed, a.counter));
  return result(draw.token, kept.ids, kept.ambiguous || draw.ambiguous);
}

/** The kept set's renormalised probabilities (for distribution checks), keyed by token id. */
export function keptDistribution(logits: Float32Array, temperature: number, topK: number, topP: number, minP: number): Map<number, number> {
  const result = sampleRow({ logits, temperature, topK, topP, minP, seed: 0n, counter: 0, numTopLogprobs: 0 });
  const t = Math.fround(temperature);
  const scaled = result.kept.map((id) => Math.fround(logits[id]! / t));
  const max = scaled.reduce((m, x) => Math.max(m, x), -Infinity);
  const weights = scaled.map((s) => Math.exp(s - max));
  const total = weights.reduce((p, w) => p + w, 0);
  return new Map(result.kept.map((id, i) => [id, weights[i]! / total]));
}

/** SELECT_TOKENS: ids[i], or table[sources[i]] where sources[i] >= 0; rows past ids untouched (null here). */
export function selectTokens(ids: Int32Array, sources: Int32Array | null, table: Int32Array | null): Int32Array {
  return ids.map((id, i) => (sources !== null && sources[i]! >= 0 ? table![sources[i]!]! : id));
}

/** PROCESS_LOGITS inputs for one row (kernels/ops.h); ids outside [0, V) are padding. */
export interface ProcessLogitsRow {
  flags: number;
  /** presence, frequency, repetition */
  penalties: [number, number, number];
  tokenIds: number[];
  tokenCounts: number[];
  extraId: number;
  biasIds: number[];
  biasValues: number[];
  /** ceil(V / 32) words, or null. */
  allowed: Uint32Array | null;
}

/**
 * PROCESS_LOGITS on one row of f32 logits, in place: mask, bias, repetition, then frequency and
 * presence, every operation rounded to f32 (Math.fround) as the kernels compute it.
 */
export function processLogitsRow(logits: Float32Array, row: ProcessLogitsRow): void {
  const vocab = logits.length;
  const f = row.flags;
  if (f === 0) return;
  const inVocab = (id: number) => id >= 0 && id < vocab;
  const fr = Math.fround;
  if (f & 4) {
    for (let i = 0; i < vocab; i++) if (!((row.allowed![i >>> 5]! >>> (i & 31)) & 1)) logits[i] = -Infinity;
  }
  if (f & 2) {
    row.biasIds.forEach((id, j) => {
      if (inVocab(id)) logits[id] = fr(logits[id]! + row.biasValues[j]!);
    });
  }
  if (f & 1) {
    const [presence, frequency, r] = row.penalties.map(fr) as [number, number, number];
    const repetition = (x: number) => (x > 0 ? fr(x / r) : fr(x * r));
    const freqPresence = (x: number, c: number) => fr(fr(x - fr(frequency * c)) - presence);
    const extra = inVocab(row.extraId) ? row.extraId : -1;
    let listed = false;
    row.tokenIds.forEach((id, j) => {
      if (!inVocab(id)) return;
      let count = row.tokenCounts[j]!;
      if (id === extra) {
        count += 1;
        listed = true;
      }
      let x = repetition(logits[id]!);
      if (count > 0) x = freqPresence(x, count);
      logits[id] = x;
    });
    if (extra >= 0 && !listed) logits[extra] = freqPresence(repetition(logits[extra]!), 1);
  }
}
