/**
 * The Llama-family decoder step (Llama 2/3.x, Mistral, Qwen2) as a ProgramSpec, in vLLM's op order:
 *
 *   embedding → per layer: rmsnorm (fused residual add) → qkv matmul → rope + KV write → attention →
 *   o_proj → rmsnorm (fused add) → gate_up matmul → silu·mul → down_proj
 *   → gather the sampled rows → final rmsnorm (fused add) → lm_head → process_logits → sample
 *
 * Activations are a handful of scratch tensors reused by every layer. Only the rows that are sampled
 * (one per sequence, `logits_indices`) go through the final norm and lm_head.
 *
 * With tensor parallelism (`tensorParallel`, src/model/tensor-parallel.ts) this builds rank r's
 * program: its heads and its slice of the MLP, and an all_reduce after o_proj and after down_proj
 * (the row-parallel matmuls, whose outputs are partial sums); everything else as above, replicated.
 * A single rank's program is exactly the unsharded one.
 * Operand order and shapes follow kernels/ops.h; input/output names follow src/model/step-io.ts.
 */
import type { DType, Dim, ProgramSpec } from '../src/device/program.ts';
import { parseDecoderConfig } from '../src/model/hf-config.ts';
import type { DecoderConfig } from '../src/model/hf-config.ts';
import type { ModelArchitecture } from '../src/model/registry.ts';
import { computeRope } from '../src/model/rope.ts';
import { DIM, INPUT, logitsProcessingLimits, OUTPUT, STATE } from '../src/model/step-io.ts';
import { shardPlan, SINGLE_RANK } from '../src/model/tensor-parallel.ts';
import type { ShardPlan, TensorParallelRank } from '../src/model/tensor-parallel.ts';
import type { WeightSource } from '../src/model/weights.ts';
import { ProgramBuilder } from './program-builder.ts';
import type { WeightDtypeOption } from './program-builder.ts';

export interface KvCacheOptions {
  numBlocks: number;
  blockSize: number;
  /** A float dtype, or 'f8e4m3' (--kv-cache-dtype fp8): only rope_kv_write and attention touch the cache. */
  dtype: DType;
}

export interface ProgramLimits {
  /** --max-num-batched-tokens */
  maxNumTokens: number;
  /** --max-num-seqs */
  maxNumSeqs: number;
  /** ceil(maxModelLen / blockSize) */
  maxBlocksPerSeq: number;
  /** MAX_TOP_LOGPROBS */
  maxTopLogprobs: number;
}

export interface DecoderBuildOptions {
  /** A checkpoint from openWeights(), or 'dummy' for `--load-format dummy` (random values, std 0.02). */
  weights: 'dummy' | WeightSource;
  /** Seed of the dummy weights (default 0). */
  seed?: number;
  /** Activation dtype; the CPU backend uses 'f32'. */
  computeDtype: DType;
  /** 'auto' keeps the checkpoint's dtype (for dummy weights: config.json's dtype, else computeDtype). */
  weightDtype: WeightDtypeOption;
  /** KV cache of this rank: its own KV heads only. */
  kv: KvCacheOptions;
  limits: ProgramLimits;
  /** Which rank of how many this program is for (default: one rank, the whole model). */
  tensorParallel?: TensorParallelRank;
}

export const DUMMY_WEIGHT_STD = 0.02;
const FLOAT_DTYPES: readonly DType[] = ['f32', 'f16', 'bf16'];
/** FP8 is a storage dtype (kernels/ops.h UD_F8E4M3): the cache may hold it, activations and weights not. */
const KV_CACHE_DTYPES: readonly DType[] = [...FLOAT_DTYPES, 'f8e4m3'];

/** Weight names in HF checkpoints; fused weights use vLLM's names. */
export const LLAMA_WEIGHT_NAMES = {
  embedTokens: 'model.embed_tokens.weight',
  finalNorm: 'model.norm.weight',
  lmHead: 'lm_head.weight',
  ropeInvFreq: 'rope.inv_freq',
  layer: (i: number) => {
    const p = `model.layers.${i}`;
    return {
      inputNorm: `${p}.input_layernorm.weight`,
      postAttentionNorm: `${p}.post_attention_layernorm.weight`,
      q: `${p}.self_attn.q_proj`,
      k: `${p}.self_attn.k_proj`,
      v: `${p}.self_attn.v_proj`,
      o: `${p}.self_attn.o_proj`,
      qkv: `${p}.self_attn.qkv_proj`,
      gate: `${p}.mlp.gate_proj`,
      up: `${p}.mlp.up_proj`,
      gateUp: `${p}.mlp.gate_up_proj`,
      down: `${p}.mlp.down_proj`,
      kCache: `${p}.self_attn.k_cache`,
      vCache: `${p}.self_attn.v_cache`,
    };
  },
} as const;

