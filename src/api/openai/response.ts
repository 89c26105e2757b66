/**
 * Pieces every OpenAI completion response shares: ids, timestamps, usage.
 */
import type { Usage } from '../../engine/inference-service.ts';

/** The fields every completion object and chunk starts with. */
export interface ResponseMeta {
  id: string;
  /** Unix seconds. */
  created: number;
  model: string;
  system_fingerprint: string;
}

/** The shared fields in OpenAI's order (id, object, created, model, …), for readable responses. */
export function responseHead<Kind extends string>(meta: ResponseMeta, object: Kind): ResponseMeta & { object: Kind } {
  return { id: meta.id, object, created: meta.created, model: meta.model, system_fingerprint: meta.system_fingerprint };
}

/** `chatcmpl-…` / `cmpl-…` followed by 32 hex digits, like OpenAI and vLLM. */
export function newResponseId(prefix: 'chatcmpl' | 'cmpl'): string {
  return `${prefix}-${crypto.randomUUID().replaceAll('-', '')}`;
}

export function unixSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

export interface OpenAIUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
}

export function toOpenAIUsage(usage: Usage): OpenAIUsage {
  return {
    prompt_tokens: usage.promptTokens,
    completion_tokens: usage.completionTokens,
    total_tokens: usage.promptTokens + usage.completionTokens,
    prompt_tokens_details: { cached_tokens: usage.cachedPromptTokens },
  };
}
