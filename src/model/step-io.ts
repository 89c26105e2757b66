/**
 * The names every architecture's program uses for its per-step inputs and outputs, and for its
 * symbolic dimensions. The model runner (src/model/runner.ts) fills exactly these; an architecture
 * in models/ declares exactly these. Changing one side means changing this file.
 */

/** Symbolic dimensions of a step (see ProgramSpec.dims). */
export const DIM = {
  /** Tokens computed in this step, all sequences together (≤ --max-num-batched-tokens). */
  numTokens: 'numTokens',
  /** Sequences in this step (≤ --max-num-seqs). */
  numSeqs: 'numSeqs',
  /** Columns of the block table (≤ ceil(maxModelLen / blockSize)). */
  maxBlocksPerSeq: 'maxBlocksPerSeq',
  /** Alternatives returned per sampled token (≤ MAX_TOP_LOGPROBS); 0 when no request asked. */
  numTopLogprobs: 'numTopLogprobs',
  /** Logits rows process_logits looks at: numSeqs, or 0 when no request in the step uses penalties, biases, bans or a grammar. */
  numProcessedSeqs: 'numProcessedSeqs',
  /** Columns of the penalty token lists (≤ logitsProcessingLimits().maxPenaltyTokens). */
  numPenaltyTokens: 'numPenaltyTokens',
  /** Columns of the bias lists (≤ MAX_BIAS_TOKENS). */
  numBiasTokens: 'numBiasTokens',
  /** u32 words of the allowed-token mask: ceil(vocab / 32), or 0 when no row has a mask. */
  maskWords: 'maskWords',
} as const;

/** Bias entries per row: OpenAI logit_bias (≤ 300) plus the min_tokens bans (EOS, stop_token_ids). */
export const MAX_BIAS_TOKENS = 1024;

/** The maxima of the logits-processing dims for a model (the runner and the program builder agree on them). */
export function logitsProcessingLimits(vocabSize: number, maxModelLen: number): { maxPenaltyTokens: number; maxBiasTokens: number; maskWords: number } {
  // A row lists each distinct token of its prompt and output once: never more than either bound.
  return { maxPenaltyTokens: Math.min(vocabSize, maxModelLen), maxBiasTokens: MAX_BIAS_TOKENS, maskWords: Math.ceil(vocabSize / 32) };
}

/** Per-step inputs, uploaded from the host. Shapes in terms of DIM. */
export const INPUT = {
  /** [numTokens] i32 — token ids to compute (rows whose tokenSources entry is set are overwritten on the device). */
  inputIds: 'input_ids',
  /**
   * [numTokens] i32 — -1, or the index of the sequence in the previous step whose sampled token this
   * row takes (async scheduling: the step was scheduled before that token reached the host).
   */
  tokenSources: 'token_sources',
  /** [numTokens] i32 — position of each token in its sequence. */
  positions: 'positions',
  /** [numTokens] i32 — KV cache row (block * blockSize + offset) each token's K/V is written to. */
  slotMapping: 'slot_mapping',
  /** [numSeqs, maxBlocksPerSeq] i32 — each sequence's KV block ids, -1 padded. */
  blockTables: 'block_tables',
  /** [numSeqs] i32 — tokens in each sequence's context after this step. */
  seqLens: 'seq_lens',
  /** [numSeqs + 1] i32 — sequence s owns token rows [queryStartLoc[s], queryStartLoc[s+1]). */
  queryStartLoc: 'query_start_loc',
  /** [numSeqs] i32 — the token row whose logits are sampled for each sequence (its last row). */
  logitsIndices: 'logits_indices',
  /** [numSeqs] f32 */
  temperature: 'temperature',
  /** [numSeqs] i32, 0 = off */
  topK: 'top_k',
  /** [numSeqs] f32, 1 = off */
  topP: 'top_p',
  /** [numSeqs] f32, 0 = off */
  minP: 'min_p',
  /** [numSeqs] u64 — each request's seed */
  seeds: 'seeds',
  /** [numSeqs] i32 — index of the token being sampled within the request's output */
  sampleCounters: 'sample_counters',
  // Logits processing (kernels/ops.h UD_OP_PROCESS_LOGITS), R = numProcessedSeqs rows.
  /** [R] i32 — per row: 1 penalties, 2 biases / bans, 4 allowed-token mask; 0 = untouched. */
  logitsFlags: 'logits_flags',
  /** [R, 3] f32 — presence, frequency, repetition penalty. */
  penalties: 'penalties',
  /** [R, numPenaltyTokens] i32 — each distinct token of the prompt (repetition penalty only) and output so far, -1 padded. */
  penaltyTokenIds: 'penalty_token_ids',
  /** [R, numPenaltyTokens] i32 — output occurrences of each (0: prompt only). */
  penaltyTokenCounts: 'penalty_token_counts',
  /** [R] i32 — -1 (the host sends no id itself; see penaltyExtraSources). */
  penaltyExtraIds: 'penalty_extra_ids',
  /** [R] i32 — -1, or the previous step's row whose sample (not on the host yet: async scheduling) is one more output token. */
  penaltyExtraSources: 'penalty_extra_sources',
  /** [R, numBiasTokens] i32 — logit_bias ids and banned ids, -1 padded. */
  biasIds: 'bias_ids',
  /** [R, numBiasTokens] f32 — their biases (-inf: banned). */
  biasValues: 'bias_values',
  /** [R, maskWords] u32 — structured output: allowed tokens (bit i & 31 of word i >> 5). */
  allowedMask: 'allowed_mask',
} as const;

/** Device state the program keeps between steps. */
export const STATE = {
  /** [maxNumSeqs] i32 — the previous step's sampled ids, which tokenSources index. */
  previousSampledIds: 'previous_sampled_ids',
} as const;

/** Per-step outputs, downloaded to the host. */
export const OUTPUT = {
  /** [numSeqs] i32 */
  sampledIds: 'sampled_ids',
  /** [numSeqs] f32 — logprob of the sampled token */
  sampledLogprobs: 'sampled_logprobs',
  /** [numSeqs, numTopLogprobs] i32 */
  topIds: 'top_ids',
  /** [numSeqs, numTopLogprobs] f32 */
  topLogprobs: 'top_logprobs',
} as const;
