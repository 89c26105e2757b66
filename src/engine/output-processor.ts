/**
 * Per-request output state: turns the tokens a step appended into the text the client sees.
 *
 * Incremental detokenization and stop-string matching live here, off the scheduler, because they are
 * text-level concerns (vLLM's output processor). The engine asks `onTokens` after each step and, when a
 * stop string matched, ends the request in the scheduler before the next step is scheduled.
 */
import type { GenerateOutput, TokenLogprob, Usage } from './inference-service.ts';
import type { Request } from './request.ts';
import { finishReasonOf, isFinished } from './request.ts';
import type { SampledToken } from '../model/runner.ts';
import { IncrementalDetokenizer, StopStringMatcher } from '../tokenizer/index.ts';
import type { TokenDecoder } from '../tokenizer/index.ts';

export class RequestOutputState {
  readonly request: Request;
  readonly #detokenizer: IncrementalDetokenizer;
  readonly #stops: StopStringMatcher;

  constructor(request: Request, decoder: TokenDecoder) {
    this.request = request;
    this.#detokenizer = new IncrementalDetokenizer(decoder, {
      skipSpecialTokens: request.params.skipSpecialTokens,
      promptTokenIds: Array.from(request.promptTokenIds.subarray(Math.max(0, request.numPromptTokens - 8))),
    });
    this.#stops = new StopStringMatcher(request.params.stop);
  }

  /**
   * Text for the tokens appended this step. Returns the output to send and, when a stop string
   * completed, that string (the caller then finishes the request as stopped).
   */
  onTokens(newTokenIds: readonly number[], sampled: readonly (SampledToken | null)[]): { output: GenerateOutput; stopString: string | null } {
    let text = '';
    for (const id of newTokenIds) text += this.#detokenizer.push(id);
    const finishedByToken = isFinished(this.request.status);
    if (finishedByToken) text += this.#detokenizer.flush();
    const match = this.#stops.push(text);
    let emitted = match.text;
    if (match.stop === null && finishedByToken) emitted += this.#stops.flush();

    const logprobs = this.#logprobs(newTokenIds, sampled);
    const stopString = match.stop;
    const finishReason = stopString !== null ? 'stop' : finishReasonOf(this.request.status);
    return {
      output: {
        text: emitted,
        tokenIds: [...newTokenIds],
        ...(logprobs ? { logprobs } : {}),
        finishReason,
        stopReason: stopString ?? this.request.stopReason,
        usage: this.usage(),
      },
      stopString,
    };
  }

  /** The last output of a request that ended outside a step (abort, device failure). */
  finalOutput(): GenerateOutput {
    return {
      text: '',
      tokenIds: [],
      finishReason: finishReasonOf(this.request.status) ?? 'abort',
      stopReason: null,
      usage: this.usage(),
    };
  }

  usage(): Usage {
    return {
      promptTokens: this.request.numPromptTokens,
      completionTokens: this.request.numOutputTokens,
      cachedPromptTokens: this.request.numCachedTokens,
    };
  }

  #logprobs(newTokenIds: readonly number[], sampled: readonly (SampledToken | null)[]): TokenLogprob[] | undefined {
    if (this.request.params.logprobs === null) return undefined;
    return newTokenIds.map((tokenId, i) => {
      const s = sampled[i];
      return { tokenId, logprob: s?.logprob ?? Number.NaN, top: s?.top ?? [] };
    });
  }
}
