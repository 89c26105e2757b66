/**
 * The per-step inputs of the process_logits op (kernels/ops.h UD_OP_PROCESS_LOGITS) from the requests
 * in a step: penalties with each request's token statistics, logit_bias and the min_tokens bans,
 * and structured output's allowed-token mask.
 *
 * Per-request state lives as long as the Request object (a WeakMap, so nothing leaks when a request
 * ends between steps) and is maintained incrementally: each step counts only the output tokens that
 * reached the host since the previous one, advances the grammar by them, and copies the request's
 * ready-made lists into the step's rows. A step in which no request uses any of it sends
 * numProcessedSeqs = 0 (the op does nothing) and no data; rows of other requests carry flags 0.
 *
 * Async scheduling: a request's previous sample may still be on the device when its next step is
 * prepared. Its penalties then name that sample's row (penalty_extra_sources; the program resolves
 * it with select_tokens and the op counts it as one more output token). Structured output cannot
 * wait for it on the device — its mask needs the grammar advanced by that token on the host — so
 * the scheduler never gives a constrained request a placeholder (Scheduler: numOutputPlaceholders).
 */
import type { ScheduledRequest } from '../engine/scheduler-output.ts';
import type { Request } from '../engine/request.ts';
import { GrammarMatcher, vocabularyTrie } from '../structured/index.ts';
import type { TokenVocabulary, VocabularyTrie } from '../structured/index.ts';
import { DIM, INPUT, logitsProcessingLimits } from '../model/step-io.ts';
import type { HostArray } from '../device/program.ts';
import { usesLogitsProcessing } from './params.ts';

export interface LogitsProcessingOptions {
  /** Columns of the logits (the model's vocabulary, maybe padded past the tokenizer's). */
  vocabSize: number;
  /** The context window the program was built for (bounds the penalty lists); default vocabSize. */
  maxModelLen?: number;
  /** Ids that end a request (EOS and end-of-turn): banned before min_tokens, allowed when a grammar completes. */
  eosTokenIds: readonly number[];
  /** The tokenizer, for structured output's vocabulary trie; null: constrained requests fail the step. */
  vocabulary: TokenVocabulary | null;
}

const FLAG_PENALTIES = 1;
const FLAG_BIAS = 2;
const FLAG_MASK = 4;
/** Smallest non-zero bucket of the list dims in graph steps (powers of two from here). */
const MIN_LIST_BUCKET = 16;

/** What one request carries from step to step. */
class RequestLogitsState {
  /** Penalty list: distinct ids (prompt ones only with a repetition penalty) and their output counts. */
  ids = new Int32Array(16);
  counts = new Int32Array(16);
  size = 0;
  readonly slotOf = new Map<number, number>();
  /** Output tokens already counted / fed to the matcher. */
  counted = 0;
  matched = 0;
  readonly penalties: boolean;
  /** logit_bias alone, and with the min_tokens bans (ban wins). */
  readonly biasIds: Int32Array;
  readonly biasValues: Float32Array;
  readonly bannedIds: Int32Array;
  readonly bannedValues: Float32Array;
  readonly bans: readonly number[];
  readonly matcher: GrammarMatcher | null;

  constructor(request: Request, options: LogitsProcessingOptions, trie: VocabularyTrie | null) {
    const p = request.params;
    this.penalties = p.presencePenalty !== 0 || p.frequencyPenalty !== 0 || p.repetitionPenalty !== 1;
    if (this.penalties && p.repetitionPenalty !== 1) {
      // Prompt tokens count for the repetition penalty only (output count 0).
      for (const id of request.promptTokenIds) if (!this.slotOf.has(id)) this.#append(id, 0);
    }
    const inVocab = (id: number) => id >= 0 && id < options.vocabSize;
    const bias = new Map(p.logitBias.filter(([id]) => inVocab(id)));
    this.biasIds = Int32Array.from(bias.keys());
    this.biasValues = Float32Array.from(bias.values());
    const bans = p.minTokens > 0 ? [...new Set([...p.stopTokenIds, ...(p.ignoreEos ? [] : options.eosTokenIds)])].filter(inVocab) : [];
    this.bans = bans;
    for (const id of bans) bias.set(id, -Infinity);
    this.bannedIds = Int32Array.from(bias.keys());
    this.bannedValues = Float32Array.from(bias.values());
    if (p.structuredOutput !== null) {
      if (trie === null) throw new Error('structured output needs the tokenizer (the runner was built without it)');
      this.matcher = new GrammarMatcher(p.structuredOutput.grammar, trie, [...new Set([...options.eosTokenIds, ...p.stopTokenIds])]);
    } else {
      this.matcher = null;
    }
  }

