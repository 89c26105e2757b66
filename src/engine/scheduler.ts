/**
 * Continuous-batching scheduler (vLLM v1's rule at nano-vllm's size).
 *
 * One rule: every request has numComputedTokens chasing numTokens. Each step hands out a token budget
 * (maxNumBatchedTokens) and a sequence limit (maxNumSeqs). Running requests go first — those with one
 * token left (decodes) before those still prefilling, so a long prompt's chunks can only take what the
 * decodes leave — then waiting requests in (priority, arrival) order. Prefill, chunked prefill, prefix
 * hits and decode are all "compute the next tokens of this request".
 *
 * Per-step contract (the engine's loop; no other call order is supported):
 *   const out = scheduler.schedule();            // allocates KV blocks, may preempt
 *   const sampled = await runModel(out);         // one sampled id per entry with willSample
 *   const updates = scheduler.updateFromOutput(out, sampled);  // advances, appends, stops, frees
 * schedule() must not be called again before updateFromOutput(out) (numComputedTokens only advances
 * there). addRequest, abortRequest and finishRequest may be called at any time, including while a step
 * is in flight: a request aborted or finished mid-step is skipped by updateFromOutput, and its blocks,
 * freed at once, cannot be handed to anyone before the next schedule().
 *
 * Preemption is by recompute: when a running request cannot get a block, the running request with the
 * worst (highest) priority value, latest arrival among equals, loses all its blocks and goes back to
 * waiting with numComputedTokens = 0; its outputs so far stay and are recomputed as part of its prompt
 * (often cheaply: its freed blocks stay in the prefix cache until reused). A request that is the only
 * one running is never preempted; it waits (cannot happen for requests that addRequest accepted).
 *
 * Head-of-line policy (vLLM PR #33499): a waiting request that cannot get blocks (or, without chunked
 * prefill, does not fit the remaining budget) is skipped so smaller requests behind it can start. To
 * keep that from starving it, once it has been skipped more than maxWaitingSkips consecutive times it
 * becomes a barrier: nothing behind it is admitted until it is. Running requests still progress and
 * finish, so it gets its blocks eventually. No waiting request is admitted in a step that preempted
 * (the freed blocks were needed by running ones).
 */
import type { KVCacheManager } from '../kv/kv-cache-manager.ts';
import { RequestStatus, isFinished } from './request.ts';
import type { FinishedStatus, Request } from './request.ts';
import { checkSchedulerIntegrity } from './sched-integrity.ts';
import { checkStop } from './sched-stop.ts';
import { WaitingQueue, comesBefore } from './sched-waiting-queue.ts';
import { DecodeHeadroom, type HeadroomConfig } from './sched-headroom.ts';
import { StepBuilder } from './scheduler-output.ts';
import type { RequestUpdate, SchedulerOutput } from './scheduler-output.ts';

export interface SchedulerConfig {
  /** Running requests at most. */
  maxNumSeqs: number;
  /** Tokens per step, all requests together. Must be ≥ maxNumSeqs so every decode runs every step. */
  maxNumBatchedTokens: number;
  /** Context window: prompt + generated tokens. */
  maxModelLen: number;
  /** Off: a prompt is computed in one step or waits (then maxNumBatchedTokens must be ≥ maxModelLen). */
  enableChunkedPrefill: boolean;
  /** Tokens that end a request unless params.ignoreEos (the model's EOS and any extra end-of-turn ids). */
  eosTokenIds: readonly number[];
  /** Consecutive pass-overs before a waiting request blocks those behind it. Default 16. */
  maxWaitingSkips?: number;
  /**
   * Steps that may be scheduled before the oldest one's results are applied. 1 (default): schedule,
   * run, update, in turn. 2: async scheduling — step N+1 is scheduled (and its inputs prepared) while
   * step N runs; tokens N samples are placeholders in N+1 that the device fills in (select_tokens).
   */
  maxStepsInFlight?: number;
  /** Caps one request's prefill chunk per step so a long prompt leaves room to admit others (vLLM's
   * long_prefill_token_threshold). 0 = off (default): a prefill takes whatever budget is left. */
  longPrefillTokenThreshold?: number;
  /**
   * Decode headroom kept free at admission (sched-headroom.ts); null or absent: none, admit whatever
   * prompt fits now and preempt when decodes run out of blocks (vLLM's policy).
   */
  headroom?: HeadroomConfig | null;
}

