import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseDecoderConfig, parseGenerationDefaults, readDecoderConfig, SUPPORTED_ARCHITECTURES } from '../../../src/model/hf-config.ts';
import { HAS_SHARED_MODELS, SHARED_MODELS, SHARED_SKIP_REASON } from '../../helpers/paths.ts';

/** The shape of Meta-Llama-3.1-8B's config.json (older form: rope_theta + rope_scaling). */
const LLAMA31_8B = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 4096, intermediate_size: 14336,
  num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8, vocab_size: 128256,
  max_position_embeddings: 131072, rms_norm_eps: 1e-5, hidden_act: 'silu', tie_word_embeddings: false,
  attention_bias: false, mlp_bias: false, bos_token_id: 128000, eos_token_id: [128001, 128008, 128009],
  rope_theta: 500000.0, torch_dtype: 'bfloat16',
  rope_scaling: { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
};

/** Qwen2.5-0.5B-Instruct's shape. */
const QWEN25_05B = {
  architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', hidden_size: 896, intermediate_size: 4864,
  num_hidden_layers: 24, num_attention_heads: 14, num_key_value_heads: 2, vocab_size: 151936,
  max_position_embeddings: 32768, rms_norm_eps: 1e-6, hidden_act: 'silu', tie_word_embeddings: true,
  rope_theta: 1000000.0, rope_scaling: null, sliding_window: 32768, use_sliding_window: false, max_window_layers: 21,
  bos_token_id: 151643, eos_token_id: 151645, torch_dtype: 'bfloat16',
};

/** Mistral-7B-v0.1's shape: a 4096-token sliding window under a 32k context. */
const MISTRAL_V01 = {
  architectures: ['MistralForCausalLM'], model_type: 'mistral', hidden_size: 4096, intermediate_size: 14336,
  num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8, vocab_size: 32000,
  max_position_embeddings: 32768, rms_norm_eps: 1e-5, hidden_act: 'silu', tie_word_embeddings: false,
  rope_theta: 10000.0, sliding_window: 4096, bos_token_id: 1, eos_token_id: 2, torch_dtype: 'bfloat16',
};

