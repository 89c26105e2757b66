import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { RopeConfig } from '../../../src/model/hf-config.ts';
import { computeRope, defaultInvFreq, linearScaledInvFreq, llama3ScaledInvFreq } from '../../../src/model/rope.ts';

interface HfRopeCase {
  head_dim: number;
  rope_parameters: { rope_type: string; rope_theta: number; factor?: number; low_freq_factor?: number; high_freq_factor?: number; original_max_position_embeddings?: number };
  attention_scaling: number;
  inv_freq: number[];
}
/** inv_freq that HF transformers 5.17 computed on the CPU for eight configs (see the file's "source"). */
const HF = JSON.parse(readFileSync(new URL('../../fixtures/golden/hf-rope-inv-freq.json', import.meta.url), 'utf-8')) as { cases: Record<string, HfRopeCase> };

function ropeOf(c: HfRopeCase): RopeConfig {
  const p = c.rope_parameters;
  const rope: RopeConfig = { type: p.rope_type as RopeConfig['type'], theta: p.rope_theta, partialRotaryFactor: 1 };
  if (p.factor !== undefined) rope.factor = p.factor;
  if (p.low_freq_factor !== undefined) rope.lowFreqFactor = p.low_freq_factor;
  if (p.high_freq_factor !== undefined) rope.highFreqFactor = p.high_freq_factor;
  if (p.original_max_position_embeddings !== undefined) rope.originalMaxPositionEmbeddings = p.original_max_position_embeddings;
  return rope;
}

/** Llama 3.1 scaling in float64, written from the paper's description rather than from HF's code. */
function llama3Float64(theta: number, dim: number, s: { factor: number; low: number; high: number; old: number }): number[] {
  const out: number[] = [];
  for (let i = 0; i < dim / 2; i++) {
    const freq = 1 / theta ** ((2 * i) / dim);
    const wavelength = (2 * Math.PI) / freq;
    if (wavelength < s.old / s.high) out.push(freq);
    else if (wavelength > s.old / s.low) out.push(freq / s.factor);
    else {
      const smooth = (s.old / wavelength - s.low) / (s.high - s.low);
      out.push((1 - smooth) * (freq / s.factor) + smooth * freq);
    }
  }
  return out;
}

function maxRelativeError(ours: Float32Array, reference: number[]): number {
  return Math.max(...reference.map((v, i) => Math.abs(ours[i]! - v) / Math.abs(v)));
}

describe('RoPE inverse frequencies match HF transformers bit for bit', () => {
  for (const [name, c] of Object.entries(HF.cases)) {
    it(name, () => {
      const tables = computeRope(ropeOf(c), c.head_dim);
      expect(tables.rotaryDim).toBe(c.head_dim);
      expect(tables.attentionScaling).toBe(c.attention_scaling);
      expect(Array.from(tables.invFreq)).toEqual(c.inv_freq);
    });
  }
});

describe('RoPE inverse frequencies against float64 formulas', () => {
  it('default: 1 / theta^(2i/d) within 1e-7 relative (two float32 roundings)', () => {
    for (const [theta, dim] of [[10000, 128], [500000, 128], [1e6, 64], [10000, 16]] as const) {
      const reference = Array.from({ length: dim / 2 }, (_, i) => 1 / theta ** ((2 * i) / dim));
      expect(maxRelativeError(defaultInvFreq(theta, dim), reference)).toBeLessThan(1e-7);
    }
  });

  it('llama3: within 4e-7 relative (HF chains six float32 ops; its own values sit 3.2e-7 from float64)', () => {
    const cases = [
      [500000, 128, { factor: 8, low: 1, high: 4, old: 8192 }],
      [500000, 64, { factor: 32, low: 1, high: 4, old: 8192 }],
      [500000, 32, { factor: 8, low: 1, high: 4, old: 32 }],
      [10000, 128, { factor: 8, low: 1, high: 4, old: 4096 }],
    ] as const;
    for (const [theta, dim, s] of cases) {
      const ours = llama3ScaledInvFreq(defaultInvFreq(theta, dim), { factor: s.factor, lowFreqFactor: s.low, highFreqFactor: s.high, originalMaxPositionEmbeddings: s.old });
      expect(maxRelativeError(ours, llama3Float64(theta, dim, s))).toBeLessThan(4e-7);
    }
  });

  it('linear: the default frequencies divided by the factor', () => {
    const base = defaultInvFreq(10000, 64);
    const scaled = linearScaledInvFreq(base, 4);
    expect(Array.from(scaled)).toEqual(Array.from(base, (v) => v / 4)); // dividing by 4 is exact
  });
});

describe('hand-checked values', () => {
  it('default theta 10000, d 16: 1, 10^-0.5, 10^-1 as float32', () => {
    const inv = defaultInvFreq(10000, 16);
    expect(inv[0]).toBe(1);
    expect(inv[1]).toBe(Math.fround(1 / Math.sqrt(10))); // 10000^(-1/8) = 10^(-1/2) = 0.316227766...
    expect(inv[2]).toBe(Math.fround(0.1));
  });

  it('Llama 3.1 (theta 5e5, d 128, factor 8, context 8192): bands at i ≤ 28, 29..34, ≥ 35', () => {
    const inv = llama3ScaledInvFreq(defaultInvFreq(500000, 128), { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
    const base = defaultInvFreq(500000, 128);
    // Wavelengths below 8192/4 = 2048 positions keep their frequency: i = 28 has 2π/0.00321 ≈ 1956.
    expect(inv[0]).toBe(1);
    expect(inv[28]).toBe(base[28]);
    expect(inv[28]).toBe(0.0032114461064338684);
    // Wavelengths above 8192 are slowed 8×: i = 35 has 2π/0.000764 ≈ 8219.
    expect(inv[35]).toBe(Math.fround(base[35]! / 8));
    expect(inv[63]).toBe(3.068925877869333e-7);
    // Between, a ramp: i = 29 has wavelength ≈ 2401.7, smooth = (8192/2401.7 - 1)/3 ≈ 0.8036,
    // so inv = base × (0.1964/8 + 0.8036) ≈ 0.0026161 × 0.82818 ≈ 0.0021666.
    expect(inv[29]).toBe(0.0021665706299245358);
    expect(inv[29]! / base[29]!).toBeCloseTo(0.82818, 4);
  });
});

describe('computeRope', () => {
  it('gives dynamic NTK the default frequencies (HF only rescales beyond max_position_embeddings)', () => {
    const rope = computeRope({ type: 'dynamic', theta: 10000, partialRotaryFactor: 1, factor: 2 }, 64);
    expect(Array.from(rope.invFreq)).toEqual(Array.from(defaultInvFreq(10000, 64)));
  });

  it('rotates only floor(headDim × partial_rotary_factor) features', () => {
    const rope = computeRope({ type: 'default', theta: 10000, partialRotaryFactor: 0.5 }, 64);
    expect(rope.rotaryDim).toBe(32);
    expect(Array.from(rope.invFreq)).toEqual(Array.from(defaultInvFreq(10000, 32)));
  });

  it('rejects an odd rotary dimension', () => {
    expect(() => defaultInvFreq(10000, 7)).toThrow(/even and positive/);
  });
});
