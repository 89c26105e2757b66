/**
 * `config.json` of the Llama family (Llama 2/3/3.1/3.2, Mistral, Qwen2) → a typed DecoderConfig.
 *
 * Two spellings of the RoPE settings exist on the Hub and both are accepted:
 * - older checkpoints: top-level `rope_theta` plus `rope_scaling` ({type | rope_type, factor, ...} or null);
 * - transformers 5: `rope_parameters` ({rope_theta, rope_type, factor, ...}).
 *
 * Sliding windows: our attention op has none. When a model's window is shorter than its context we clamp
 * `maxModelLen` to the window (vLLM's `--disable-sliding-window` does the same): within the window,
 * sliding-window attention and full causal attention are the same computation, so outputs stay exact.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export const SUPPORTED_ARCHITECTURES = ['LlamaForCausalLM', 'MistralForCausalLM', 'Qwen2ForCausalLM'] as const;
export type DecoderArchitecture = (typeof SUPPORTED_ARCHITECTURES)[number];

export const SUPPORTED_ROPE_TYPES = ['default', 'linear', 'llama3', 'dynamic'] as const;
export type RopeType = (typeof SUPPORTED_ROPE_TYPES)[number];

export interface RopeConfig {
  type: RopeType;
  theta: number;
  /** Fraction of headDim that is rotated; rotaryDim = floor(headDim × this). */
  partialRotaryFactor: number;
  /** linear: positions are divided by it; llama3: low frequencies are; dynamic: NTK factor (unused within context). */
  factor?: number;
  /** llama3 only. */
  lowFreqFactor?: number;
  highFreqFactor?: number;
  /** llama3: the pre-training context the frequencies are tuned to; dynamic: where NTK scaling starts. */
  originalMaxPositionEmbeddings?: number;
}

export type CheckpointDtype = 'f32' | 'f16' | 'bf16';

export interface DecoderConfig {
  architecture: DecoderArchitecture;
  modelType: string;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  vocabSize: number;
  rmsNormEps: number;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /** q/k/v projections carry biases (Qwen2 always; Llama when attention_bias). */
  attentionBias: boolean;
  /** o_proj carries a bias (Llama attention_bias; never Qwen2 or Mistral). */
  oProjBias: boolean;
  /** gate/up/down projections carry biases (Llama mlp_bias). */
  mlpBias: boolean;
  rope: RopeConfig;
  bosTokenId: number | null;
  eosTokenIds: number[];
  /** The attention window the checkpoint was trained with, when one applies (Mistral, Qwen2 use_sliding_window). */
  slidingWindow: number | null;
  /** Longest context (prompt + output) we serve exactly; see the note on sliding windows above. */
  maxModelLen: number;
  /** `dtype` / `torch_dtype` of the checkpoint, when it is one we can hold. */
  checkpointDtype: CheckpointDtype | null;
}

export class ConfigError extends Error {
  constructor(source: string, problem: string) {
    super(`${source}: ${problem}`);
    this.name = 'ConfigError';
  }
}

type Json = Record<string, unknown>;

interface ArchitectureTraits {
  defaultMaxPositions: number;
  /** Where projection biases come from: Qwen2 always has q/k/v biases, Mistral none, Llama per config flags. */
  bias: 'qkv' | 'none' | 'config_flags';
  slidingWindow: 'none' | 'mistral' | 'qwen2';
}

const TRAITS: Record<DecoderArchitecture, ArchitectureTraits> = {
  LlamaForCausalLM: { defaultMaxPositions: 2048, bias: 'config_flags', slidingWindow: 'none' },
  MistralForCausalLM: { defaultMaxPositions: 131072, bias: 'none', slidingWindow: 'mistral' },
  Qwen2ForCausalLM: { defaultMaxPositions: 32768, bias: 'qkv', slidingWindow: 'qwen2' },
};

/** Reads `<dir>/config.json`. */
export async function readDecoderConfig(dir: string): Promise<DecoderConfig> {
  const path = join(dir, 'config.json');
  let text: string;
  try {
    text = await readFile(path, 'utf-8');
  } catch {
    throw new ConfigError(path, 'missing: a model folder needs the config.json of its Hugging Face checkpoint');
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(path, `not valid JSON (${(err as Error).message})`);
  }
  return parseDecoderConfig(raw, path);
}