/**
 * Sampled ids for updateFromOutput: an array indexed like out.scheduled (the device's [numSeqs] output;
 * entries whose willSample is false are ignored), or a map keyed by requestId holding the sampling ones.
 */
export type SampledTokenIds = ArrayLike<number> | ReadonlyMap<string, number>;

export class Scheduler {
  readonly config: Readonly<Required<SchedulerConfig>>;
  readonly kv: KVCacheManager;
  readonly #eos: ReadonlySet<number>;
  /** Every unfinished request, by id. */
  readonly #requests = new Map<string, Request>();
  /** In admission order. */
  readonly #running: Request[] = [];
  readonly #waiting = new WaitingQueue();
  #finishedSinceLastStep: string[] = [];
  /** Scheduled steps whose results are not applied yet, oldest first. */
  readonly #inFlight: SchedulerOutput[] = [];
  #stepId = 0;
  /** Most tokens one request computes in a step (longPrefillTokenThreshold, or unlimited). */
  readonly #chunkCap: number;
  /** Decode headroom kept at admission, or null (none). */
  readonly #headroom: DecodeHeadroom | null;

  constructor(config: SchedulerConfig, kv: KVCacheManager) {
    const c = {
      ...config,
      maxWaitingSkips: config.maxWaitingSkips ?? 16,
      longPrefillTokenThreshold: config.longPrefillTokenThreshold ?? 0,
      maxStepsInFlight: config.maxStepsInFlight ?? 1,
      headroom: config.headroom ?? null,
    };
    for (const key of ['maxNumSeqs', 'maxNumBatchedTokens', 'maxModelLen'] as const) {
      if (!Number.isInteger(c[key]) || c[key] < 1) throw new RangeError(`${key} must be a positive integer, got ${c[key]}`);
    }
    if (c.maxNumBatchedTokens < c.maxNumSeqs) {
      throw new RangeError(`maxNumBatchedTokens (${c.maxNumBatchedTokens}) must be >= maxNumSeqs (${c.maxNumSeqs}) so every decode fits a step`);
    }
    if (!c.enableChunkedPrefill && c.maxNumBatchedTokens < c.maxModelLen) {
      throw new RangeError(`without chunked prefill maxNumBatchedTokens (${c.maxNumBatchedTokens}) must be >= maxModelLen (${c.maxModelLen})`);
    }
    if (!(c.maxWaitingSkips >= 0)) throw new RangeError(`maxWaitingSkips must be >= 0 (Infinity: never hold the line), got ${c.maxWaitingSkips}`);
    if (!Number.isInteger(c.longPrefillTokenThreshold) || c.longPrefillTokenThreshold < 0) {
      throw new RangeError(`longPrefillTokenThreshold must be a non-negative integer, got ${c.longPrefillTokenThreshold}`);
    }
    if (!Number.isInteger(c.maxStepsInFlight) || c.maxStepsInFlight < 1 || c.maxStepsInFlight > 2) {
      throw new RangeError(`maxStepsInFlight must be 1 or 2, got ${c.maxStepsInFlight}`);
    }
    this.config = Object.freeze(c);
    this.#chunkCap = c.enableChunkedPrefill && c.longPrefillTokenThreshold > 0 ? c.longPrefillTokenThreshold : Infinity;
    this.kv = kv;
    this.#eos = new Set(c.eosTokenIds);
    this.#headroom = c.headroom === null ? null : new DecodeHeadroom(c.headroom);
  }

  get numRunning(): number {
    return this.#running.length;
  }

  get numWaiting(): number {
    return this.#waiting.length;
  }

  hasUnfinishedRequests(): boolean {
    return this.#requests.size > 0;
  }

  getRequest(requestId: string): Request | undefined {
    return this.#requests.get(requestId);
  }