  #mask: Uint32Array | null = null;

  /** The state's mask buffer (the matcher writes the step's allowed tokens here). */
  mask(words: number): Uint32Array {
    if (this.#mask === null || this.#mask.length !== words) this.#mask = new Uint32Array(words);
    return this.#mask;
  }

  #append(id: number, count: number): void {
    if (this.size === this.ids.length) {
      const ids = new Int32Array(this.size * 2);
      ids.set(this.ids);
      this.ids = ids;
      const counts = new Int32Array(this.size * 2);
      counts.set(this.counts);
      this.counts = counts;
    }
    this.slotOf.set(id, this.size);
    this.ids[this.size] = id;
    this.counts[this.size] = count;
    this.size++;
  }

  /** Counts and matches the outputs that reached the host since the last step. */
  catchUp(request: Request): void {
    const outputs = request.outputTokenIds;
    if (this.penalties) {
      for (; this.counted < outputs.length; this.counted++) {
        const id = outputs[this.counted]!;
        const slot = this.slotOf.get(id);
        if (slot === undefined) this.#append(id, 1);
        else this.counts[slot]!++;
      }
    }
    if (this.matcher !== null) for (; this.matched < outputs.length; this.matched++) this.matcher.accept(outputs[this.matched]!);
  }
}

/** Growable per-step arrays; two sets alternate, like the runner's other inputs. */
class ProcessingBuffers {
  flags = new Int32Array(0);
  penalties = new Float32Array(0);
  extraIds = new Int32Array(0);
  extraSources = new Int32Array(0);
  tokenIds = new Int32Array(0);
  tokenCounts = new Int32Array(0);
  biasIds = new Int32Array(0);
  biasValues = new Float32Array(0);
  mask = new Uint32Array(0);

  reserve(rows: number, numTokens: number, numBias: number, maskWords: number): void {
    const grow = <T extends Int32Array | Float32Array | Uint32Array>(a: T, n: number, make: (n: number) => T): T => (a.length >= n ? a : make(Math.max(n, a.length * 2)));
    this.flags = grow(this.flags, rows, (n) => new Int32Array(n));
    this.penalties = grow(this.penalties, rows * 3, (n) => new Float32Array(n));
    this.extraIds = grow(this.extraIds, rows, (n) => new Int32Array(n).fill(-1));
    this.extraSources = grow(this.extraSources, rows, (n) => new Int32Array(n));
    this.tokenIds = grow(this.tokenIds, rows * numTokens, (n) => new Int32Array(n));
    this.tokenCounts = grow(this.tokenCounts, rows * numTokens, (n) => new Int32Array(n));
    this.biasIds = grow(this.biasIds, rows * numBias, (n) => new Int32Array(n));
    this.biasValues = grow(this.biasValues, rows * numBias, (n) => new Float32Array(n));
    this.mask = grow(this.mask, rows * maskWords, (n) => new Uint32Array(n));
  }
}

export interface ProcessingStepInputs {
  dims: Record<string, number>;
  inputs: Record<string, HostArray>;
}

/** Row plans of one step, before the dims are known. */
interface RowPlan {
  row: number;
  state: RequestLogitsState;
  flags: number;
  /** -1, or the previous step's row of the pending output token. */
  extraSource: number;
  /** The row's bias list (logit_bias, with the min_tokens bans while they apply). */
  biasIds: Int32Array;
  biasValues: Float32Array;
  /** Bans that did not fit the bias columns: cleared in the mask instead. */
  maskBans: readonly number[];
}