export function parseDecoderConfig(raw: unknown, source = 'config.json'): DecoderConfig {
  const fail = (problem: string): never => {
    throw new ConfigError(source, problem);
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return fail('not a JSON object');
  const c = raw as Json;
  const architecture = pickArchitecture(c, fail);
  const traits = TRAITS[architecture];
  const f = fields(c, fail);

  const hiddenSize = f.int('hidden_size');
  const numHeads = f.int('num_attention_heads');
  const numKvHeads = f.int('num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0) fail(`num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`);
  // `head_dim: null` appears in some configs; HF then falls back to hidden / heads, as do we.
  const headDim = c['head_dim'] == null ? hiddenSize / numHeads : f.int('head_dim');
  if (!Number.isInteger(headDim)) fail(`hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numHeads}; set head_dim`);
  const activation = c['hidden_act'] ?? 'silu';
  if (activation !== 'silu') fail(`hidden_act "${String(activation)}" is not supported (the Llama family uses silu)`);

  const maxPositionEmbeddings = f.int('max_position_embeddings', traits.defaultMaxPositions);
  const rope = parseRope(c, headDim, fail);
  const slidingWindow = effectiveSlidingWindow(c, traits, f);
  const llamaAttentionBias = traits.bias === 'config_flags' && f.bool('attention_bias', false);

  let maxModelLen = maxPositionEmbeddings;
  // vLLM's rule: linear interpolation stretches the trained context by its factor.
  if (rope.type === 'linear') maxModelLen = Math.floor(maxPositionEmbeddings * rope.factor!);
  // HF's dynamic NTK equals the default rotary up to max_position_embeddings and rescales beyond it.
  if (rope.type === 'dynamic') maxModelLen = Math.min(maxModelLen, rope.originalMaxPositionEmbeddings ?? maxPositionEmbeddings);
  if (slidingWindow !== null) maxModelLen = Math.min(maxModelLen, slidingWindow);

  return {
    architecture,
    modelType: typeof c['model_type'] === 'string' ? c['model_type'] : architecture,
    hiddenSize,
    numLayers: f.int('num_hidden_layers'),
    numHeads,
    numKvHeads,
    headDim,
    intermediateSize: f.int('intermediate_size'),
    vocabSize: f.int('vocab_size'),
    rmsNormEps: f.positive('rms_norm_eps', 1e-6),
    maxPositionEmbeddings,
    tieWordEmbeddings: f.bool('tie_word_embeddings', false),
    attentionBias: traits.bias === 'qkv' || llamaAttentionBias,
    oProjBias: llamaAttentionBias,
    mlpBias: traits.bias === 'config_flags' && f.bool('mlp_bias', false),
    rope,
    bosTokenId: f.optionalTokenId('bos_token_id'),
    eosTokenIds: f.tokenIds('eos_token_id'),
    slidingWindow,
    maxModelLen,
    checkpointDtype: parseDtypeName(c['dtype'] ?? c['torch_dtype']),
  };
}

function pickArchitecture(c: Json, fail: (p: string) => never): DecoderArchitecture {
  const listed = c['architectures'];
  const names = Array.isArray(listed) ? listed.filter((a): a is string => typeof a === 'string') : [];
  const supported = names.find((a): a is DecoderArchitecture => (SUPPORTED_ARCHITECTURES as readonly string[]).includes(a));
  if (supported) return supported;
  const what = names.length ? `architecture ${names.join(', ')} is` : 'no "architectures" entry is';
  return fail(`${what} not supported; supported architectures: ${SUPPORTED_ARCHITECTURES.join(', ')}`);
}

function parseRope(c: Json, headDim: number, fail: (p: string) => never): RopeConfig {
  const nested = c['rope_parameters'];
  let params: Json;
  let theta: unknown;
  if (nested !== undefined && nested !== null) {
    if (typeof nested !== 'object' || Array.isArray(nested)) return fail('rope_parameters is not an object');
    params = nested as Json;
    if (!('rope_type' in params) && !('rope_theta' in params) && Object.values(params).some((v) => typeof v === 'object')) {
      fail('per-layer-type rope_parameters are not supported by the Llama family');
    }
    theta = params['rope_theta'] ?? c['rope_theta'];
  } else {
    const scaling = c['rope_scaling'];
    if (scaling !== undefined && scaling !== null && (typeof scaling !== 'object' || Array.isArray(scaling))) {
      fail('rope_scaling is not an object');
    }
    params = (scaling as Json | null | undefined) ?? {};
    theta = c['rope_theta'];
  }
  const where = nested ? 'rope_parameters' : 'rope_scaling';
  const p = fields(params, (problem) => fail(`${where}: ${problem}`));
  const type = params['rope_type'] ?? params['type'] ?? 'default';
  if (typeof type !== 'string' || !(SUPPORTED_ROPE_TYPES as readonly string[]).includes(type)) {
    return fail(`rope type ${JSON.stringify(type)} is not supported; supported: ${SUPPORTED_ROPE_TYPES.join(', ')}`);
  }
  const ropeTheta = theta ?? 10000;
  if (typeof ropeTheta !== 'number' || !(ropeTheta > 0)) return fail(`rope_theta ${JSON.stringify(ropeTheta)} is not a positive number`);
  const partial = params['partial_rotary_factor'] ?? c['partial_rotary_factor'] ?? 1;
  if (typeof partial !== 'number' || !(partial > 0 && partial <= 1)) fail(`partial_rotary_factor ${JSON.stringify(partial)} is not in (0, 1]`);
  const rotaryDim = Math.trunc(headDim * (partial as number));
  if (rotaryDim % 2 !== 0 || rotaryDim === 0) fail(`rotary dimension ${rotaryDim} (head_dim × partial_rotary_factor) must be even and positive`);

  const rope: RopeConfig = { type: type as RopeType, theta: ropeTheta, partialRotaryFactor: partial as number };
  if (type === 'linear' || type === 'dynamic') rope.factor = p.positive('factor');
  if (type === 'dynamic' && params['original_max_position_embeddings'] != null) {
    rope.originalMaxPositionEmbeddings = p.int('original_max_position_embeddings');
  }
  if (type === 'llama3') {
    rope.factor = p.positive('factor');
    rope.lowFreqFactor = p.positive('low_freq_factor');
    rope.highFreqFactor = p.positive('high_freq_factor');
    rope.originalMaxPositionEmbeddings = p.int('original_max_position_embeddings');
    if (!(rope.highFreqFactor > rope.lowFreqFactor)) fail(`${where}: high_freq_factor must exceed low_freq_factor`);
  }
  return rope;
}

function effectiveSlidingWindow(c: Json, traits: ArchitectureTraits, f: Fields): number | null {
  if (traits.slidingWindow === 'none' || c['sliding_window'] == null) return null;
  // Qwen2 stores a sliding_window even when it is off; only use_sliding_window turns it on.
  if (traits.slidingWindow === 'qwen2' && c['use_sliding_window'] !== true) return null;
  return f.int('sliding_window');
}

function parseDtypeName(name: unknown): CheckpointDtype | null {
  switch (name) {
    case 'float32': return 'f32';
    case 'float16': return 'f16';
    case 'bfloat16': return 'bf16';
    default: return null;
  }
}

interface Fields {
  int(key: string, fallback?: number): number;
  positive(key: string, fallback?: number): number;
  bool(key: string, fallback: boolean): boolean;
  optionalTokenId(key: string): number | null;
  tokenIds(key: string): number[];
}

/** Typed reads of one JSON object, with errors that name the key. */
function fields(obj: Json, fail: (p: string) => never): Fields {
  const present = (key: string) => obj[key] !== undefined && obj[key] !== null;
  const isTokenId = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
  return {
    int(key, fallback) {
      if (!present(key)) return fallback ?? fail(`missing "${key}"`);
      const v = obj[key];
      // JSON from Python may spell integers as 4096.0.
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) return fail(`"${key}" must be a positive integer, got ${JSON.stringify(v)}`);
      return v;
    },
    positive(key, fallback) {
      if (!present(key)) return fallback ?? fail(`missing "${key}"`);
      const v = obj[key];
      if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) return fail(`"${key}" must be a positive number, got ${JSON.stringify(v)}`);
      return v;
    },
    bool(key, fallback) {
      if (!present(key)) return fallback;
      const v = obj[key];
      if (typeof v !== 'boolean') return fail(`"${key}" must be true or false, got ${JSON.stringify(v)}`);
      return v;
    },
    optionalTokenId(key) {
      if (!present(key)) return null;
      const v = obj[key];
      return isTokenId(v) ? v : fail(`"${key}" must be a token id, got ${JSON.stringify(v)}`);
    },
    tokenIds(key) {
      if (!present(key)) return [];
      const v = obj[key];
      const ids = Array.isArray(v) ? v : [v];
      if (!ids.every(isTokenId)) return fail(`"${key}" must be a token id or a list of them, got ${JSON.stringify(v)}`);
      return ids as number[];
    },
  };
}

