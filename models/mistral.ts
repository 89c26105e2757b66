/**
 * Mistral (`MistralForCausalLM`): the Llama step without any projection bias. Mistral v0.1 trained with
 * a 4096-token sliding window; our attention has none, so the config parser clamps maxModelLen to the
 * window, where full causal attention computes exactly the same thing. Later Mistral releases set
 * `sliding_window: null` and keep their full context. `head_dim` may differ from hidden / heads (Nemo).
 */
import type { ModelArchitecture } from '../src/model/registry.ts';
import { parseDecoderConfig } from '../src/model/hf-config.ts';
import { buildDecoderProgram } from './llama.ts';

export const mistralArchitecture: ModelArchitecture = {
  name: 'MistralForCausalLM',
  parseConfig: parseDecoderConfig,
  buildProgram: buildDecoderProgram,
};