  /**
   * Why a request of this shape can never run here, or null when it can. addRequest throws with this
   * message; the engine can call it first to answer with a client error instead.
   */
  validateRequest(numPromptTokens: number, maxTokens: number): string | null {
    const { maxModelLen } = this.config;
    if (numPromptTokens < 1) return 'the prompt is empty';
    if (numPromptTokens > maxModelLen) return `the prompt has ${numPromptTokens} tokens, more than the context window (${maxModelLen})`;
    if (!Number.isInteger(maxTokens) || maxTokens < 1) return `maxTokens must be a positive integer, got ${maxTokens}`;
    // The last sampled token is never computed, so the KV footprint peaks at prompt + maxTokens - 1 tokens.
    const peakTokens = Math.min(numPromptTokens + maxTokens - 1, maxModelLen);
    const needed = this.kv.blocksNeeded(peakTokens);
    if (needed > this.kv.pool.numUsableBlocks) {
      return `the request needs up to ${needed} KV blocks but the cache has ${this.kv.pool.numUsableBlocks}`;
    }
    return null;
  }

  addRequest(request: Request): void {
    const problem = this.validateRequest(request.numPromptTokens, request.params.maxTokens);
    if (problem !== null) throw new RangeError(`request ${request.requestId}: ${problem}`);
    if (this.#requests.has(request.requestId)) throw new Error(`request ${request.requestId} is already in the scheduler`);
    if (request.status !== RequestStatus.WAITING || request.numComputedTokens !== 0 || request.numOutputTokens !== 0) {
      throw new Error(`request ${request.requestId} is not new (status ${request.status})`);
    }
    this.#requests.set(request.requestId, request);
    this.#waiting.add(request);
  }

  /** Aborts a request in any state, freeing its blocks at once. Idempotent: false when it is unknown or already finished. */
  abortRequest(requestId: string): boolean {
    return this.finishRequest(requestId, RequestStatus.FINISHED_ABORTED);
  }

  /** Ends a request (the engine's stop-string check uses FINISHED_STOPPED with the matched string). False if not live. */
  finishRequest(requestId: string, status: FinishedStatus, stopReason: number | string | null = null): boolean {
    const request = this.#requests.get(requestId);
    if (request === undefined) return false;
    if (!isFinished(status)) throw new Error(`finishRequest: ${status} is not a finished status`);
    this.#finish(request, status, stopReason);
    return true;
  }

  /** Steps scheduled whose results have not been applied yet. */
  get numStepsInFlight(): number {
    return this.#inFlight.length;
  }

  schedule(): SchedulerOutput {
    if (this.#inFlight.length >= this.config.maxStepsInFlight) {
      throw new Error(`schedule() called with ${this.#inFlight.length} step(s) awaiting updateFromOutput() (maxStepsInFlight ${this.config.maxStepsInFlight})`);
    }
    const step = new StepBuilder(this.config.maxNumBatchedTokens);
    const preempted: string[] = [];
    if (this.#running.length === 0) this.#headroom?.reset();  // idle: a new burst meets the full reserve
    this.#scheduleRunning(step, preempted);
    if (preempted.length === 0) this.#admitWaiting(step);
    this.#headroom?.afterStep(preempted.length > 0);
    const out = step.build(++this.#stepId, preempted, this.#finishedSinceLastStep);
    this.#finishedSinceLastStep = [];
    // An empty step has nothing to apply: it is not in flight (updateFromOutput accepts it as a no-op).
    if (out.scheduled.length === 0) return out;
    this.#inFlight.push(out);
    return out;
  }

  /**
   * Applies a finished step: advances numComputedTokens, registers newly full blocks in the prefix cache,
   * appends sampled tokens and applies token-level stops. Finished requests free their blocks here.
   * Returns one update per request that sampled a token.
   */
  updateFromOutput(out: SchedulerOutput, sampledTokenIds: SampledTokenIds): RequestUpdate[] {
    if (out.scheduled.length === 0 && !this.#inFlight.includes(out)) return [];
    if (out !== this.#inFlight[0]) throw new Error(`updateFromOutput: step ${out.stepId} is not the oldest step in flight`);
    // Validate every sampled id before touching any request, so a bad output leaves the state as it was.
    const live = out.scheduled.map((s) => this.#isLive(s.request) && s.request.numPreemptions === s.incarnation);
    const tokenIds = out.scheduled.map((s, i) => (live[i] && s.willSample ? sampledTokenAt(sampledTokenIds, i, s.requestId) : -1));
    this.#inFlight.shift();
    const updates: RequestUpdate[] = [];
    for (let i = 0; i < out.scheduled.length; i++) {
      const s = out.scheduled[i]!;
      const request = s.request;
      // Aborted, finished or preempted while the step ran: its blocks are already freed, nothing to apply.
      if (!live[i]) continue;
      const endPos = s.startPos + s.numScheduledTokens;
      if (endPos > request.numComputedTokens) {
        throw new Error(`updateFromOutput: ${request.requestId} has ${request.numComputedTokens} computed tokens, the step computed up to ${endPos}`);
      }
      // The KV of [0, endPos) now exists; every token in it is known (the previous update filled placeholders).
      this.kv.cacheFullBlocks(request, endPos);
      if (!s.willSample) continue;
      const tokenId = tokenIds[i]!;
      request.numOutputPlaceholders--;
      request.appendOutputToken(tokenId);
      const stop = checkStop(request, this.config.maxModelLen, this.#eos);
      if (stop !== null) this.#finish(request, stop.status, stop.stopReason);
      updates.push({ request, newTokenIds: [tokenId], status: request.status, finished: stop !== null });
    }
    return updates;
  }

  /** Throws when a scheduler or KV invariant is broken (run after each step in tests, when idle in production). */
  checkIntegrity(): void {
    checkSchedulerIntegrity({
      requests: this.#requests,
      running: this.#running,
      waiting: this.#waiting,
      kv: this.kv,
      numStepsInFlight: this.#inFlight.length,
      maxNumSeqs: this.config.maxNumSeqs,
    });
  }

  #isLive(request: Request): boolean {
    return request.status === RequestStatus.RUNNING && this.#requests.get(request.requestId) === request;
  }

  /**
   * Decodes first, whatever the admission history: with budget ≥ maxNumSeqs every decode gets its token,
   * and prefill chunks (possibly of requests admitted before them) share what is left.
   */
  #scheduleRunning(step: StepBuilder, preempted: string[]): void {
    const decodes: Request[] = [];
    const prefills: Request[] = [];
    for (const r of this.#running) {
      const numRemaining = r.numTokensWithPlaceholders - r.numComputedTokens;
      // Nothing to compute until a step in flight returns, or at its limit: that step's token ends it.
      if (numRemaining === 0 || this.#atLimit(r)) continue;
      // Structured output's mask needs the grammar advanced by the previous token on the host first.
      if (r.numOutputPlaceholders > 0 && r.params.structuredOutput !== null) continue;
      (numRemaining === 1 ? decodes : prefills).push(r);
    }
    for (const request of decodes.concat(prefills)) {
      if (step.tokenBudget === 0) break;
      if (request.status !== RequestStatus.RUNNING) continue; // preempted earlier in this loop
      const numRemaining = request.numTokensWithPlaceholders - request.numComputedTokens;
      if (!this.config.enableChunkedPrefill && numRemaining > step.tokenBudget) continue;
      const numNewTokens = Math.min(numRemaining, step.tokenBudget, this.#chunkCap);
      const newBlockIds = this.#allocateOrPreempt(request, numNewTokens, step, preempted);
      if (newBlockIds === null) continue;
      step.add(request, numNewTokens, this.kv.blockIds(request.requestId), newBlockIds, false);
    }
  }

  /** The outputs being sampled will reach maxTokens or the context window: schedule nothing more. */
  #atLimit(request: Request): boolean {
    if (request.numOutputPlaceholders === 0) return false;
    return (
      request.numOutputTokens + request.numOutputPlaceholders >= request.params.maxTokens ||
      request.numTokensWithPlaceholders >= this.config.maxModelLen
    );
  }

  /** Allocates, preempting the worst running requests until it fits; null when the request itself was preempted or must wait. */
  #allocateOrPreempt(request: Request, numNewTokens: number, step: StepBuilder, preempted: string[]): number[] | null {
    for (;;) {
      const newBlockIds = this.kv.allocateSlots(request, numNewTokens);
      if (newBlockIds !== null) return newBlockIds;
      if (this.#running.length === 1) return null; // alone: never preempt it, it waits
      const victim = this.#pickVictim();
      this.#preempt(victim, step);
      preempted.push(victim.requestId);
      if (victim === request) return null;
    }
  }

  /** Worst priority, latest arrival among equals. */
  #pickVictim(): Request {
    let victim = this.#running[0]!;
    for (const r of this.#running) if (comesBefore(victim, r)) victim = r;
    return victim;
  }

  #preempt(victim: Request, step: StepBuilder): void {
    step.remove(victim); // already scheduled this step: give its tokens back
    this.#running.splice(this.#running.indexOf(victim), 1);
    this.kv.free(victim);
    victim.status = RequestStatus.PREEMPTED;
    victim.numComputedTokens = 0;
    // Its samples in flight are dropped (stale incarnation); they are sampled again, identically, later.
    victim.numOutputPlaceholders = 0;
    victim.numPreemptions++;
    this.#waiting.add(victim);
  }

  #admitWaiting(step: StepBuilder): void {
    const { maxNumSeqs, enableChunkedPrefill, maxWaitingSkips, maxModelLen } = this.config;
    const headroom = this.#headroom;
    // Tokens the running requests may still generate, of which the headroom keeps a share of blocks free.
    let reservedTokens = 0;
    if (headroom !== null) for (const running of this.#running) reservedTokens += headroom.reservedTokens(running, maxModelLen);
    for (const request of this.#waiting.snapshot()) {
      if (step.tokenBudget === 0 || this.#running.length >= maxNumSeqs) break;
      const computed = this.kv.getComputedBlocks(request);
      const numRemaining = request.numTokens - computed.numComputedTokens;
      const numNewTokens = Math.min(numRemaining, step.tokenBudget, this.#chunkCap);
      let newBlockIds: number[] | null = null;
      if (enableChunkedPrefill || numRemaining <= step.tokenBudget) {
        newBlockIds = this.kv.allocateSlots(request, numNewTokens, computed.blocks);
      }
      if (newBlockIds !== null && headroom !== null && this.#running.length > 0) {
        // Its prompt fits; do the decodes still have their share? (Alone, a request always runs.)
        const ownTokens = headroom.reservedTokens(request, maxModelLen);
        if (this.kv.pool.numFreeBlocks < this.kv.blocksNeeded(reservedTokens + ownTokens)) {
          this.kv.free(request); // give the blocks back; cached prompt blocks stay in the prefix cache
          newBlockIds = null;
        } else reservedTokens += ownTokens;
      }
      if (newBlockIds === null) {
        if (this.#waiting.recordSkip(request) > maxWaitingSkips) break; // barrier: see the policy above
        continue;
      }
      const firstAdmission = request.numPreemptions === 0;
      if (firstAdmission) {
        // Only first admissions count: a preempted request's hits on its own old blocks are recomputation.
        request.numCachedTokens = computed.numComputedTokens;
        this.kv.recordPrefixLookup(request.numTokens, computed.numComputedTokens);
      }
      this.#waiting.remove(request);
      this.#running.push(request);
      request.status = RequestStatus.RUNNING;
      request.numComputedTokens = computed.numComputedTokens;
      step.add(request, numNewTokens, this.kv.blockIds(request.requestId), newBlockIds, true);
    }
  }

  #finish(request: Request, status: FinishedStatus, stopReason: number | string | null): void {
    if (request.status === RequestStatus.RUNNING) this.#running.splice(this.#running.indexOf(request), 1);
    else this.#waiting.remove(request);
    this.kv.free(request);
    this.#requests.delete(request.requestId);
    request.status = status;
    request.stopReason = stopReason;
    this.#finishedSinceLastStep.push(request.requestId);
  }
}

function sampledTokenAt(sampled: SampledTokenIds, index: number, requestId: string): number {
  const tokenId = isMap(sampled) ? sampled.get(requestId) : sampled[index];
  if (tokenId === undefined || !Number.isInteger(tokenId) || tokenId < 0) {
    throw new Error(`updateFromOutput: no valid sampled token for ${requestId} (entry ${index}): ${tokenId}`);
  }
  return tokenId;
}

function isMap(sampled: SampledTokenIds): sampled is ReadonlyMap<string, number> {
  return sampled instanceof Map;
}
