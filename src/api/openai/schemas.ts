/**
 * Request bodies of /v1/chat/completions and /v1/completions, validated with zod.
 *
 * Conventions, all as OpenAI behaves:
 * - unknown fields are ignored (zod objects strip them);
 * - every optional field also accepts an explicit `null` (clients send `"stop": null`);
 * - fields OpenAI defines but Updraft does not implement yet are accepted only at their neutral
 *   value and rejected otherwise with a 400 naming them — silently ignoring e.g. a penalty or a
 *   tool list would return different output than the client asked for.
 *
 * Custom messages may contain `{param}`; the validator replaces it with the parameter's full name.
 */
import { z } from 'zod';
import { MAX_TOP_LOGPROBS } from '../../sampling/params.ts';
import { completionPromptsSchema } from './completion-prompt.ts';
import { guidedDecodingFields, logitBiasSchema, responseFormatSchema } from './logits-fields.ts';
import { checkToolFields, toolFields } from './tool-schemas.ts';

export type { CompletionPrompt } from './completion-prompt.ts';

const unsupported = (what: string) => ({ message: `${what} is not supported yet.`, params: { code: 'unsupported_value' } });

/** Accepts only the value that means "feature off" for a field Updraft does not implement yet. */
function onlyNeutral<T extends z.ZodType>(schema: T, isNeutral: (value: NonNullable<z.output<T>>) => boolean, what: string) {
  return schema.nullish().refine((value) => value === null || value === undefined || isNeutral(value), unsupported(what));
}

const tokenId = z.int().min(0);

/** Fields that map onto SamplingParams and behave the same on both endpoints. */
const samplingFields = {
  model: z.string().nullish(),
  stream: z.boolean().nullish(),
  /** continuous_usage_stats (vLLM): usage on every chunk. */
  stream_options: z.object({ include_usage: z.boolean().nullish(), continuous_usage_stats: z.boolean().nullish() }).nullish(),
  max_tokens: z.int().min(1).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  stop: z.union([z.string(), z.array(z.string().min(1)).max(4)]).nullish(),
  seed: z.int().nullish(),
  user: z.string().nullish(),
  /** Choices per prompt; the upper limit is the server's --max-n (checked by the handlers). */
  n: z.int().min(1).nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  logit_bias: logitBiasSchema.nullish(),
  response_format: responseFormatSchema.nullish(),
  ...guidedDecodingFields,

  // vLLM extensions (same names as vLLM's OpenAI server).
  /** -1 and 0 both mean off. */
  top_k: z.int().min(-1).nullish(),
  min_p: z.number().min(0).max(1).nullish(),
  ignore_eos: z.boolean().nullish(),
  min_tokens: z.int().min(0).nullish(),
  stop_token_ids: z.array(tokenId).nullish(),
  skip_special_tokens: z.boolean().nullish(),
  return_tokens_as_token_ids: z.boolean().nullish(),
  /** Lower runs first. */
  priority: z.int().nullish(),
  /** Keep only the prompt's last k tokens (left truncation); -1: the model's max_model_len. */
  truncate_prompt_tokens: z.int().min(-1).refine((k) => k !== 0, "'{param}' must be -1 or at least 1").nullish(),
  repetition_penalty: z.number().gt(0).nullish(),
  use_beam_search: onlyNeutral(z.boolean(), (on) => !on, "'{param}'"),
};

const contentPart = z
  .object({ type: z.string(), text: z.string().nullish() })
  .superRefine((part, ctx) => {
    if (part.type !== 'text') {
      ctx.addIssue({
        code: 'custom',
        path: ['type'],
        message: `Content parts of type '${part.type}' are not supported yet; '{param}' must be 'text'.`,
        params: { code: 'unsupported_value' },
      });
    } else if (typeof part.text !== 'string') {
      ctx.addIssue({ code: 'custom', path: ['text'], message: "Missing required parameter: '{param}'.", params: { code: 'missing_required_parameter' } });
    }
  });

export const CHAT_ROLES = ['system', 'user', 'assistant', 'tool', 'developer'] as const;

const chatMessage = z
  .object({
    role: z.enum(CHAT_ROLES),
    content: z.union([z.string(), z.array(contentPart)]).nullish(),
    name: z.string().nullish(),
    tool_calls: z.array(z.unknown()).nullish(),
    tool_call_id: z.string().nullish(),
  })
  .superRefine((message, ctx) => {
    // Only an assistant turn that calls tools may come without content.
    const mayOmitContent = message.role === 'assistant' && (message.tool_calls?.length ?? 0) > 0;
    if ((message.content === null || message.content === undefined) && !mayOmitContent) {
      ctx.addIssue({ code: 'custom', path: ['content'], message: "Missing required parameter: '{param}'.", params: { code: 'missing_required_parameter' } });
    }
  });

