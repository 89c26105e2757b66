/**
 * POST /v1/chat/completions: messages (+ tools) → chat template → n choices → `chat.completion` (JSON)
 * or `chat.completion.chunk` events (SSE), with tool calls read from each choice's text.
 */
import type { Context } from 'hono';
import type { ChatMessage, RenderChatOptions, Usage } from '../../engine/inference-service.ts';
import type { ApiDeps, ApiEnv } from '../context.ts';
import { readJsonBody } from '../request-body.ts';
import { openAIEventStream } from '../sse.ts';
import { choicesPerPrompt, collectChoices, interleaveChoices, startChoices, totalUsage, type RunningChoices } from './choices.ts';
import { abortedByServer, type CollectedOutput } from './generation.ts';
import { toChatLogprobs, tokenRenderer, type ChatLogprobs, type TokenRenderer } from './logprobs.ts';
import { requireServedModel } from './models.ts';
import { newResponseId, responseHead, toOpenAIUsage, unixSeconds, type OpenAIUsage, type ResponseMeta } from './response.ts';
import { toSamplingParams, truncatePrompt } from './sampling.ts';
import { chatCompletionRequestSchema, type ChatMessageInput } from './schemas.ts';
import { planTools, readToolCalls, StreamingToolCalls, type OpenAIToolCall, type OpenAIToolCallDelta, type StreamedDelta, type ToolPlan } from './tool-calls.ts';
import { parseRequest } from './validation.ts';

type ChatFinishReason = CollectedOutput['finishReason'] | 'tool_calls';

interface ChatCompletionMessage {
  role: 'assistant';
  content: string | null;
  refusal: null;
  /** Present only when the model called tools. */
  tool_calls?: OpenAIToolCall[];
}

interface ChatCompletion extends ResponseMeta {
  object: 'chat.completion';
  choices: Array<{
    index: number;
    message: ChatCompletionMessage;
    logprobs: ChatLogprobs | null;
    finish_reason: ChatFinishReason;
    /** vLLM: the stop string or token id that ended generation, else null. */
    stop_reason: string | number | null;
  }>;
  usage: OpenAIUsage;
}

interface ChatChunkChoice {
  index: number;
  delta: { role?: 'assistant'; content?: string; tool_calls?: OpenAIToolCallDelta[] };
  logprobs: ChatLogprobs | null;
  finish_reason: ChatFinishReason | null;
  stop_reason?: string | number | null;
}

interface ChatCompletionChunk extends ResponseMeta {
  object: 'chat.completion.chunk';
  choices: ChatChunkChoice[];
  /** include_usage: null on every chunk but the last; continuous_usage_stats: the usage so far on every chunk. */
  usage?: OpenAIUsage | null;
}

export function chatCompletionsHandler(deps: ApiDeps) {
  const { service } = deps;
  return async (c: Context<ApiEnv>): Promise<Response> => {
    const request = parseRequest(chatCompletionRequestSchema, await readJsonBody(c));
    requireServedModel(service.model, request.model);
    const n = choicesPerPrompt(request.n, deps.maxN);

    const tools = planTools(request, request.messages.map(toChatMessage), service, deps.toolCallParser);
    const continueFinalMessage = request.continue_final_message === true;
    const renderOptions: RenderChatOptions = {
      // continue_final_message continues the last message instead of starting a new turn.
      addGenerationPrompt: request.add_generation_prompt ?? !continueFinalMessage,
      templateKwargs: request.chat_template_kwargs ?? undefined,
    };
    if (continueFinalMessage) renderOptions.continueFinalMessage = true;
    if (tools.templateTools !== undefined) renderOptions.tools = tools.templateTools;
    const clientSignal = c.get('clientSignal');
    const rendered = await service.renderChat(tools.messages, renderOptions, { signal: clientSignal });
    const promptTokenIds = truncatePrompt(rendered.promptTokenIds, request.truncate_prompt_tokens, service.model.maxModelLen);

    // OpenAI: `logprobs: true` alone returns the chosen tokens' logprobs with no alternatives.
    const logprobs = request.logprobs === true ? (request.top_logprobs ?? 0) : null;
    const params = toSamplingParams(request, {
      promptTokens: promptTokenIds.length,
      maxModelLen: service.model.maxModelLen,
      defaultMaxTokens: null,
      logprobs,
      promptParam: 'messages',
      vocabSize: service.model.vocabSize ?? null,
    });

    const id = newResponseId('chatcmpl');
    const choices = await startChoices(service, {
      id,
      prompts: [{ promptTokenIds, params }],
      n,
      clientSeeded: request.seed !== null && request.seed !== undefined,
      priority: request.priority ?? 0,
      clientSignal,
    });
    const meta: ResponseMeta = { id, created: unixSeconds(), model: service.model.id, system_fingerprint: deps.systemFingerprint };
    const format: ChoiceFormat = {
      tokens: tokenRenderer(service, request.return_tokens_as_token_ids ?? false),
      wantLogprobs: logprobs !== null,
      toolParsing: tools.parsing,
    };

    if (request.stream === true) {
      const chunks = chatChunks(choices, {
        ...format,
        meta,
        promptLength: promptTokenIds.length,
        includeUsage: request.stream_options?.include_usage === true,
        continuousUsage: request.stream_options?.continuous_usage_stats === true,
        clientSignal,
      });
      return openAIEventStream(c, chunks, { clientSignal, logger: deps.logger, requestId: c.get('requestId') });
    }
    const outputs = await collectChoices(choices);
    const completion: ChatCompletion = {
      ...responseHead(meta, 'chat.completion'),
      choices: outputs.map((output, index) => chatChoice(output, index, format)),
      usage: toOpenAIUsage(totalUsage(outputs.map((output) => output.usage), [promptTokenIds.length], n)),
    };
    return c.json(completion);
  };
}