/** Scratch activations shared by all layers. */
export const LLAMA_ACTIVATIONS = {
  resolvedIds: 'resolved_ids', // [numTokens] i32 — input_ids with the previous step's samples filled in
  hidden: 'hidden', // [numTokens, hidden] — embedding, o_proj and down_proj outputs (summed over the ranks)
  residual: 'residual', // [numTokens, hidden] — running residual stream
  normed: 'normed', // [numTokens, hidden] — rmsnorm outputs
  // Per rank under tensor parallelism: numHeads, numKvHeads and intermediate are the rank's (ShardPlan).
  qkv: 'qkv', // [numTokens, (numHeads + 2 numKvHeads) headDim]
  q: 'q', // [numTokens, numHeads, headDim] — rotated queries
  attnOut: 'attn_out', // [numTokens, numHeads headDim]
  gateUp: 'gate_up', // [numTokens, 2 intermediate]
  mlpAct: 'mlp_act', // [numTokens, intermediate]
  lastHidden: 'last_hidden', // [numSeqs, hidden] — rows at logits_indices
  lastResidual: 'last_residual', // [numSeqs, hidden]
  lastNormed: 'last_normed', // [numSeqs, hidden]
  logits: 'logits', // [numSeqs, vocab] f32
  extraIds: 'penalty_extra_resolved', // [numProcessedSeqs] i32 — the previous step's samples that count as output tokens
} as const;