export class LogitsProcessor {
  readonly #options: LogitsProcessingOptions | null;
  readonly #limits: { maxPenaltyTokens: number; maxBiasTokens: number; maskWords: number };
  readonly #states = new WeakMap<Request, RequestLogitsState>();
  readonly #buffers: [ProcessingBuffers, ProcessingBuffers] = [new ProcessingBuffers(), new ProcessingBuffers()];
  #next = 0;
  #trie: VocabularyTrie | null = null;
  /** Milliseconds spent computing structured-output masks (stats, benchmarks). */
  maskTimeMs = 0;
  /** Masks computed. */
  numMasks = 0;

  /** `options` null: the runner has no model vocabulary (fakes); requests that need processing fail. */
  constructor(options: LogitsProcessingOptions | null, maxModelLen: number) {
    this.#options = options;
    this.#limits = options === null ? { maxPenaltyTokens: 0, maxBiasTokens: 0, maskWords: 0 } : logitsProcessingLimits(options.vocabSize, options.maxModelLen ?? maxModelLen);
  }

  #stateOf(request: Request): RequestLogitsState {
    let state = this.#states.get(request);
    if (state === undefined) {
      if (this.#options === null) throw new Error(`${request.requestId}: penalties, logit_bias, min_tokens and response_format need the model's vocabulary (the runner has none)`);
      if (request.params.structuredOutput !== null && this.#trie === null && this.#options.vocabulary !== null) {
        this.#trie = vocabularyTrie(this.#options.vocabulary, this.#options.vocabSize);
      }
      state = new RequestLogitsState(request, this.#options, this.#trie);
      this.#states.set(request, state);
    }
    return state;
  }

  /**
   * The processing dims and inputs for a step whose first entries are `scheduled` (rows
   * 0..scheduled.length-1) padded to `numSeqs` rows. `previousRows`: requestId → its row in the
   * previous step's samples. `graph`: the list dims are bucketed so few graph shapes arise.
   */
  prepare(scheduled: readonly ScheduledRequest[], numSeqs: number, previousRows: ReadonlyMap<string, number>, graph: boolean): ProcessingStepInputs {
    const limits = this.#limits;
    const plans: RowPlan[] = [];
    let needTokens = 0;
    let needBias = 0;
    let needMask = false;
    scheduled.forEach((s, row) => {
      if (!s.willSample || !usesLogitsProcessing(s.request.params)) return;
      const state = this.#stateOf(s.request);
      state.catchUp(s.request);
      const pending = s.sampleIndex - s.request.numOutputTokens;
      let extraSource = -1;
      if (pending > 0) {
        const source = previousRows.get(s.requestId);
        if (pending > 1 || source === undefined) throw new Error(`${s.requestId}: ${pending} output token(s) are not on the host and the previous step did not sample them`);
        if (state.matcher !== null) throw new Error(`${s.requestId}: a constrained request was scheduled before its previous token reached the host`);
        extraSource = source;
      }
      let flags = 0;
      if (state.penalties) {
        flags |= FLAG_PENALTIES;
        needTokens = Math.max(needTokens, state.size);
      }
      let banned = s.sampleIndex < s.request.params.minTokens && state.bans.length > 0;
      if (state.matcher !== null) {
        flags |= FLAG_MASK;
        needMask = true;
        const start = performance.now();
        const numAllowed = state.matcher.fillMask(state.mask(limits.maskWords));
        this.maskTimeMs += performance.now() - start;
        this.numMasks++;
        // A complete document that allows nothing but its end: structured output wins over min_tokens
        // (the bans would leave no token at all).
        if (numAllowed === 0) banned = false;
      }
      let biasIds = state.biasIds;
      let biasValues = state.biasValues;
      let maskBans: readonly number[] = [];
      if (banned && state.bannedIds.length <= limits.maxBiasTokens) {
        biasIds = state.bannedIds;
        biasValues = state.bannedValues;
      } else if (banned) {
        // Hundreds of stop_token_ids: the bans go into the mask.
        maskBans = state.bans;
        flags |= FLAG_MASK;
        needMask = true;
      }
      if (biasIds.length > limits.maxBiasTokens) throw new Error(`${s.requestId}: ${biasIds.length} logit_bias entries exceed the program's ${limits.maxBiasTokens}`);
      if (biasIds.length > 0) {
        flags |= FLAG_BIAS;
        needBias = Math.max(needBias, biasIds.length);
      }
      if (flags !== 0) plans.push({ row, state, flags, extraSource, biasIds, biasValues, maskBans });
    });
    if (needTokens > limits.maxPenaltyTokens) throw new Error(`a penalty list of ${needTokens} tokens exceeds the program's ${limits.maxPenaltyTokens}`);
    const rows = plans.length > 0 ? numSeqs : 0;
    const bucket = (n: number, max: number) => (n === 0 ? 0 : graph ? Math.min(max, Math.max(MIN_LIST_BUCKET, 2 ** Math.ceil(Math.log2(n)))) : n);
    const P = bucket(needTokens, limits.maxPenaltyTokens);
    const B = bucket(needBias, limits.maxBiasTokens);
    const W = needMask ? limits.maskWords : 0;

    const buf = this.#buffers[this.#next]!;
    this.#next ^= 1;
    buf.reserve(rows, P, B, W);
    if (rows > 0) {
      buf.flags.fill(0, 0, rows);
      buf.extraSources.fill(-1, 0, rows);
      buf.extraIds.fill(-1, 0, rows);
    }
    for (const plan of plans) {
      const { row, state } = plan;
      buf.flags[row] = plan.flags;
      buf.extraSources[row] = plan.extraSource;
      if (plan.flags & FLAG_PENALTIES) {
        const params = scheduled[row]!.request.params;
        buf.penalties[row * 3] = params.presencePenalty;
        buf.penalties[row * 3 + 1] = params.frequencyPenalty;
        buf.penalties[row * 3 + 2] = params.repetitionPenalty;
        buf.tokenIds.set(state.ids.subarray(0, state.size), row * P);
        buf.tokenCounts.set(state.counts.subarray(0, state.size), row * P);
        buf.tokenIds.fill(-1, row * P + state.size, (row + 1) * P);
      }
      if (plan.flags & FLAG_BIAS) {
        buf.biasIds.set(plan.biasIds, row * B);
        buf.biasValues.set(plan.biasValues, row * B);
        buf.biasIds.fill(-1, row * B + plan.biasIds.length, (row + 1) * B);
      }
      if (plan.flags & FLAG_MASK) {
        const words = buf.mask.subarray(row * W, (row + 1) * W);
        if (state.matcher !== null) words.set(state.mask(W));
        else this.#allTokens(words);
        for (const id of plan.maskBans) words[id >>> 5]! &= ~(1 << (id & 31));
      }
    }
    return {
      dims: { [DIM.numProcessedSeqs]: rows, [DIM.numPenaltyTokens]: P, [DIM.numBiasTokens]: B, [DIM.maskWords]: W },
      inputs: {
        [INPUT.logitsFlags]: buf.flags.subarray(0, rows),
        [INPUT.penalties]: buf.penalties.subarray(0, rows * 3),
        [INPUT.penaltyTokenIds]: buf.tokenIds.subarray(0, rows * P),
        [INPUT.penaltyTokenCounts]: buf.tokenCounts.subarray(0, rows * P),
        [INPUT.penaltyExtraIds]: buf.extraIds.subarray(0, rows),
        [INPUT.penaltyExtraSources]: buf.extraSources.subarray(0, rows),
        [INPUT.biasIds]: buf.biasIds.subarray(0, rows * B),
        [INPUT.biasValues]: buf.biasValues.subarray(0, rows * B),
        [INPUT.allowedMask]: buf.mask.subarray(0, rows * W),
      },
    };
  }

  /** Every token of the vocabulary (a mask row that only carries bans). */
  #allTokens(words: Uint32Array): void {
    words.fill(0xffffffff);
    const vocab = this.#options!.vocabSize;
    if (vocab % 32 !== 0) words[words.length - 1] = (1 << (vocab % 32)) - 1;
  }
}
