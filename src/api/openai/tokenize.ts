/**
 * vLLM's POST /tokenize and POST /detokenize.
 *
 * /tokenize takes either `prompt` (text; `add_special_tokens` default true) or `messages` (rendered
 * with the chat template exactly as /v1/chat/completions would: `add_generation_prompt` default true,
 * `continue_final_message`, `chat_template_kwargs`, `tools`) and answers
 * `{count, max_model_len, tokens}` (+ `token_strs` with `return_token_strs`). /detokenize takes
 * `tokens` and answers `{prompt}`.
 */
import type { Context } from 'hono';
import { z } from 'zod';
import type { RenderChatOptions } from '../../engine/inference-service.ts';
import type { ApiDeps, ApiEnv } from '../context.ts';
import { readJsonBody } from '../request-body.ts';
import { toChatMessage } from './chat.ts';
import { requireServedModel } from './models.ts';
import { chatCompletionRequestSchema } from './schemas.ts';
import { toolSchema } from './tool-schemas.ts';
import { parseRequest } from './validation.ts';

const tokenizeCompletionSchema = z.object({
  model: z.string().nullish(),
  prompt: z.string(),
  add_special_tokens: z.boolean().nullish(),
  return_token_strs: z.boolean().nullish(),
});

/** The chat form reuses the chat request's message validation. */
const chatShape = chatCompletionRequestSchema.shape;
const tokenizeChatSchema = z
  .object({
    model: z.string().nullish(),
    messages: chatShape.messages,
    add_generation_prompt: z.boolean().nullish(),
    continue_final_message: z.boolean().nullish(),
    chat_template_kwargs: chatShape.chat_template_kwargs,
    tools: z.array(toolSchema).nullish(),
    return_token_strs: z.boolean().nullish(),
  })
  .superRefine((request, ctx) => {
    if (request.continue_final_message === true && request.add_generation_prompt === true) {
      ctx.addIssue({
        code: 'custom',
        path: ['continue_final_message'],
        message: "'{param}' and 'add_generation_prompt' cannot both be true.",
        params: { code: 'invalid_value' },
      });
    }
  });

const detokenizeSchema = z.object({
  model: z.string().nullish(),
  tokens: z.array(z.int().min(0)),
});

interface TokenizeResponse {
  count: number;
  max_model_len: number;
  tokens: number[];
  token_strs?: string[];
}

export function tokenizeHandler(deps: ApiDeps) {
  const { service } = deps;
  return async (c: Context<ApiEnv>): Promise<Response> => {
    const body = await readJsonBody(c);
    const isChat = typeof body === 'object' && body !== null && 'messages' in body;
    let tokens: number[];
    let returnTokenStrs: boolean;
    if (isChat) {
      const request = parseRequest(tokenizeChatSchema, body);
      requireServedModel(service.model, request.model);
      const continueFinalMessage = request.continue_final_message === true;
      const options: RenderChatOptions = {
        addGenerationPrompt: request.add_generation_prompt ?? !continueFinalMessage,
        templateKwargs: request.chat_template_kwargs ?? undefined,
      };
      if (continueFinalMessage) options.continueFinalMessage = true;
      if (request.tools !== null && request.tools !== undefined && request.tools.length > 0) options.tools = request.tools;
      tokens = (await service.renderChat(request.messages.map(toChatMessage), options, { signal: c.get('clientSignal') })).promptTokenIds;
      returnTokenStrs = request.return_token_strs === true;
    } else {
      const request = parseRequest(tokenizeCompletionSchema, body);
      requireServedModel(service.model, request.model);
      tokens = await service.encode(request.prompt, { addSpecialTokens: request.add_special_tokens ?? true, signal: c.get('clientSignal') });
      returnTokenStrs = request.return_token_strs === true;
    }
    const response: TokenizeResponse = { count: tokens.length, max_model_len: service.model.maxModelLen, tokens };
    if (returnTokenStrs) response.token_strs = tokens.map((token) => service.tokenText(token));
    return c.json(response);
  };
}

export function detokenizeHandler(deps: ApiDeps) {
  const { service } = deps;
  return async (c: Context<ApiEnv>): Promise<Response> => {
    const request = parseRequest(detokenizeSchema, await readJsonBody(c));
    requireServedModel(service.model, request.model);
    return c.json({ prompt: service.decode(request.tokens) });
  };
}