export function buildDecoderProgram(cfg: DecoderConfig, opts: DecoderBuildOptions): ProgramSpec {
  validateOptions(opts);
  const plan = shardPlan(cfg, opts.tensorParallel ?? SINGLE_RANK);
  const { hiddenSize: H, headDim: D, vocabSize: V } = cfg;
  const { numHeads: nH, numKvHeads: nKV, intermediateSize: I } = plan;
  const act = opts.computeDtype;
  const processing = logitsProcessingLimits(V, opts.limits.maxBlocksPerSeq * opts.kv.blockSize);
  const b = new ProgramBuilder(
    {
      [DIM.numTokens]: opts.limits.maxNumTokens,
      [DIM.numSeqs]: opts.limits.maxNumSeqs,
      [DIM.maxBlocksPerSeq]: opts.limits.maxBlocksPerSeq,
      [DIM.numTopLogprobs]: opts.limits.maxTopLogprobs,
      [DIM.numProcessedSeqs]: opts.limits.maxNumSeqs,
      [DIM.numPenaltyTokens]: processing.maxPenaltyTokens,
      [DIM.numBiasTokens]: processing.maxBiasTokens,
      [DIM.maskWords]: processing.maskWords,
    },
    {
      source: opts.weights,
      seed: opts.seed ?? 0,
      std: DUMMY_WEIGHT_STD,
      dtype: opts.weightDtype,
      dummyDtype: cfg.checkpointDtype ?? act,
    },
  );
  const T = DIM.numTokens;
  const S = DIM.numSeqs;
  declareStepInputs(b);
  declareStepOutputs(b);

  const A = LLAMA_ACTIVATIONS;
  const qkvSize = (nH + 2 * nKV) * D;
  b.tensor(A.hidden, act, [T, H], 'activation');
  b.tensor(A.residual, act, [T, H], 'activation');
  b.tensor(A.normed, act, [T, H], 'activation');
  // ProgramSpec has no views: rope_kv_write reads this as [numTokens, nH + 2 nKV, D] (its params give the split).
  b.tensor(A.qkv, act, [T, qkvSize], 'activation');
  b.tensor(A.q, act, [T, nH, D], 'activation');
  b.tensor(A.attnOut, act, [T, nH * D], 'activation');
  b.tensor(A.gateUp, act, [T, 2 * I], 'activation');
  b.tensor(A.mlpAct, act, [T, I], 'activation');
  b.tensor(A.lastHidden, act, [S, H], 'activation');
  b.tensor(A.lastResidual, act, [S, H], 'activation');
  b.tensor(A.lastNormed, act, [S, H], 'activation');
  b.tensor(A.logits, 'f32', [S, V], 'activation');

  const W = LLAMA_WEIGHT_NAMES;
  const embed = b.weight(W.embedTokens, [V, H], [W.embedTokens], [[V, H]]);
  const rope = computeRope(cfg.rope, D);
  const invFreq = b.dataWeight(W.ropeInvFreq, rope.invFreq, [rope.invFreq.length]);
  if (rope.attentionScaling !== 1) throw new Error(`rope attention scaling ${rope.attentionScaling} is not supported by rope_kv_write`);

  // Rows whose token the previous step sampled on the device take it from there (async scheduling).
  b.tensor(A.resolvedIds, 'i32', [T], 'activation');
  b.tensor(STATE.previousSampledIds, 'i32', [opts.limits.maxNumSeqs], 'state');
  b.op('select_tokens', [INPUT.inputIds, INPUT.tokenSources, STATE.previousSampledIds], [A.resolvedIds]);
  // The same for the penalties' pending output tokens, before this step overwrites the samples.
  b.tensor(A.extraIds, 'i32', [DIM.numProcessedSeqs], 'activation');
  b.op('select_tokens', [INPUT.penaltyExtraIds, INPUT.penaltyExtraSources, STATE.previousSampledIds], [A.extraIds]);
  b.op('embedding', [embed, A.resolvedIds], [A.hidden]);
  for (let i = 0; i < cfg.numLayers; i++) addLayer(b, cfg, plan, opts, i, { invFreq, rotaryDim: rope.rotaryDim });

  b.op('gather_rows', [A.hidden, INPUT.logitsIndices], [A.lastHidden]);
  b.op('gather_rows', [A.residual, INPUT.logitsIndices], [A.lastResidual]);
  const finalNorm = b.weight(W.finalNorm, [H], [W.finalNorm], [[H]]);
  b.op('rmsnorm', [A.lastHidden, A.lastResidual, finalNorm], [A.lastNormed, A.lastResidual], { eps: cfg.rmsNormEps, add_residual: 1 });
  // Tied checkpoints omit lm_head.weight (and HF ignores it when present): reuse the embedding table.
  const lmHead = cfg.tieWordEmbeddings ? embed : b.weight(W.lmHead, [V, H], [W.lmHead], [[V, H]]);
  b.op('matmul', [A.lastNormed, lmHead, null], [A.logits]);
  // Penalties, logit_bias, bans and structured output's mask; no-op when numProcessedSeqs is 0.
  b.op(
    'process_logits',
    [INPUT.logitsFlags, INPUT.penalties, INPUT.penaltyTokenIds, INPUT.penaltyTokenCounts, A.extraIds, INPUT.biasIds, INPUT.biasValues, INPUT.allowedMask],
    [A.logits],
  );
  b.op(
    'sample',
    [A.logits, INPUT.temperature, INPUT.topK, INPUT.topP, INPUT.minP, INPUT.seeds, INPUT.sampleCounters],
    [OUTPUT.sampledIds, OUTPUT.sampledLogprobs, OUTPUT.topIds, OUTPUT.topLogprobs],
    // The maximum K; the step's numTopLogprobs dim gives the K actually returned.
    { num_top_logprobs: opts.limits.maxTopLogprobs },
  );
  // Kept on the device for the next step, which may have been scheduled before these reach the host.
  b.op('select_tokens', [OUTPUT.sampledIds, null, null], [STATE.previousSampledIds]);
  return b.build();
}