const parse = (raw: unknown) => parseDecoderConfig(raw, 'test config.json');
const error = (raw: unknown) => {
  try {
    parse(raw);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
};

describe('parseDecoderConfig: Llama', () => {
  it('reads Llama 3.1 in the older rope_theta + rope_scaling form', () => {
    const cfg = parse(LLAMA31_8B);
    expect(cfg).toMatchObject({
      architecture: 'LlamaForCausalLM', hiddenSize: 4096, numLayers: 32, numHeads: 32, numKvHeads: 8, headDim: 128,
      intermediateSize: 14336, vocabSize: 128256, rmsNormEps: 1e-5, maxPositionEmbeddings: 131072, maxModelLen: 131072,
      tieWordEmbeddings: false, attentionBias: false, oProjBias: false, mlpBias: false, bosTokenId: 128000,
      eosTokenIds: [128001, 128008, 128009], slidingWindow: null, checkpointDtype: 'bf16',
    });
    expect(cfg.rope).toEqual({
      type: 'llama3', theta: 500000, partialRotaryFactor: 1, factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192,
    });
  });

  it('reads the same settings from the transformers-5 rope_parameters form', () => {
    const { rope_theta, rope_scaling, torch_dtype, ...rest } = LLAMA31_8B;
    const v5 = { ...rest, dtype: torch_dtype, rope_parameters: { ...rope_scaling, rope_theta } };
    expect(parse(v5)).toEqual(parse(LLAMA31_8B));
  });

  it('accepts the legacy "type" key and scales the context of linear rope by its factor', () => {
    const cfg = parse({ ...LLAMA31_8B, max_position_embeddings: 4096, rope_theta: 10000, rope_scaling: { type: 'linear', factor: 4.0 } });
    expect(cfg.rope).toEqual({ type: 'linear', theta: 10000, partialRotaryFactor: 1, factor: 4 });
    expect(cfg.maxModelLen).toBe(16384);
  });

  it('treats rope_scaling null and a missing rope_theta as default rope with theta 10000', () => {
    const { rope_theta: _t, ...rest } = LLAMA31_8B;
    expect(parse({ ...rest, rope_scaling: null }).rope).toEqual({ type: 'default', theta: 10000, partialRotaryFactor: 1 });
  });

  it('accepts dynamic NTK, serving up to max_position_embeddings where it equals default rope', () => {
    const cfg = parse({ ...LLAMA31_8B, max_position_embeddings: 4096, rope_scaling: { type: 'dynamic', factor: 2.0 } });
    expect(cfg.rope.type).toBe('dynamic');
    expect(cfg.maxModelLen).toBe(4096);
  });

  it('derives head_dim from hidden / heads when absent or null, and keeps an explicit one', () => {
    expect(parse({ ...LLAMA31_8B, head_dim: null }).headDim).toBe(128);
    expect(parse({ ...LLAMA31_8B, head_dim: 64 }).headDim).toBe(64);
  });

  it('turns attention_bias into q/k/v and o_proj biases, and mlp_bias into MLP biases', () => {
    expect(parse({ ...LLAMA31_8B, attention_bias: true, mlp_bias: true })).toMatchObject({ attentionBias: true, oProjBias: true, mlpBias: true });
  });

  it('reads a single eos id as a one-element list and a missing one as none', () => {
    expect(parse({ ...LLAMA31_8B, eos_token_id: 2 }).eosTokenIds).toEqual([2]);
    const { eos_token_id: _e, ...rest } = LLAMA31_8B;
    expect(parse(rest).eosTokenIds).toEqual([]);
  });
});

describe('parseDecoderConfig: Qwen2 and Mistral', () => {
  it('Qwen2 always has q/k/v biases (no o_proj bias) and ignores sliding_window unless use_sliding_window', () => {
    const cfg = parse(QWEN25_05B);
    expect(cfg).toMatchObject({ architecture: 'Qwen2ForCausalLM', attentionBias: true, oProjBias: false, mlpBias: false, headDim: 64 });
    expect(cfg).toMatchObject({ tieWordEmbeddings: true, slidingWindow: null, maxModelLen: 32768, rope: { type: 'default', theta: 1000000 } });
  });

  it('Qwen2 with use_sliding_window clamps maxModelLen to the window', () => {
    expect(parse({ ...QWEN25_05B, use_sliding_window: true, sliding_window: 4096 })).toMatchObject({ slidingWindow: 4096, maxModelLen: 4096 });
  });

  it('Mistral v0.1 keeps its 4096 window and serves 4096 tokens; v0.3 (window null) serves its full context', () => {
    expect(parse(MISTRAL_V01)).toMatchObject({ architecture: 'MistralForCausalLM', slidingWindow: 4096, maxModelLen: 4096, maxPositionEmbeddings: 32768 });
    expect(parse({ ...MISTRAL_V01, sliding_window: null })).toMatchObject({ slidingWindow: null, maxModelLen: 32768 });
  });

  it('Mistral has no projection biases, whatever attention_bias says, and may set head_dim ≠ hidden / heads', () => {
    const nemo = parse({ ...MISTRAL_V01, hidden_size: 5120, head_dim: 128, attention_bias: true });
    expect(nemo).toMatchObject({ attentionBias: false, oProjBias: false, headDim: 128, hiddenSize: 5120 });
  });
});

describe('parseDecoderConfig: errors name the problem', () => {
  it('lists the supported architectures for an unknown one', () => {
    const message = error({ ...LLAMA31_8B, architectures: ['GPTNeoXForCausalLM'] });
    expect(message).toMatch(/^test config.json: architecture GPTNeoXForCausalLM is not supported/);
    for (const arch of SUPPORTED_ARCHITECTURES) expect(message).toContain(arch);
    expect(error({ ...LLAMA31_8B, architectures: undefined })).toMatch(/no "architectures" entry/);
  });

  it('lists the supported rope types for an unknown one', () => {
    const message = error({ ...LLAMA31_8B, rope_scaling: { rope_type: 'yarn', factor: 4 } });
    expect(message).toMatch(/rope type "yarn" is not supported; supported: default, linear, llama3, dynamic/);
  });

  it('names missing or malformed fields', () => {
    const { hidden_size: _h, ...noHidden } = LLAMA31_8B;
    expect(error(noHidden)).toMatch(/missing "hidden_size"/);
    expect(error({ ...LLAMA31_8B, num_hidden_layers: 2.5 })).toMatch(/"num_hidden_layers" must be a positive integer, got 2.5/);
    expect(error({ ...LLAMA31_8B, num_key_value_heads: 5 })).toMatch(/not a multiple of num_key_value_heads 5/);
    expect(error({ ...LLAMA31_8B, hidden_act: 'gelu' })).toMatch(/hidden_act "gelu" is not supported/);
    expect(error({ ...LLAMA31_8B, rope_scaling: { rope_type: 'llama3', factor: 8 } })).toMatch(/rope_scaling: missing "low_freq_factor"/);
    expect(error({ ...LLAMA31_8B, eos_token_id: 'x' })).toMatch(/"eos_token_id" must be a token id/);
    expect(error([])).toMatch(/not a JSON object/);
  });

  it('rejects per-layer-type rope_parameters (Gemma-style) for the Llama family', () => {
    const raw = { ...LLAMA31_8B, rope_parameters: { full_attention: { rope_type: 'default', rope_theta: 1e6 } } };
    expect(error(raw)).toMatch(/per-layer-type rope_parameters/);
  });
});

describe('generation_config.json', () => {
  it('reads stop ids and sampling defaults', () => {
    const raw = { bos_token_id: 128000, eos_token_id: [128001, 128009], do_sample: true, temperature: 0.6, top_p: 0.9, max_new_tokens: 256 };
    expect(parseGenerationDefaults(raw)).toEqual({ bosTokenId: 128000, eosTokenIds: [128001, 128009], temperature: 0.6, topP: 0.9, maxNewTokens: 256 });
    expect(parseGenerationDefaults({})).toEqual({});
  });
});

describe.skipIf(!HAS_SHARED_MODELS)(`reference configs in ../shared/models${HAS_SHARED_MODELS ? '' : ` (skipped: ${SHARED_SKIP_REASON})`}`, () => {
  it('stories260K (transformers-5 form, tied, head_dim 8)', async () => {
    const cfg = await readDecoderConfig(join(SHARED_MODELS, 'stories260K'));
    expect(cfg).toMatchObject({ hiddenSize: 64, numLayers: 5, numHeads: 8, numKvHeads: 4, headDim: 8, intermediateSize: 172, tieWordEmbeddings: true, maxModelLen: 512 });
    expect(cfg.rope).toEqual({ type: 'default', theta: 10000, partialRotaryFactor: 1 });
  });

  it('tiny-llama31-random (llama3 rope in rope_parameters)', async () => {
    const cfg = await readDecoderConfig(join(SHARED_MODELS, 'tiny-llama31-random'));
    expect(cfg.rope).toEqual({ type: 'llama3', theta: 500000, partialRotaryFactor: 1, factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 64 });
    expect(cfg).toMatchObject({ headDim: 32, tieWordEmbeddings: false, checkpointDtype: 'f32' });
  });
});
