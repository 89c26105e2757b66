/**
 * The server's limits on what one request may ask for (--max-prompt-tokens, --max-output-tokens,
 * --max-stop-length, --max-stop-token-ids), and the checks the service runs before any work: a
 * request over a limit is a 400 naming the field, never a slow path or a crash.
 *
 * Text is bounded before it is tokenized: tokenizing is linear but slow (tens of microseconds per
 * character for some tokenizers, on the event loop), so a prompt that cannot fit is refused by its
 * length alone. No token is longer than the vocabulary's longest token, so a text of more than
 * maxPromptTokens × longestTokenBytes UTF-16 units has more than maxPromptTokens tokens.
 */
import type { GenerateRequest } from './inference-service.ts';
import { ServiceError } from './inference-service.ts';

export interface RequestLimits {
  /** Longest prompt in tokens; null = the context window. */
  maxPromptTokens: number | null;
  /** Most tokens one request may generate; null = the rest of the context window. */
  maxOutputTokens: number | null;
  /** Longest stop string, in characters. */
  maxStopLength: number;
  /** Most stop token ids. */
  maxStopTokenIds: number;
}

export const DEFAULT_REQUEST_LIMITS: Readonly<RequestLimits> = {
  maxPromptTokens: null,
  maxOutputTokens: null,
  maxStopLength: 1024,
  maxStopTokenIds: 256,
};

export interface ModelShape {
  maxModelLen: number;
  /** Token ids at or above this are not in the vocabulary. */
  vocabSize: number;
}

function invalid(message: string, param: string | undefined): ServiceError {
  return new ServiceError('invalid_request', message, param === undefined ? {} : { param });
}

/**
 * The request as it may run: the same object, or a copy whose maxTokens is cut to --max-output-tokens
 * when the client named no limit. Throws ServiceError('invalid_request') for anything over a limit.
 */
export function applyRequestLimits(request: GenerateRequest, limits: RequestLimits, model: ModelShape): GenerateRequest {
  const prompt = request.promptTokenIds;
  const maxPromptTokens = Math.min(limits.maxPromptTokens ?? model.maxModelLen, model.maxModelLen);
  if (prompt.length > maxPromptTokens) {
    throw invalid(`The prompt has ${prompt.length} tokens; this server accepts at most ${maxPromptTokens}.`, undefined);
  }
  for (const id of prompt) {
    if (!Number.isInteger(id) || id < 0 || id >= model.vocabSize) {
      throw invalid(`Token id ${id} is out of vocabulary (the vocabulary has ${model.vocabSize} tokens).`, 'prompt');
    }
  }
  const { params } = request;
  for (const stop of params.stop) {
    if (stop.length > limits.maxStopLength) {
      throw invalid(`A stop string has ${stop.length} characters; this server accepts at most ${limits.maxStopLength}.`, 'stop');
    }
  }
  if (params.stopTokenIds.length > limits.maxStopTokenIds) {
    throw invalid(`'stop_token_ids' has ${params.stopTokenIds.length} entries; this server accepts at most ${limits.maxStopTokenIds}.`, 'stop_token_ids');
  }
  const cap = limits.maxOutputTokens;
  if (cap !== null && params.maxTokens > cap) {
    // A request that names no limit gets the rest of the context (chat); that is cut to the cap. A
    // limit the client named and the server cannot honour is refused, not silently shortened.
    const restOfContext = model.maxModelLen - prompt.length;
    if (params.maxTokens !== restOfContext) {
      throw invalid(`'max_tokens' is ${params.maxTokens}; this server generates at most ${cap} tokens per request.`, 'max_tokens');
    }
    return { ...request, params: { ...params, maxTokens: cap, minTokens: Math.min(params.minTokens, cap) } };
  }
  return request;
}

/** Most UTF-16 units a prompt text of at most `maxPromptTokens` tokens can have. */
export function maxPromptChars(maxPromptTokens: number, longestTokenBytes: number): number {
  return maxPromptTokens * Math.max(1, longestTokenBytes);
}

/** Refuses a text that cannot fit in the prompt limit, before it is tokenized. */
export function checkPromptText(numChars: number, maxChars: number, param: string): void {
  if (numChars > maxChars) {
    throw invalid(`The ${param} is too long: ${numChars} characters cannot fit in this server's prompt limit.`, param);
  }
}