function addLayer(
  b: ProgramBuilder,
  cfg: DecoderConfig,
  plan: ShardPlan,
  opts: DecoderBuildOptions,
  i: number,
  rope: { invFreq: string; rotaryDim: number },
): void {
  const { hiddenSize: H, headDim: D } = cfg;
  const { numHeads: nH, numKvHeads: nKV, intermediateSize: I } = plan;
  const sharded = plan.size > 1;
  // Checkpoint shapes are the whole model's; with one rank no slice is taken, so the spec is the unsharded one.
  const fullQ = cfg.numHeads * D;
  const fullKv = cfg.numKvHeads * D;
  const fullI = cfg.intermediateSize;
  const rows = (start: number, count: number) => (sharded ? { dim: 0 as const, start, count } : undefined);
  const columns = (start: number, count: number) => (sharded ? { dim: 1 as const, start, count } : undefined);
  // Row-parallel biases are added once, by rank 0, not once per rank into the sum.
  const rowParallelBias = plan.rank === 0;
  const A = LLAMA_ACTIVATIONS;
  const n = LLAMA_WEIGHT_NAMES.layer(i);
  const eps = cfg.rmsNormEps;

  const inputNorm = b.weight(n.inputNorm, [H], [n.inputNorm], [[H]]);
  if (i === 0) {
    // The first layer has no residual yet: normalise the embeddings and keep them as the residual.
    b.op('rmsnorm', [A.hidden, null, inputNorm], [A.normed, A.residual], { eps, add_residual: 0 });
  } else {
    b.op('rmsnorm', [A.hidden, A.residual, inputNorm], [A.normed, A.residual], { eps, add_residual: 1 });
  }

  // One matmul for q, k and v: their weights stacked along dim 0 in that order (rope_kv_write's layout);
  // a rank stacks its own q heads, then its k heads, then its v heads.
  const qkvShapes = [[fullQ, H], [fullKv, H], [fullKv, H]];
  const qkvSlices = [rows(plan.qHeadStart * D, nH * D), rows(plan.kvHeadStart * D, nKV * D), rows(plan.kvHeadStart * D, nKV * D)];
  const qkvW = b.weight(`${n.qkv}.weight`, [(nH + 2 * nKV) * D, H], [`${n.q}.weight`, `${n.k}.weight`, `${n.v}.weight`], qkvShapes, qkvSlices);
  const qkvB = cfg.attentionBias
    ? b.weight(`${n.qkv}.bias`, [(nH + 2 * nKV) * D], [`${n.q}.bias`, `${n.k}.bias`, `${n.v}.bias`], qkvShapes.map(([r]) => [r!]), qkvSlices)
    : null;
  b.op('matmul', [A.normed, qkvW, qkvB], [A.qkv]);

  const kvShape: Dim[] = [opts.kv.numBlocks, opts.kv.blockSize, nKV, D];
  b.tensor(n.kCache, opts.kv.dtype, kvShape, 'state');
  b.tensor(n.vCache, opts.kv.dtype, kvShape, 'state');
  b.op('rope_kv_write', [A.qkv, INPUT.positions, rope.invFreq, INPUT.slotMapping], [A.q, n.kCache, n.vCache], {
    num_heads: nH,
    num_kv_heads: nKV,
    head_dim: D,
    rotary_dim: rope.rotaryDim,
  });
  b.op(
    'attention',
    [A.q, n.kCache, n.vCache, INPUT.blockTables, INPUT.seqLens, INPUT.queryStartLoc],
    [A.attnOut],
    { scale: 1 / Math.sqrt(D), num_heads: nH, num_kv_heads: nKV, head_dim: D, block_size: opts.kv.blockSize },
  );
  const oW = b.weight(`${n.o}.weight`, [H, nH * D], [`${n.o}.weight`], [[H, fullQ]], [columns(plan.qHeadStart * D, nH * D)]);
  const oB = cfg.oProjBias && rowParallelBias ? b.weight(`${n.o}.bias`, [H], [`${n.o}.bias`], [[H]]) : null;
  b.op('matmul', [A.attnOut, oW, oB], [A.hidden]);
  if (sharded) b.op('all_reduce', [], [A.hidden]);

  const postNorm = b.weight(n.postAttentionNorm, [H], [n.postAttentionNorm], [[H]]);
  b.op('rmsnorm', [A.hidden, A.residual, postNorm], [A.normed, A.residual], { eps, add_residual: 1 });

  // gate then up, stacked along dim 0: silu_mul reads gate from the first half of each row.
  // A rank stacks its slice of gate, then the same slice of up.
  const mlpSlice = rows(plan.intermediateStart, I);
  const gateUpW = b.weight(`${n.gateUp}.weight`, [2 * I, H], [`${n.gate}.weight`, `${n.up}.weight`], [[fullI, H], [fullI, H]], [mlpSlice, mlpSlice]);
  const gateUpB = cfg.mlpBias
    ? b.weight(`${n.gateUp}.bias`, [2 * I], [`${n.gate}.bias`, `${n.up}.bias`], [[fullI], [fullI]], [mlpSlice, mlpSlice])
    : null;
  b.op('matmul', [A.normed, gateUpW, gateUpB], [A.gateUp]);
  b.op('silu_mul', [A.gateUp], [A.mlpAct]);
  const downW = b.weight(`${n.down}.weight`, [H, I], [`${n.down}.weight`], [[H, fullI]], [columns(plan.intermediateStart, I)]);
  const downB = cfg.mlpBias && rowParallelBias ? b.weight(`${n.down}.bias`, [H], [`${n.down}.bias`], [[H]]) : null;
  b.op('matmul', [A.mlpAct, downW, downB], [A.hidden]);
  if (sharded) b.op('all_reduce', [], [A.hidden]);
}

