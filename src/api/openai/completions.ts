/**
 * POST /v1/completions (the legacy text API): prompt → tokens → generate → `text_completion`
 * (JSON, or SSE chunks of the same object type).
 */
import type { Context } from 'hono';
import type { GenerateOutput } from '../../engine/inference-service.ts';
import type { ApiDeps, ApiEnv } from '../context.ts';
import { invalidRequest } from '../errors.ts';
import { readJsonBody } from '../request-body.ts';
import { openAIEventStream } from '../sse.ts';
import { abortedByServer, collectOutputs, startGeneration, type CollectedOutput } from './generation.ts';
import { toCompletionLogprobs, tokenRenderer, type CompletionLogprobs, type TokenRenderer } from './logprobs.ts';
import { requireServedModel } from './models.ts';
import { newResponseId, responseHead, toOpenAIUsage, unixSeconds, type OpenAIUsage, type ResponseMeta } from './response.ts';
import { toSamplingParams } from './sampling.ts';
import { completionRequestSchema } from './schemas.ts';
import { parseRequest } from './validation.ts';

/** OpenAI's default for the legacy completions endpoint. */
const DEFAULT_COMPLETION_MAX_TOKENS = 16;

interface CompletionChoice {
  index: number;
  text: string;
  logprobs: CompletionLogprobs | null;
  finish_reason: CollectedOutput['finishReason'] | null;
  /** vLLM: the stop string or token id that ended generation, else null. */
  stop_reason: string | number | null;
}

interface TextCompletion extends ResponseMeta {
  object: 'text_completion';
  choices: CompletionChoice[];
  /** Streaming: present only with stream_options.include_usage, null on all but the usage chunk. */
  usage?: OpenAIUsage | null;
}

export function completionsHandler(deps: ApiDeps) {
  const { service } = deps;
  return async (c: Context<ApiEnv>): Promise<Response> => {
    const request = parseRequest(completionRequestSchema, await readJsonBody(c));
    requireServedModel(service.model, request.model);

    const promptTokenIds = request.prompt.kind === 'text' ? service.encode(request.prompt.text) : request.prompt.tokenIds;
    if (promptTokenIds.length === 0) throw invalidRequest('The prompt is empty: it produced no tokens.', 'prompt', 'invalid_value');
    const logprobs = request.logprobs ?? null;
    const params = toSamplingParams(request, {
      promptTokens: promptTokenIds.length,
      maxModelLen: service.model.maxModelLen,
      defaultMaxTokens: DEFAULT_COMPLETION_MAX_TOKENS,
      logprobs,
      promptParam: 'prompt',
    });

    const id = newResponseId('cmpl');
    const clientSignal = c.get('clientSignal');
    const outputs = await startGeneration(service, { requestId: id, promptTokenIds, params, priority: request.priority ?? 0, signal: clientSignal });
    const meta: ResponseMeta = { id, created: unixSeconds(), model: service.model.id, system_fingerprint: deps.systemFingerprint };
    const tokens = tokenRenderer(service, request.return_tokens_as_token_ids ?? false);

    if (request.stream === true) {
      const includeUsage = request.stream_options?.include_usage === true;
      const chunks = completionChunks(outputs, { meta, tokens, wantLogprobs: logprobs !== null, includeUsage, clientSignal });
      return openAIEventStream(c, chunks, { clientSignal, logger: deps.logger, requestId: c.get('requestId') });
    }
    return c.json(textCompletion(await collectOutputs(outputs), meta, tokens, logprobs !== null));
  };
}

function textCompletion(output: CollectedOutput, meta: ResponseMeta, tokens: TokenRenderer, wantLogprobs: boolean): TextCompletion {
  return {
    ...responseHead(meta, 'text_completion'),
    choices: [
      {
        index: 0,
        text: output.text,
        logprobs: wantLogprobs ? toCompletionLogprobs(output.logprobs, tokens, 0).logprobs : null,
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

/** Text chunks, then a chunk with empty text and the finish_reason, then (include_usage) a usage chunk with no choices. */
async function* completionChunks(outputs: AsyncIterable<GenerateOutput>, options: ChunkOptions): AsyncGenerator<TextCompletion> {
  const { meta, tokens, includeUsage } = options;
  const chunk = (choice: CompletionChoice): TextCompletion => ({
    ...responseHead(meta, 'text_completion'),
    choices: [choice],
    ...(includeUsage ? { usage: null } : {}),
  });

  // text_offset continues across chunks, as if the whole completion had been returned at once.
  let textOffset = 0;
  for await (const output of outputs) {
    if (output.finishReason === 'abort') {
      if (options.clientSignal.aborted) return;
      throw abortedByServer();
    }
    let logprobs: CompletionLogprobs | null = null;
    if (options.wantLogprobs && output.logprobs?.length) {
      const converted = toCompletionLogprobs(output.logprobs, tokens, textOffset);
      logprobs = converted.logprobs;
      textOffset = converted.nextOffset;
    }
    if (output.text !== '' || logprobs !== null) {
      yield chunk({ index: 0, text: output.text, logprobs, finish_reason: null, stop_reason: null });
    }
    if (output.finishReason !== null) {
      yield chunk({ index: 0, text: '', logprobs: null, finish_reason: output.finishReason, stop_reason: output.stopReason ?? null });
      if (includeUsage) yield { ...responseHead(meta, 'text_completion'), choices: [], usage: toOpenAIUsage(output.usage) };
      return;
    }
  }
  throw new Error('inference service ended a generation without a finish reason');
}
