/**
 * Qwen2 / Qwen2.5 (`Qwen2ForCausalLM`): the Llama step with biases on the q, k and v projections (none on
 * o_proj). The config parser sets `attentionBias` for this architecture; buildDecoderProgram then fuses
 * the three biases into one qkv bias, in q, k, v order like the weights.
 * A sliding window is used only when `use_sliding_window` is true, and then clamps maxModelLen.
 */
import type { ModelArchitecture } from '../src/model/registry.ts';
import { parseDecoderConfig } from '../src/model/hf-config.ts';
import { buildDecoderProgram } from './llama.ts';

export const qwen2Architecture: ModelArchitecture = {
  name: 'Qwen2ForCausalLM',
  parseConfig: parseDecoderConfig,
  buildProgram: buildDecoderProgram,
};