function declareStepInputs(b: ProgramBuilder): void {
  const T = DIM.numTokens;
  const S = DIM.numSeqs;
  b.tensor(INPUT.inputIds, 'i32', [T], 'input');
  b.tensor(INPUT.tokenSources, 'i32', [T], 'input');
  b.tensor(INPUT.positions, 'i32', [T], 'input');
  b.tensor(INPUT.slotMapping, 'i32', [T], 'input');
  b.tensor(INPUT.blockTables, 'i32', [S, DIM.maxBlocksPerSeq], 'input');
  b.tensor(INPUT.seqLens, 'i32', [S], 'input');
  b.tensor(INPUT.queryStartLoc, 'i32', [`${S}+1`], 'input');
  b.tensor(INPUT.logitsIndices, 'i32', [S], 'input');
  b.tensor(INPUT.temperature, 'f32', [S], 'input');
  b.tensor(INPUT.topK, 'i32', [S], 'input');
  b.tensor(INPUT.topP, 'f32', [S], 'input');
  b.tensor(INPUT.minP, 'f32', [S], 'input');
  b.tensor(INPUT.seeds, 'u64', [S], 'input');
  b.tensor(INPUT.sampleCounters, 'i32', [S], 'input');
  const R = DIM.numProcessedSeqs;
  b.tensor(INPUT.logitsFlags, 'i32', [R], 'input');
  b.tensor(INPUT.penalties, 'f32', [R, 3], 'input');
  b.tensor(INPUT.penaltyTokenIds, 'i32', [R, DIM.numPenaltyTokens], 'input');
  b.tensor(INPUT.penaltyTokenCounts, 'i32', [R, DIM.numPenaltyTokens], 'input');
  b.tensor(INPUT.penaltyExtraIds, 'i32', [R], 'input');
  b.tensor(INPUT.penaltyExtraSources, 'i32', [R], 'input');
  b.tensor(INPUT.biasIds, 'i32', [R, DIM.numBiasTokens], 'input');
  b.tensor(INPUT.biasValues, 'f32', [R, DIM.numBiasTokens], 'input');
  b.tensor(INPUT.allowedMask, 'u32', [R, DIM.maskWords], 'input');
}

function declareStepOutputs(b: ProgramBuilder): void {
  const S = DIM.numSeqs;
  b.tensor(OUTPUT.sampledIds, 'i32', [S], 'output');
  b.tensor(OUTPUT.sampledLogprobs, 'f32', [S], 'output');
  b.tensor(OUTPUT.topIds, 'i32', [S, DIM.numTopLogprobs], 'output');
  b.tensor(OUTPUT.topLogprobs, 'f32', [S, DIM.numTopLogprobs], 'output');
}

function validateOptions(opts: DecoderBuildOptions): void {
  const { limits, kv } = opts;
  const positive = { maxNumTokens: limits.maxNumTokens, maxNumSeqs: limits.maxNumSeqs, maxBlocksPerSeq: limits.maxBlocksPerSeq, numBlocks: kv.numBlocks, blockSize: kv.blockSize };
  for (const [key, value] of Object.entries(positive)) {
    if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`${key} must be a positive integer, got ${value}`);
  }
  if (!Number.isSafeInteger(limits.maxTopLogprobs) || limits.maxTopLogprobs < 0) {
    throw new Error(`maxTopLogprobs must be a non-negative integer, got ${limits.maxTopLogprobs}`);
  }
  if (!FLOAT_DTYPES.includes(opts.computeDtype)) throw new Error(`computeDtype must be f32, f16 or bf16, got ${opts.computeDtype}`);
  if (!KV_CACHE_DTYPES.includes(kv.dtype)) throw new Error(`kv.dtype must be f32, f16 or bf16, or f8e4m3 (FP8 storage), got ${kv.dtype}`);
  if (opts.weightDtype !== 'auto' && !FLOAT_DTYPES.includes(opts.weightDtype)) {
    throw new Error(`weightDtype must be auto, f32, f16 or bf16, got ${opts.weightDtype}`);
  }
}

/** `LlamaForCausalLM`: Llama 2, 3, 3.1, 3.2 (and the many checkpoints that reuse its layout). */
export const llamaArchitecture: ModelArchitecture = {
  name: 'LlamaForCausalLM',
  parseConfig: parseDecoderConfig,
  buildProgram: buildDecoderProgram,
};
