/**
 * Starting a generation and reading its outputs, shared by the chat and completions handlers.
 */
import type {
  FinishReason,
  GenerateOutput,
  GenerateRequest,
  InferenceService,
  TokenLogprob,
  Usage,
} from '../../engine/inference-service.ts';
import { ApiError } from '../errors.ts';

/**
 * Calls service.generate and waits for the first output before the caller commits to a response,
 * so that errors raised up front (overload, a prompt the engine refuses) still become proper HTTP
 * statuses instead of a 200 stream carrying an error event. vLLM's streams also start only once
 * the first output exists.
 */
export async function startGeneration(service: InferenceService, request: GenerateRequest): Promise<AsyncIterable<GenerateOutput>> {
  const iterator = service.generate(request)[Symbol.asyncIterator]();
  const first = await iterator.next();
  return replayFrom(first, iterator);
}

async function* replayFrom(first: IteratorResult<GenerateOutput>, iterator: AsyncIterator<GenerateOutput>): AsyncGenerator<GenerateOutput> {
  let exhausted = false;
  try {
    for (let result = first; !result.done; result = await iterator.next()) yield result.value;
    exhausted = true;
  } finally {
    // The consumer stopped early (client gone): let the service release what it holds.
    if (!exhausted) await iterator.return?.();
  }
}

/** A finished generation, every increment merged. */
export interface CollectedOutput {
  text: string;
  tokenIds: number[];
  logprobs: TokenLogprob[];
  finishReason: Exclude<FinishReason, 'abort'>;
  stopReason: string | number | null;
  usage: Usage;
}

export async function collectOutputs(outputs: AsyncIterable<GenerateOutput>): Promise<CollectedOutput> {
  let text = '';
  const tokenIds: number[] = [];
  const logprobs: TokenLogprob[] = [];
  for await (const output of outputs) {
    text += output.text;
    tokenIds.push(...output.tokenIds);
    if (output.logprobs) logprobs.push(...output.logprobs);
    if (output.finishReason === 'abort') throw abortedByServer();
    if (output.finishReason !== null) {
      return { text, tokenIds, logprobs, finishReason: output.finishReason, stopReason: output.stopReason ?? null, usage: output.usage };
    }
  }
  throw new Error('inference service ended a generation without a finish reason');
}

/**
 * An 'abort' finish normally means the client left (then nobody reads this); when the client is
 * still there, the server ended the request (e.g. shutting down), which is a 503 to retry.
 */
export function abortedByServer(): ApiError {
  return new ApiError(503, 'The request was aborted by the server before it finished; please retry.', { code: 'request_aborted' });
}
