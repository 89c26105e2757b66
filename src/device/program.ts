/**
 * A model step as data: the tensors it uses and the ops that compute it.
 *
 * An architecture in `models/` builds one `ProgramSpec` when the model loads; the native executor
 * (native/src/program.cc) allocates its tensors once and runs the op list once per step, as one
 * asynchronous native call. Shapes may name symbolic dimensions ("numTokens", "numSeqs+1") whose
 * values arrive with each step; buffers are sized for the maxima declared in `dims`.
 *
 * Op names, operand order and parameters mirror `kernels/ops.h` exactly.
 */

/** 'f8e4m3': FP8 E4M3 storage for the KV cache only (kernels/ops.h UD_F8E4M3); travels as Uint8Array bits. */
export type DType = 'f32' | 'f16' | 'bf16' | 'i32' | 'u32' | 'u64' | 'f8e4m3';

/** A fixed size, or a symbolic one: "name" or "name+k" where name is a key of `ProgramSpec.dims`. */
export type Dim = number | string;

export type TensorRole =
  /** Loaded once at program creation (from files, random, or inline data); read-only afterwards. */
  | 'weight'
  /** Persistent device memory that ops update across steps (the paged KV cache); zeroed at creation. */
  | 'state'
  /** Scratch memory valid within one step. */
  | 'activation'
  /** Uploaded from the host at the start of each step (typed array passed to `step`). */
  | 'input'
  /** An activation that is downloaded to the host at the end of each step. */
  | 'output';

/** A contiguous byte range of a safetensors file. */
export interface FileSegment {
  path: string;
  /** Absolute byte offset of the tensor data in the file. */
  offset: number;
  byteLength: number;
  /** dtype of the stored data; the loader converts to the tensor's dtype. */
  dtype: DType;
  /**
   * Strided (a column slice of a row-major matrix, for tensor parallelism): `rows` runs of
   * byteLength / rows bytes, run i starting at offset + i * rowStride. Absent: one contiguous run.
   */
  rows?: number;
  rowStride?: number;
}

export type WeightInit =
  /** Segments concatenated in order along dim 0 (e.g. q, k, v projections into one QKV weight). */
  | { kind: 'file'; segments: FileSegment[] }
  /** `--load-format dummy`: deterministic random values on the device (UD_OP_FILL_RANDOM). */
  | { kind: 'random'; seed: number; std: number }
  /** Small tensors computed on the host, e.g. RoPE inverse frequencies. */
  | { kind: 'data'; data: Float32Array | Int32Array };

export interface TensorDecl {
  name: string;
  dtype: DType;
  shape: Dim[];
  role: TensorRole;
  /** Required for role 'weight'. */
  init?: WeightInit;
}

export type OpKind =
  | 'embedding'
  | 'matmul'
  | 'rmsnorm'
  | 'rope_kv_write'
  | 'attention'
  | 'silu_mul'
  | 'gather_rows'
  | 'sample'
  | 'fill_random'
  | 'select_tokens'
  | 'process_logits'
  /** Tensor parallelism: in place sum over the ranks (no-op in a program of one rank). */
  | 'all_reduce';

export interface OpNode {
  op: OpKind;
  /** Tensor names in ops.h operand order; null for an absent optional operand. */
  src: (string | null)[];
  dst: (string | null)[];
  /** The fields of the op's ops.h params struct, e.g. { eps: 1e-5, add_residual: 1 }. */
  params?: Record<string, number>;
}

export interface ProgramSpec {
  /** Maximum value of each symbolic dimension; buffers are allocated for these. */
  dims: Record<string, number>;
  tensors: TensorDecl[];
  ops: OpNode[];
}

export type HostArray = Float32Array | Int32Array | Uint32Array | BigUint64Array | Uint16Array | Uint8Array;

/** What one step sends: the dims' values and one typed array per 'input' tensor. */
export interface StepRequest {
  dims: Record<string, number>;
  inputs: Record<string, HostArray>;
  /**
   * The caller pads such steps to a few bucket shapes (decode batches of 1, 2, 4, 8, ...), so the
   * executor may capture the op sequence for these dims once and replay it (CUDA graphs, ACL graph
   * capture). Backends without graphs ignore it. Results are the same either way.
   */
  graph?: boolean;
}

/** What one step returns: one typed array per 'output' tensor, sized for this step's dims. */
export type StepResult = Record<string, HostArray>;

export const DTYPE_BYTES: Record<DType, number> = { f32: 4, f16: 2, bf16: 2, i32: 4, u32: 4, u64: 8, f8e4m3: 1 };