/** The parts of `generation_config.json` a server uses: stop ids and default sampling settings. */
export interface GenerationDefaults {
  bosTokenId?: number;
  eosTokenIds?: number[];
  temperature?: number;
  topP?: number;
  topK?: number;
  minP?: number;
  maxNewTokens?: number;
}

/** Reads `<dir>/generation_config.json`; an absent file gives {}. */
export async function readGenerationDefaults(dir: string): Promise<GenerationDefaults> {
  const path = join(dir, 'generation_config.json');
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf-8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new ConfigError(path, `not valid JSON (${(err as Error).message})`);
  }
  return parseGenerationDefaults(raw, path);
}

export function parseGenerationDefaults(raw: unknown, source = 'generation_config.json'): GenerationDefaults {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(source, 'not a JSON object');
  const c = raw as Json;
  const f = fields(c, (problem) => {
    throw new ConfigError(source, problem);
  });
  const out: GenerationDefaults = {};
  const bos = f.optionalTokenId('bos_token_id');
  if (bos !== null) out.bosTokenId = bos;
  if (c['eos_token_id'] != null) out.eosTokenIds = f.tokenIds('eos_token_id');
  const num = (key: string) => (typeof c[key] === 'number' ? (c[key] as number) : undefined);
  // Like vLLM's `--generation-config auto`, the values count whether or not do_sample is set.
  const temperature = num('temperature');
  const topP = num('top_p');
  const topK = num('top_k');
  const minP = num('min_p');
  const maxNew = num('max_new_tokens');
  if (temperature !== undefined) out.temperature = temperature;
  if (topP !== undefined) out.topP = topP;
  if (topK !== undefined) out.topK = topK;
  if (minP !== undefined) out.minP = minP;
  if (maxNew !== undefined) out.maxNewTokens = maxNew;
  return out;
}
