/**
 * SamplingParams: what one request asks of the sampler and the stop logic, already validated.
 * The API layer turns OpenAI fields into this; the engine and the device only ever see this.
 */
import type { Grammar } from '../structured/grammar.ts';
export interface SamplingParams {
  /** 0 = greedy. */
  temperature: number;
  /** 1 = off. */
  topP: number;
  /** 0 = off (vLLM also accepts -1, which the API maps to 0). */
  topK: number;
  /** 0 = off. */
  minP: number;
  /** Keys the request's own random stream (see ud_uniform in kernels/ops.h); chosen at random when the
   * client gives none, so a seeded request samples the same tokens in any batch. Range [0, 2^64). */
  seed: bigint;
  /** Most tokens to generate (already clamped to the context window). */
  maxTokens: number;
  /** Fewest tokens to generate before EOS / stop tokens may end the request. */
  minTokens: number;
  /** Stop strings; the output ends before the first match and does not include it. */
  stop: string[];
  /** Token ids that end generation (in addition to EOS unless ignoreEos). */
  stopTokenIds: number[];
  ignoreEos: boolean;
  /** null: no logprobs; k >= 0: the chosen token's logprob plus the top k alternatives. */
  logprobs: number | null;
  skipSpecialTokens: boolean;
  /** OpenAI presence_penalty, -2..2: subtracted once from every token already in the output. 0 = off. */
  presencePenalty: number;
  /** OpenAI frequency_penalty, -2..2: subtracted per occurrence in the output. 0 = off. */
  frequencyPenalty: number;
  /** vLLM / HF repetition_penalty, > 0: tokens of the prompt or output get logit / r (positive) or logit * r. 1 = off. */
  repetitionPenalty: number;
  /** OpenAI logit_bias: [token id, bias in -100..100] pairs, ids distinct; added to the logits. */
  logitBias: readonly (readonly [number, number])[];
  /** response_format json_object / json_schema: the grammar decoding is constrained to; null = free text. */
  structuredOutput: StructuredOutput | null;
}

/** A compiled response_format, guided_json or guided_choice (src/structured). */
export interface StructuredOutput {
  readonly kind: 'json_object' | 'json_schema' | 'choice';
  readonly grammar: Grammar;
}

/** True when a request needs the process_logits op (penalties, biases, bans or a grammar). */
export function usesLogitsProcessing(params: SamplingParams): boolean {
  return (
    params.presencePenalty !== 0 ||
    params.frequencyPenalty !== 0 ||
    params.repetitionPenalty !== 1 ||
    params.logitBias.length > 0 ||
    params.minTokens > 0 ||
    params.structuredOutput !== null
  );
}

export const MAX_TOP_LOGPROBS = 20;

/** Defaults as OpenAI documents them (temperature 1, top_p 1). */
export function defaultSamplingParams(overrides: Partial<SamplingParams> = {}): SamplingParams {
  return {
    temperature: 1,
    topP: 1,
    topK: 0,
    minP: 0,
    seed: randomSeed(),
    maxTokens: 16,
    minTokens: 0,
    stop: [],
    stopTokenIds: [],
    ignoreEos: false,
    logprobs: null,
    skipSpecialTokens: true,
    presencePenalty: 0,
    frequencyPenalty: 0,
    repetitionPenalty: 1,
    logitBias: [],
    structuredOutput: null,
    ...overrides,
  };
}

export function randomSeed(): bigint {
  const words = crypto.getRandomValues(new Uint32Array(2));
  return (BigInt(words[0]!) << 32n) | BigInt(words[1]!);
}

/** A client's integer seed (any JS safe integer, negative too) as the unsigned 64-bit seed the sampler uses. */
export function seedFromClient(seed: number): bigint {
  return BigInt.asUintN(64, BigInt(seed));
}
