/**
 * POST /v1/completions (the legacy text API): prompt(s) → tokens → n choices per prompt →
 * `text_completion` (JSON, or SSE chunks of the same object type). Choice i of prompt p has index
 * p × n + i, as OpenAI numbers them.
 */
import type { Context } from 'hono';
import type { InferenceService, Usage } from '../../engine/inference-service.ts';
import type { ApiDeps, ApiEnv } from '../context.ts';
import { invalidRequest } from '../errors.ts';
import { readJsonBody } from '../request-body.ts';
import { openAIEventStream } from '../sse.ts';
import { choicesPerPrompt, collectChoices, interleaveChoices, startChoices, totalUsage, type PromptToRun, type RunningChoices } from './choices.ts';
import { abortedByServer, type CollectedOutput } from './generation.ts';
import { toCompletionLogprobs, tokenRenderer, type CompletionLogprobs, type TokenRenderer } from './logprobs.ts';
import { requireServedModel } from './models.ts';
import { newResponseId, responseHead, toOpenAIUsage, unixSeconds, type OpenAIUsage, type ResponseMeta } from './response.ts';
import { toSamplingParams, truncatePrompt } from './sampling.ts';
import { completionRequestSchema, type CompletionPrompt, type CompletionRequest } from './schemas.ts';
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
  /** Streaming: present only with stream_options (include_usage: null on all but the usage chunk; continuous_usage_stats: on every chunk). */
  usage?: OpenAIUsage | null;
}

/** One prompt, tokenized, with the text `echo` puts in front of its choices. */
interface PreparedPrompt extends PromptToRun {
  echoText: string;
}

export function completionsHandler(deps: ApiDeps) {
  const { service } = deps;
  return async (c: Context<ApiEnv>): Promise<Response> => {
    const request = parseRequest(completionRequestSchema, await readJsonBody(c));
    requireServedModel(service.model, request.model);
    const n = choicesPerPrompt(request.n, deps.maxN);
    const clientSignal = c.get('clientSignal');
    const prompts = await Promise.all(
      request.prompt.map((prompt, index) => preparePrompt(service, request, prompt, request.prompt.length > 1 ? `prompt[${index}]` : 'prompt', clientSignal)),
    );

    const id = newResponseId('cmpl');
    const choices = await startChoices(service, {
      id,
      prompts,
      n,
      clientSeeded: request.seed !== null && request.seed !== undefined,
      priority: request.priority ?? 0,
      clientSignal,
    });
    const meta: ResponseMeta = { id, created: unixSeconds(), model: service.model.id, system_fingerprint: deps.systemFingerprint };
    const tokens = tokenRenderer(service, request.return_tokens_as_token_ids ?? false);
    const wantLogprobs = request.logprobs !== null && request.logprobs !== undefined;
    const echoTexts = prompts.map((prompt) => (request.echo === true ? prompt.echoText : ''));
    const promptLengths = prompts.map((prompt) => prompt.promptTokenIds.length);

    if (request.stream === true) {
      const chunks = completionChunks(choices, {
        meta,
        tokens,
        wantLogprobs,
        echoTexts,
        promptLengths,
        includeUsage: request.stream_options?.include_usage === true,
        continuousUsage: request.stream_options?.continuous_usage_stats === true,
        clientSignal,
      });
      return openAIEventStream(c, chunks, { clientSignal, logger: deps.logger, requestId: c.get('requestId') });
    }
    const outputs = await collectChoices(choices);
    const completion: TextCompletion = {
      ...responseHead(meta, 'text_completion'),
      choices: outputs.map((output, index) => ({
        index,
        text: echoTexts[Math.floor(index / n)]! + output.text,
        logprobs: wantLogprobs ? toCompletionLogprobs(output.logprobs, tokens, 0).logprobs : null,
        finish_reason: output.finishReason,
        stop_reason: output.stopReason,
      })),
      usage: toOpenAIUsage(totalUsage(outputs.map((output) => output.usage), promptLengths, n)),
    };
    return c.json(completion);
  };
}