export const chatCompletionRequestSchema = z
  .object({
    ...samplingFields,
    messages: z.array(chatMessage).min(1),
    max_completion_tokens: z.int().min(1).nullish(),
    logprobs: z.boolean().nullish(),
    top_logprobs: z.int().min(0).max(MAX_TOP_LOGPROBS).nullish(),
    // vLLM extensions.
    add_generation_prompt: z.boolean().nullish(),
    /** vLLM: leave the last message open so the model continues it (instead of answering it). */
    continue_final_message: z.boolean().nullish(),
    chat_template_kwargs: z.record(z.string(), z.unknown()).nullish(),
    ...toolFields,
    // Known OpenAI / vLLM fields that would change the output and are not implemented yet.
    functions: onlyNeutral(z.array(z.unknown()), (functions) => functions.length === 0, "'{param}' (function calling)"),
    chat_template: onlyNeutral(z.string(), () => false, "A per-request '{param}'"),
  })
  .superRefine((request, ctx) => {
    if (request.top_logprobs !== null && request.top_logprobs !== undefined && request.logprobs !== true) {
      ctx.addIssue({ code: 'custom', path: ['top_logprobs'], message: "'{param}' requires 'logprobs' to be true.", params: { code: 'invalid_value' } });
    }
    if (request.continue_final_message === true && request.add_generation_prompt === true) {
      ctx.addIssue({
        code: 'custom',
        path: ['continue_final_message'],
        message: "'{param}' and 'add_generation_prompt' cannot both be true.",
        params: { code: 'invalid_value' },
      });
    }
    checkToolFields(request, ctx);
    checkCommonCrossFields(request, ctx);
  });

export type ChatCompletionRequest = z.output<typeof chatCompletionRequestSchema>;
export type ChatMessageInput = ChatCompletionRequest['messages'][number];

export const completionRequestSchema = z
  .object({
    ...samplingFields,
    prompt: completionPromptsSchema,
    /** Legacy logprobs: the chosen token's logprob plus the top N alternatives. */
    logprobs: z.int().min(0).max(MAX_TOP_LOGPROBS).nullish(),
    /** Prepend the prompt to each choice's text. */
    echo: z.boolean().nullish(),
    /** vLLM: add the tokenizer's special tokens (BOS) to text prompts; default true. */
    add_special_tokens: z.boolean().nullish(),
    suffix: onlyNeutral(z.string(), (suffix) => suffix === '', "'{param}'"),
    best_of: onlyNeutral(z.int().min(1), (bestOf) => bestOf === 1, "A '{param}' other than 1"),
  })
  .superRefine((request, ctx) => {
    if (request.echo === true && request.logprobs !== null && request.logprobs !== undefined) {
      // The engine computes logprobs of sampled tokens only, not of the prompt's.
      ctx.addIssue({
        code: 'custom',
        path: ['echo'],
        message: "'{param}' together with 'logprobs' is not supported: the prompt tokens' logprobs are not computed.",
        params: { code: 'unsupported_value' },
      });
    }
    checkCommonCrossFields(request, ctx);
  });

export type CompletionRequest = z.output<typeof completionRequestSchema>;

interface CommonCrossFields {
  stream?: boolean | null;
  stream_options?: unknown;
  min_tokens?: number | null;
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
}

function checkCommonCrossFields(request: CommonCrossFields, ctx: z.RefinementCtx): void {
  if (request.stream_options !== null && request.stream_options !== undefined && request.stream !== true) {
    ctx.addIssue({
      code: 'custom',
      path: ['stream_options'],
      message: "'{param}' is only allowed when 'stream' is true.",
      params: { code: 'invalid_value' },
    });
  }
  const maxTokens = request.max_completion_tokens ?? request.max_tokens;
  if (request.min_tokens !== null && request.min_tokens !== undefined && maxTokens !== null && maxTokens !== undefined && request.min_tokens > maxTokens) {
    ctx.addIssue({
      code: 'custom',
      path: ['min_tokens'],
      message: `'{param}' (${request.min_tokens}) must not exceed the maximum number of tokens (${maxTokens}).`,
      params: { code: 'invalid_value' },
    });
  }
}
