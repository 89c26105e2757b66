/**
 * Validated OpenAI / vLLM request fields → SamplingParams, the only sampling vocabulary the engine
 * understands. Everything that depends on the prompt's length (the context window) is decided here.
 */
import { randomSeed, seedFromClient, type SamplingParams } from '../../sampling/params.ts';
import { invalidRequest } from '../errors.ts';
import { toLogitsParams, type LogitsFields } from './logits-fields.ts';

/** The request fields both endpoints share (already type- and range-checked by the schemas). */
export interface SamplingFields extends LogitsFields {
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  top_k?: number | null;
  min_p?: number | null;
  seed?: number | null;
  stop?: string | string[] | null;
  stop_token_ids?: number[] | null;
  ignore_eos?: boolean | null;
  min_tokens?: number | null;
  skip_special_tokens?: boolean | null;
  truncate_prompt_tokens?: number | null;
}

/**
 * vLLM's truncate_prompt_tokens: the prompt's last k tokens (left truncation, so the end of a long
 * document and the question after it stay); -1 = the model's max_model_len; absent = the whole prompt.
 */
export function truncatePrompt(promptTokenIds: number[], k: number | null | undefined, maxModelLen: number): number[] {
  if (k === null || k === undefined) return promptTokenIds;
  const keep = k === -1 ? maxModelLen : k;
  return promptTokenIds.length > keep ? promptTokenIds.slice(promptTokenIds.length - keep) : promptTokenIds;
}

export interface SamplingContext {
  promptTokens: number;
  maxModelLen: number;
  /** Tokens to generate when the client gives no limit; null = the rest of the context (chat). */
  defaultMaxTokens: number | null;
  /** null = no logprobs; k = the chosen token's logprob plus the top k. */
  logprobs: number | null;
  /** The field that carried the prompt, named in the too-long error. */
  promptParam: 'messages' | 'prompt';
  /** The model's logits width, which bounds logit_bias ids (unknown: not checked here; the device skips ids past it). */
  vocabSize?: number | null;
}

export function toSamplingParams(fields: SamplingFields, context: SamplingContext): SamplingParams {
  const remaining = remainingContext(context);
  // max_completion_tokens is the newer name; when both are sent it wins, as in vLLM.
  const requested = fields.max_completion_tokens ?? fields.max_tokens;
  if (requested !== null && requested !== undefined && requested > remaining) throw tooManyTokens(fields, requested, context);
  // An endpoint default (completions: 16) is fitted into what is left; the client asked for nothing.
  const maxTokens = requested ?? Math.min(context.defaultMaxTokens ?? remaining, remaining);
  const topK = fields.top_k ?? 0;
  return {
    temperature: fields.temperature ?? 1,
    topP: fields.top_p ?? 1,
    topK: topK < 0 ? 0 : topK,
    minP: fields.min_p ?? 0,
    seed: fields.seed === null || fields.seed === undefined ? randomSeed() : seedFromClient(fields.seed),
    maxTokens,
    minTokens: Math.min(fields.min_tokens ?? 0, maxTokens),
    stop: typeof fields.stop === 'string' ? [fields.stop] : (fields.stop ?? []),
    stopTokenIds: fields.stop_token_ids ?? [],
    ignoreEos: fields.ignore_eos ?? false,
    logprobs: context.logprobs,
    skipSpecialTokens: fields.skip_special_tokens ?? true,
    ...toLogitsParams(fields, context.vocabSize ?? null),
  };
}

/** A client limit that does not fit beside the prompt: rejected (not clamped), in vLLM's words. */
function tooManyTokens(fields: SamplingFields, requested: number, context: SamplingContext) {
  const param = fields.max_completion_tokens !== null && fields.max_completion_tokens !== undefined ? 'max_completion_tokens' : 'max_tokens';
  return invalidRequest(
    `This model's maximum context length is ${context.maxModelLen} tokens. However, you requested ` +
      `${context.promptTokens + requested} tokens (${context.promptTokens} in the ${context.promptParam}, ${requested} in the completion). ` +
      `Please reduce the length of the ${context.promptParam} or completion.`,
    param,
    'context_length_exceeded',
  );
}

/** Tokens left for generation; a prompt that leaves none is rejected the way vLLM words it. */
function remainingContext(context: SamplingContext): number {
  if (context.promptTokens >= context.maxModelLen) {
    throw invalidRequest(
      `This model's maximum context length is ${context.maxModelLen} tokens. However, your request has ` +
        `${context.promptTokens} input tokens. Please reduce the length of the input ${context.promptParam}.`,
      context.promptParam,
      'context_length_exceeded',
    );
  }
  return context.maxModelLen - context.promptTokens;
}