/** Text parts are joined with newlines (what vLLM does for text-only content) so every template sees a string. */
export function toChatMessage(message: ChatMessageInput): ChatMessage {
  const content = Array.isArray(message.content) ? message.content.map((part) => part.text ?? '').join('\n') : (message.content ?? null);
  const result: ChatMessage = { role: message.role, content };
  if (message.name !== null && message.name !== undefined) result.name = message.name;
  if (message.tool_calls !== null && message.tool_calls !== undefined) result.tool_calls = message.tool_calls;
  if (message.tool_call_id !== null && message.tool_call_id !== undefined) result.tool_call_id = message.tool_call_id;
  return result;
}

interface ChoiceFormat {
  tokens: TokenRenderer;
  wantLogprobs: boolean;
  toolParsing: ToolPlan['parsing'];
}

function chatChoice(output: CollectedOutput, index: number, format: ChoiceFormat): ChatCompletion['choices'][number] {
  const message: ChatCompletionMessage = { role: 'assistant', content: output.text, refusal: null };
  let finishReason: ChatFinishReason = output.finishReason;
  if (format.toolParsing !== null) {
    const { content, calls } = readToolCalls(output.text, format.toolParsing);
    if (calls.length > 0) {
      message.content = content;
      message.tool_calls = calls;
      // A call cut off by max_tokens does not parse, so calls here are complete; 'length' stays 'length'.
      if (finishReason === 'stop') finishReason = 'tool_calls';
    }
  }
  return {
    index,
    message,
    logprobs: format.wantLogprobs ? toChatLogprobs(output.logprobs, format.tokens) : null,
    finish_reason: finishReason,
    stop_reason: output.stopReason,
  };
}

interface ChunkOptions extends ChoiceFormat {
  meta: ResponseMeta;
  promptLength: number;
  includeUsage: boolean;
  continuousUsage: boolean;
  clientSignal: AbortSignal;
}

/**
 * OpenAI's chunk sequence, per choice: a first chunk with the role and empty content, content (or
 * tool-call) deltas, a last chunk with an empty delta and the finish_reason; choices interleave as
 * they produce. Then (include_usage) a usage chunk with no choices.
 */
async function* chatChunks(choices: RunningChoices, options: ChunkOptions): AsyncGenerator<ChatCompletionChunk> {
  const { meta, tokens, includeUsage, continuousUsage } = options;
  const total = choices.streams.length;
  const usages = new Array<Usage | undefined>(total);
  const usageSoFar = () => toOpenAIUsage(totalUsage(usages, [options.promptLength], choices.n));
  const chunk = (choice: ChatChunkChoice): ChatCompletionChunk => ({
    ...responseHead(meta, 'chat.completion.chunk'),
    choices: [choice],
    ...(continuousUsage ? { usage: usageSoFar() } : includeUsage ? { usage: null } : {}),
  });
  const toolReaders = options.toolParsing === null ? null : Array.from({ length: total }, () => new StreamingToolCalls(options.toolParsing!));
  const finished = new Array<boolean>(total).fill(false);

  for (let index = 0; index < total; index++) yield chunk({ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null });
  for await (const { index, output } of interleaveChoices(choices)) {
    if (output.finishReason === 'abort') {
      if (options.clientSignal.aborted) return;
      throw abortedByServer();
    }
    usages[index] = output.usage;
    const isLast = output.finishReason !== null;
    const logprobs = options.wantLogprobs && output.logprobs?.length ? toChatLogprobs(output.logprobs, tokens) : null;
    const reader = toolReaders?.[index];
    // Text may be '' while a stop string (or a possible tool-call tag) is pending.
    const deltas: StreamedDelta[] = reader ? reader.push(output.text, isLast) : output.text !== '' ? [{ content: output.text }] : [];
    // A chunk still goes out when it carries logprobs.
    if (deltas.length === 0 && logprobs !== null) deltas.push({ content: '' });
    for (const [position, delta] of deltas.entries()) {
      yield chunk({ index, delta, logprobs: position === 0 ? logprobs : null, finish_reason: null });
    }
    if (isLast) {
      finished[index] = true;
      const finishReason = reader !== undefined && reader.count > 0 && output.finishReason === 'stop' ? 'tool_calls' : output.finishReason;
      yield chunk({ index, delta: {}, logprobs: null, finish_reason: finishReason, stop_reason: output.stopReason ?? null });
    }
  }
  if (!finished.every(Boolean)) throw new Error('inference service ended a generation without a finish reason');
  if (includeUsage) yield { ...responseHead(meta, 'chat.completion.chunk'), choices: [], usage: usageSoFar() };
}