async function preparePrompt(service: InferenceService, request: CompletionRequest, prompt: CompletionPrompt, param: string, signal: AbortSignal): Promise<PreparedPrompt> {
  const encoded = prompt.kind === 'text' ? await service.encode(prompt.text, { addSpecialTokens: request.add_special_tokens ?? true, signal }) : prompt.tokenIds;
  const promptTokenIds = truncatePrompt(encoded, request.truncate_prompt_tokens, service.model.maxModelLen);
  if (promptTokenIds.length === 0) throw invalidRequest(`The prompt is empty: '${param}' produced no tokens.`, param, 'invalid_value');
  const params = toSamplingParams(request, {
    promptTokens: promptTokenIds.length,
    maxModelLen: service.model.maxModelLen,
    defaultMaxTokens: DEFAULT_COMPLETION_MAX_TOKENS,
    logprobs: request.logprobs ?? null,
    promptParam: 'prompt',
    vocabSize: service.model.vocabSize ?? null,
  });
  // echo repeats the prompt as sent; token prompts, and prompts truncate_prompt_tokens cut, are shown as the
  // text of the tokens the model saw (special tokens included, as vLLM does).
  const echoText =
    request.echo !== true ? '' : prompt.kind === 'text' && promptTokenIds === encoded ? prompt.text : service.decode(promptTokenIds, { skipSpecialTokens: false });
  return { promptTokenIds, params, echoText };
}

interface ChunkOptions {
  meta: ResponseMeta;
  tokens: TokenRenderer;
  wantLogprobs: boolean;
  /** Per prompt: the text echoed before its choices' output ('' without echo). */
  echoTexts: string[];
  promptLengths: number[];
  includeUsage: boolean;
  continuousUsage: boolean;
  clientSignal: AbortSignal;
}

/**
 * Per choice: (echo) the prompt, text chunks, then a chunk with empty text and the finish_reason;
 * choices interleave as they produce. Then (include_usage) a usage chunk with no choices.
 */
async function* completionChunks(choices: RunningChoices, options: ChunkOptions): AsyncGenerator<TextCompletion> {
  const { meta, tokens, includeUsage, continuousUsage, echoTexts } = options;
  const { n } = choices;
  const total = choices.streams.length;
  const usages = new Array<Usage | undefined>(total);
  const usageSoFar = () => toOpenAIUsage(totalUsage(usages, options.promptLengths, n));
  const chunk = (choice: CompletionChoice): TextCompletion => ({
    ...responseHead(meta, 'text_completion'),
    choices: [choice],
    ...(continuousUsage ? { usage: usageSoFar() } : includeUsage ? { usage: null } : {}),
  });
  // text_offset continues across chunks, as if the whole completion had been returned at once.
  const textOffsets = new Array<number>(total).fill(0);
  const finished = new Array<boolean>(total).fill(false);

  for (let index = 0; index < total; index++) {
    const echo = echoTexts[Math.floor(index / n)]!;
    if (echo !== '') yield chunk({ index, text: echo, logprobs: null, finish_reason: null, stop_reason: null });
  }
  for await (const { index, output } of interleaveChoices(choices)) {
    if (output.finishReason === 'abort') {
      if (options.clientSignal.aborted) return;
      throw abortedByServer();
    }
    usages[index] = output.usage;
    let logprobs: CompletionLogprobs | null = null;
    if (options.wantLogprobs && output.logprobs?.length) {
      const converted = toCompletionLogprobs(output.logprobs, tokens, textOffsets[index]!);
      logprobs = converted.logprobs;
      textOffsets[index] = converted.nextOffset;
    }
    if (output.text !== '' || logprobs !== null) {
      yield chunk({ index, text: output.text, logprobs, finish_reason: null, stop_reason: null });
    }
    if (output.finishReason !== null) {
      finished[index] = true;
      yield chunk({ index, text: '', logprobs: null, finish_reason: output.finishReason, stop_reason: output.stopReason ?? null });
    }
  }
  if (!finished.every(Boolean)) throw new Error('inference service ended a generation without a finish reason');
  if (includeUsage) yield { ...responseHead(meta, 'text_completion'), choices: [], usage: usageSoFar() };
}
