/**
 * RoPE inverse frequencies, computed the way HF transformers computes them (modeling_rope_utils.py:
 * `_compute_default_rope_parameters`, `_compute_linear_scaling_rope_parameters`,
 * `_compute_llama3_parameters`), so our rotation angles match theirs bit for bit where the platform's
 * float32 `pow` is correctly rounded.
 *
 * HF does this arithmetic on float32 tensors with Python scalars. Each tensor op rounds to float32, and
 * the scalar is cast to float32 first. Two PyTorch details decide the last bit:
 * - `scalar / tensor` is `tensor.reciprocal() * scalar` (Tensor.__rdiv__), not a division;
 * - `scalar - tensor` is an ordinary float32 subtraction (Tensor.__rsub__).
 * `f32` below marks every such rounding; the comments quote the Python line being mirrored.
 */
import type { RopeConfig } from './hf-config.ts';

const f32 = Math.fround;

export interface RopeTables {
  /** [rotaryDim / 2] — angle of feature pair i at position p is p × invFreq[i] (in float32). */
  invFreq: Float32Array;
  /** Leading features of each head that rotate (even, ≤ headDim). */
  rotaryDim: number;
  /** Multiplier HF applies to cos and sin; 1 for every rope type we support (yarn/longrope would differ). */
  attentionScaling: number;
}

export function rotaryDimOf(rope: RopeConfig, headDim: number): number {
  // dim = int(head_dim * partial_rotary_factor)
  return Math.trunc(headDim * rope.partialRotaryFactor);
}

export function computeRope(rope: RopeConfig, headDim: number): RopeTables {
  const rotaryDim = rotaryDimOf(rope, headDim);
  const invFreq = defaultInvFreq(rope.theta, rotaryDim);
  switch (rope.type) {
    case 'default':
    // HF's dynamic NTK computes the default frequencies until a sequence outgrows
    // max_position_embeddings; the config parser clamps maxModelLen to that.
    case 'dynamic':
      return { invFreq, rotaryDim, attentionScaling: 1 };
    case 'linear':
      return { invFreq: linearScaledInvFreq(invFreq, rope.factor!), rotaryDim, attentionScaling: 1 };
    case 'llama3':
      return {
        invFreq: llama3ScaledInvFreq(invFreq, {
          factor: rope.factor!,
          lowFreqFactor: rope.lowFreqFactor!,
          highFreqFactor: rope.highFreqFactor!,
          originalMaxPositionEmbeddings: rope.originalMaxPositionEmbeddings!,
        }),
        rotaryDim,
        attentionScaling: 1,
      };
  }
}

/** inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).to(dtype=torch.float) / dim)) */
export function defaultInvFreq(theta: number, rotaryDim: number): Float32Array {
  if (rotaryDim <= 0 || rotaryDim % 2 !== 0) throw new Error(`rotary dimension ${rotaryDim} must be even and positive`);
  const base = f32(theta);
  const out = new Float32Array(rotaryDim / 2);
  for (let i = 0; i < out.length; i++) {
    const exponent = f32((2 * i) / rotaryDim);
    // float32 pow: the double-precision result rounded once is the correctly rounded float32 value.
    const power = f32(Math.pow(base, exponent));
    out[i] = f32(1 / power);
  }
  return out;
}

/** inv_freq /= factor */
export function linearScaledInvFreq(invFreq: Float32Array, factor: number): Float32Array {
  const factor32 = f32(factor);
  return invFreq.map((x) => f32(x / factor32));
}

export interface Llama3Scaling {
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

/** Llama 3.1 frequency scaling: long wavelengths slowed by `factor`, short ones kept, a smooth ramp between. */
export function llama3ScaledInvFreq(invFreq: Float32Array, s: Llama3Scaling): Float32Array {
  const factor = f32(s.factor);
  const oldContextLen = f32(s.originalMaxPositionEmbeddings);
  const lowFreqFactor = f32(s.lowFreqFactor);
  // low_freq_wavelen = old_context_len / low_freq_factor (Python floats; compared against float32 tensors)
  const lowFreqWavelen = f32(s.originalMaxPositionEmbeddings / s.lowFreqFactor);
  const highFreqWavelen = f32(s.originalMaxPositionEmbeddings / s.highFreqFactor);
  // (high_freq_factor - low_freq_factor) is a Python float subtraction
  const ramp = f32(s.highFreqFactor - s.lowFreqFactor);
  const twoPi = f32(2 * Math.PI);

  const out = new Float32Array(invFreq.length);
  for (let i = 0; i < invFreq.length; i++) {
    const inv = invFreq[i]!;
    // wavelen = 2 * math.pi / inv_freq
    const wavelen = f32(f32(1 / inv) * twoPi);
    // inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    const invLlama = wavelen > lowFreqWavelen ? f32(inv / factor) : inv;
    // smooth_factor = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    const smooth = f32(f32(f32(f32(1 / wavelen) * oldContextLen) - lowFreqFactor) / ramp);
    // smoothed_inv_freq = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
    const smoothed = f32(f32(f32(f32(1 - smooth) * invLlama) / factor) + f32(smooth * invLlama));
    // is_medium_freq = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
    const isMedium = !(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen);
    out[i] = isMedium ? smoothed : invLlama;
  }
  return out;
}
