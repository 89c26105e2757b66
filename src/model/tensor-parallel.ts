/**
 * Tensor parallelism (Megatron-LM's split, as vLLM does it): which part of every weight rank r of N
 * holds, and how that part is read from the checkpoint.
 *
 *   q, k, v and gate, up   column-parallel: rank r holds its heads' rows (its slice of the outputs)
 *   o_proj and down_proj   row-parallel: rank r holds the matching columns (its slice of the inputs)
 *                          and produces a partial sum, completed by an all_reduce over the ranks
 *   embedding, lm_head,    replicated: every rank holds all of them and computes the same values
 *   norms, rope tables     (no vocab-parallel embedding yet: simpler, costs one full LM head per GPU)
 *
 * KV heads are split like the q heads. When N exceeds the KV heads (8B: 8 KV heads, TP 16) each KV
 * head is replicated on N / numKvHeads consecutive ranks, as vLLM does: every rank still holds one
 * KV head, the one its q heads attend to. Each rank's KV cache holds only its own KV heads, so a
 * KV block costs 1/N of the memory per device (replicated heads excepted).
 *
 * Shard plans and file slices are plain data; models/llama.ts applies them, src/model/loader.ts
 * builds one program per rank.
 */
import { ConfigError } from '../config.ts';
import { DTYPE_BYTES } from '../device/program.ts';
import type { FileSegment } from '../device/program.ts';

export interface TensorParallelRank {
  rank: number;
  size: number;
}

export const SINGLE_RANK: TensorParallelRank = { rank: 0, size: 1 };

/** The model dimensions sharding depends on (a DecoderConfig has them). */
export interface ShardableConfig {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
}

/** What one rank holds. Head and column ranges are global indices into the unsharded model. */
export interface ShardPlan extends TensorParallelRank {
  /** Query heads on this rank: numHeads / size. */
  numHeads: number;
  /** First of this rank's query heads. */
  qHeadStart: number;
  /** KV heads on this rank: numKvHeads / size, or 1 when KV heads are replicated. */
  numKvHeads: number;
  /** First of this rank's KV heads. */
  kvHeadStart: number;
  /** Ranks that hold each of this rank's KV heads (1: split, > 1: replicated). */
  kvReplicas: number;
  /** This rank's slice of the MLP: intermediateSize / size columns starting at intermediateStart. */
  intermediateSize: number;
  intermediateStart: number;
}

/** Throws ConfigError when the model cannot be split over `size` ranks, saying why. */
export function validateTensorParallel(cfg: ShardableConfig, size: number): void {
  if (!Number.isSafeInteger(size) || size < 1) throw new ConfigError(`--tensor-parallel-size must be a positive integer, got ${size}`);
  if (cfg.numHeads % size !== 0) {
    throw new ConfigError(`--tensor-parallel-size ${size} does not divide the model's ${cfg.numHeads} attention heads`);
  }
  if (cfg.numKvHeads % size !== 0 && size % cfg.numKvHeads !== 0) {
    throw new ConfigError(
      `--tensor-parallel-size ${size} and the model's ${cfg.numKvHeads} KV heads: one must divide the other ` +
        '(KV heads are split across ranks, or replicated when there are fewer than ranks)',
    );
  }
  if (cfg.intermediateSize % size !== 0) {
    throw new ConfigError(`--tensor-parallel-size ${size} does not divide the model's intermediate_size ${cfg.intermediateSize}`);
  }
}

export function shardPlan(cfg: ShardableConfig, tp: TensorParallelRank): ShardPlan {
  validateTensorParallel(cfg, tp.size);
  if (!Number.isSafeInteger(tp.rank) || tp.rank < 0 || tp.rank >= tp.size) throw new Error(`rank ${tp.rank} is outside [0, ${tp.size})`);
  const numHeads = cfg.numHeads / tp.size;
  const split = cfg.numKvHeads % tp.size === 0;
  const kvReplicas = split ? 1 : tp.size / cfg.numKvHeads;
  const numKvHeads = split ? cfg.numKvHeads / tp.size : 1;
  const intermediateSize = cfg.intermediateSize / tp.size;
  return {
    ...tp,
    numHeads,
    qHeadStart: tp.rank * numHeads,
    numKvHeads,
    // Replicated: ranks [k * kvReplicas, (k + 1) * kvReplicas) hold KV head k, which their q heads use.
    kvHeadStart: split ? tp.rank * numKvHeads : Math.floor(tp.rank / kvReplicas),
    kvReplicas,
    intermediateSize,
    intermediateStart: tp.rank * intermediateSize,
  };
}

/** A part of a checkpoint tensor: `count` rows (dim 0) or columns (dim 1) from `start`. */
export interface PartSlice {
  dim: 0 | 1;
  start: number;
  count: number;
}

/** The bytes of `slice` of a row-major tensor of `shape` stored contiguously in `segment`. */
export function sliceSegment(segment: FileSegment, shape: readonly number[], slice: PartSlice): FileSegment {
  if (segment.rows !== undefined && segment.rows !== 1) throw new Error('sliceSegment: the segment is already strided');
  const size = shape[slice.dim];
  if (size === undefined) throw new Error(`sliceSegment: a [${shape.join(', ')}] tensor has no dim ${slice.dim}`);
  if (!(slice.start >= 0 && slice.count >= 0 && slice.start + slice.count <= size)) {
    throw new Error(`sliceSegment: [${slice.start}, ${slice.start + slice.count}) of dim ${slice.dim} is outside [0, ${size})`);
  }
  const elementBytes = DTYPE_BYTES[segment.dtype];
  const rowElements = shape.slice(1).reduce((n, d) => n * d, 1);
  if (slice.dim === 0) {
    // Whole rows: a contiguous run.
    const rowBytes = rowElements * elementBytes;
    return { ...segment, offset: segment.offset + slice.start * rowBytes, byteLength: slice.count * rowBytes };
  }
  if (shape.length !== 2) throw new Error(`sliceSegment: column slices need a matrix, not [${shape.join(', ')}]`);
  // Columns: the same run of every row, one row stride apart.
  const rows = shape[0]!;
  const rowStride = rowElements * elementBytes;
  return {
    ...segment,
    offset: segment.offset + slice.start * elementBytes,
    byteLength: rows * slice.count * elementBytes,
    rows,
    rowStride,
  };
}
