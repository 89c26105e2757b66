/**
 * What one schedule() hands the model runner, and what updateFromOutput() hands back to the engine.
 *
 * For each scheduled request the runner builds, for i in [0, numScheduledTokens):
 *   position  p = startPos + i
 *   input id     tokenIds[i]
 *   slot         blockIds[floor(p / blockSize)] * blockSize + p % blockSize
 * plus seqLen = startPos + numScheduledTokens, the block table row (blockIds, padded with -1), and, when
 * willSample, a logits row (the request's last token row) with sampleIndex as the sampler's counter.
 * Block 0 is never in a table (the null block): padding tokens may write to slots [0, blockSize).
 */
import type { Request, RequestStatus } from './request.ts';

export interface ScheduledRequest {
  readonly request: Request;
  readonly requestId: string;
  /** request.numComputedTokens when scheduled: this step computes positions [startPos, startPos + numScheduledTokens). */
  readonly startPos: number;
  readonly numScheduledTokens: number;
  /**
   * Token ids at positions [startPos, startPos + numScheduledTokens - numPlaceholderTokens) (zero-copy
   * view; stays valid, tokens are append-only).
   */
  readonly tokenIds: Int32Array;
  /**
   * The last this many positions hold tokens that the previous step samples on the device (async
   * scheduling; 0 or 1): the runner points those rows at that step's output.
   */
  readonly numPlaceholderTokens: number;
  /** request.numPreemptions when scheduled: a result for an earlier incarnation is stale. */
  readonly incarnation: number;
  /** The request's whole block table after this step's allocation. Live view: read it before the next schedule(). */
  readonly blockIds: readonly number[];
  /** Ids appended to the table this step (prefix hits first, then fresh blocks), for runners that keep persistent tables. */
  readonly newBlockIds: readonly number[];
  /** True on the first step after admission (new, or resumed after preemption with a fresh table). */
  readonly isAdmission: boolean;
  /** True when this step reaches the request's last token (including outputs still being sampled): sample from its last row. */
  readonly willSample: boolean;
  /** Index in outputTokenIds of the token sampled this step (outputs so far + placeholders); the per-request sampler counter. */
  readonly sampleIndex: number;
}

export interface SchedulerOutput {
  /** Increments per schedule(). */
  readonly stepId: number;
  /** Requests with exactly one token to compute (decodes) first, then prefill chunks, then admissions. */
  readonly scheduled: readonly ScheduledRequest[];
  /** Sum of numScheduledTokens (≤ maxNumBatchedTokens). */
  readonly numScheduledTokens: number;
  /** Entries with willSample (the runner produces one sampled id for each). */
  readonly numSampled: number;
  /** Preempted during this schedule(): their blocks are gone; drop any per-request runner state. */
  readonly preemptedRequestIds: readonly string[];
  /** Finished (stopped, length, aborted) since the previous schedule(): drop any per-request runner state. */
  readonly finishedRequestIds: readonly string[];
}

/** What updateFromOutput reports for each request that sampled a token or finished in that step. */
export interface RequestUpdate {
  readonly request: Request;
  /** Tokens appended this step (zero or one today; a list so speculative decoding fits later). */
  readonly newTokenIds: readonly number[];
  /** The request's status after the step; a FINISHED_* status means its blocks are already freed. */
  readonly status: RequestStatus;
  readonly finished: boolean;
}

/** Accumulates one step's entries; removing an entry (its request got preempted) returns its tokens to the budget. */
export class StepBuilder {
  tokenBudget: number;
  readonly #entries = new Map<Request, ScheduledRequest>();

  constructor(tokenBudget: number) {
    this.tokenBudget = tokenBudget;
  }

  has(request: Request): boolean {
    return this.#entries.has(request);
  }

  get(request: Request): ScheduledRequest | undefined {
    return this.#entries.get(request);
  }

  add(request: Request, numScheduledTokens: number, blockIds: readonly number[], newBlockIds: readonly number[], isAdmission: boolean): void {
    if (numScheduledTokens < 1 || numScheduledTokens > this.tokenBudget) {
      throw new Error(`step: ${numScheduledTokens} tokens for ${request.requestId} with ${this.tokenBudget} left`);
    }
    const startPos = request.numComputedTokens;
    const endPos = startPos + numScheduledTokens;
    const knownEnd = Math.min(endPos, request.numTokens);
    const willSample = endPos === request.numTokensWithPlaceholders;
    this.#entries.set(request, {
      request,
      requestId: request.requestId,
      startPos,
      numScheduledTokens,
      tokenIds: request.tokenIds(startPos, knownEnd),
      numPlaceholderTokens: endPos - knownEnd,
      incarnation: request.numPreemptions,
      blockIds,
      newBlockIds,
      isAdmission,
      willSample,
      sampleIndex: request.numOutputTokens + request.numOutputPlaceholders,
    });
    // Counted as computed from now on (the KV slots are allocated; a later step may be scheduled before
    // this one's results arrive). A preemption resets both.
    request.numComputedTokens = endPos;
    if (willSample) request.numOutputPlaceholders++;
    this.tokenBudget -= numScheduledTokens;
  }

  /** Drops a request's entry (it is being preempted, which resets its counters). */
  remove(request: Request): boolean {
    const entry = this.#entries.get(request);
    if (entry === undefined) return false;
    this.#entries.delete(request);
    this.tokenBudget += entry.numScheduledTokens;
    return true;
  }

  build(stepId: number, preemptedRequestIds: readonly string[], finishedRequestIds: readonly string[]): SchedulerOutput {
    const scheduled = [...this.#entries.values()];
    let numScheduledTokens = 0;
    let numSampled = 0;
    for (const s of scheduled) {
      numScheduledTokens += s.numScheduledTokens;
      if (s.willSample) numSampled++;
    }
    return { stepId, scheduled, numScheduledTokens, numSampled, preemptedRequestIds, finishedRequestIds };
  }
}
