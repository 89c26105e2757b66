/**
 * POST /v1/chat/completions: messages → chat template → generate → `chat.completion` (JSON) or
 * `chat.completion.chunk` events (SSE).
 */
import type { Context } from 'hono';
import type { ChatMessage, GenerateOutput } from '../../engine/inference-service.ts';
import type { ApiDeps, ApiEnv } from '../context.ts';
import { readJsonBody } from '../request-body.ts';
import { openAIEventStream } from '../sse.ts';
import { abortedByServer, collectOutputs, startGeneration, type CollectedOutput } from './generation.ts';
import { toChatLogprobs, tokenRenderer, type ChatLogprobs, type TokenRenderer } from './logprobs.ts';
import { requireServedModel } from './models.ts';
import { newResponseId, responseHead, toOpenAIUsage, unixSeconds, type OpenAIUsage, type ResponseMeta } from './response.ts';
import { toSamplingParams } from './sampling.ts';
import { chatCompletionRequestSchema, type ChatMessageInput } from './schemas.ts';
import { parseRequest } from './validation.ts';

interface ChatCompletion extends ResponseMeta {
  object: 'chat.completion';
  choices: Array<{
    index: number;
    message: { role: 'assistant'; content: string; refusal: null };
    logprobs: ChatLogprobs | null;
    finish_reason: CollectedOutput['finishReason'];
    /** vLLM: the stop string or token id that ended generation, else null. */
    stop_reason: string | number | null;
  }>;
  usage: OpenAIUsage;
}

interface ChatChunkChoice {
  index: number;
  delta: { role?: 'assistant'; content?: string };
  logprobs: ChatLogprobs | null;
  finish_reason: CollectedOutput['finishReason'] | null;
  stop_reason?: string | number | null;
}

interface ChatCompletionChunk extends ResponseMeta {
  object: 'chat.completion.chunk';
  choices: ChatChunkChoice[];
  /** Present only with stream_options.include_usage: null on every chunk but the last. */
  usage?: OpenAIUsage | null;
}

export function chatCompletionsHandler(deps: ApiDeps) {
  const { service } = deps;
  return async (c: Context<ApiEnv>): Promise<Response> => {
    const request = parseRequest(chatCompletionRequestSchema, await readJsonBody(c));
    requireServedModel(service.model, request.model);

    const { promptTokenIds } = service.renderChat(request.messages.map(toChatMessage), {
      addGenerationPrompt: request.add_generation_prompt ?? true,
      templateKwargs: request.chat_template_kwargs ?? undefined,
    });
    // OpenAI: `logprobs: true` alone returns the chosen tokens' logprobs with no alternatives.
    const logprobs = request.logprobs === true ? (request.top_logprobs ?? 0) : null;
    const params = toSamplingParams(request, {
      promptTokens: promptTokenIds.length,
      maxModelLen: service.model.maxModelLen,
      defaultMaxTokens: null,
      logprobs,
      promptParam: 'messages',
    });

    const id = newResponseId('chatcmpl');
    const clientSignal = c.get('clientSignal');
    const outputs = await startGeneration(service, { requestId: id, promptTokenIds, params, priority: request.priority ?? 0, signal: clientSignal });
    const meta: ResponseMeta = { id, created: unixSeconds(), model: service.model.id, system_fingerprint: deps.systemFingerprint };
    const tokens = tokenRenderer(service, request.return_tokens_as_token_ids ?? false);

    if (request.stream === true) {
      const includeUsage = request.stream_options?.include_usage === true;
      const chunks = chatChunks(outputs, { meta, tokens, wantLogprobs: logprobs !== null, includeUsage, clientSignal });
      return openAIEventStream(c, chunks, { clientSignal, logger: deps.logger, requestId: c.get('requestId') });
    }
    return c.json(chatCompletion(await collectOutputs(outputs), meta, tokens, logprobs !== null));
  };
}

/** Text parts are joined with newlines (what vLLM does for text-only content) so every template sees a string. */
function toChatMessage(message: ChatMessageInput): ChatMessage {
  const content = Array.isArray(message.content) ? message.content.map((part) => part.text ?? '').join('\n') : (message.content ?? null);
  const result: ChatMessage = { role: message.role, content };
  if (message.name !== null && message.name !== undefined) result.name = message.name;
  if (message.tool_calls !== null && message.tool_calls !== undefined) result.tool_calls = message.tool_calls;
  if (message.tool_call_id !== null && message.tool_call_id !== undefined) result.tool_call_id = message.tool_call_id;
  return result;
}

function chatCompletion(output: CollectedOutput, meta: ResponseMeta, tokens: TokenRenderer, wantLogprobs: boolean): ChatCompletion {
  return {
    ...responseHead(meta, 'chat.completion'),
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: output.text, refusal: null },
        logprobs: wantLogprobs ? toChatLogprobs(output.logprobs, tokens) : null,
        finish_reason: output.finishReason,
        stop_reason: output.stopReason,
      },
    ],
    usage: toOpenAIUsage(output.usage),
  };
}

interface ChunkOptions {
  meta: ResponseMeta;
  tokens: TokenRenderer;
  wantLogprobs: boolean;
  includeUsage: boolean;
  clientSignal: AbortSignal;
}

/**
 * OpenAI's chunk sequence: a first chunk with the role and empty content, content deltas, a last
 * choice chunk with an empty delta and the finish_reason, then (include_usage) a usage chunk with
 * no choices.
 */
async function* chatChunks(outputs: AsyncIterable<GenerateOutput>, options: ChunkOptions): AsyncGenerator<ChatCompletionChunk> {
  const { meta, tokens, includeUsage } = options;
  const chunk = (choice: ChatChunkChoice): ChatCompletionChunk => ({
    ...responseHead(meta, 'chat.completion.chunk'),
    choices: [choice],
    ...(includeUsage ? { usage: null } : {}),
  });

  yield chunk({ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null });
  for await (const output of outputs) {
    if (output.finishReason === 'abort') {
      if (options.clientSignal.aborted) return;
      throw abortedByServer();
    }
    const logprobs = options.wantLogprobs && output.logprobs?.length ? toChatLogprobs(output.logprobs, tokens) : null;
    // Text may be '' while a stop string is pending; a chunk still goes out when it carries logprobs.
    if (output.text !== '' || logprobs !== null) {
      yield chunk({ index: 0, delta: { content: output.text }, logprobs, finish_reason: null });
    }
    if (output.finishReason !== null) {
      yield chunk({ index: 0, delta: {}, logprobs: null, finish_reason: output.finishReason, stop_reason: output.stopReason ?? null });
      if (includeUsage) yield { ...responseHead(meta, 'chat.completion.chunk'), choices: [], usage: toOpenAIUsage(output.usage) };
      return;
    }
  }
  throw new Error('inference service ended a generation without a finish reason');
}
