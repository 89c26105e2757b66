/**
 * The native addon (native/, built by `npm run build:native`) with a type for every export.
 *
 * This is the only module that loads the `.node` file; the rest of the app uses `device.ts`. The
 * conformance suite also uses `runOp` from here, which the engine never needs (the loader asks
 * `supportsOp` through device.ts, to refuse an option the backend lacks).
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DType, HostArray, OpKind, ProgramSpec, StepRequest, StepResult } from './program.ts';

export interface NativeDeviceInfo {
  /** e.g. "CPU (2 threads)", "NVIDIA H100 80GB HBM3". */
  name: string;
  /** The backend's registry name: "cpu", "cuda", ... */
  backend: string;
  /** Bytes the backend may allocate in total. */
  totalMemory: number;
  /** Bytes free right now. */
  freeMemory: number;
  /** The dtype the backend computes fastest in (CPU: f32, GPUs: bf16). */
  preferredDtype: DType;
  /** KV block size the kernels are tuned for. */
  defaultBlockSize: number;
  supportsGraphs: boolean;
}

export interface NativeDeviceOptions {
  /** Which GPU / NPU; ignored by cpu. */
  deviceIndex?: number;
  /** CPU worker threads; 0 or absent = hardware concurrency. */
  numThreads?: number;
}

/** Device bytes a program holds, by tensor role. */
export interface MemoryUsage {
  weight: number;
  state: number;
  activation: number;
  input: number;
  output: number;
  total: number;
}

/** One operand of `runOp`: a dense tensor and (for srcs, optionally dsts) its host data. */
export interface OpTensor {
  dtype: DType;
  /** Outermost first, 1 to 4 dims. */
  shape: number[];
  /** Float32Array for f32, Uint16Array for f16/bf16 bit patterns, Int32Array, Uint32Array, BigUint64Array. */
  data?: HostArray;
  /** dst only: use src[alias]'s device buffer (tests ops that may write in place). */
  alias?: number;
}

/** One op as `runOp` takes it: operands in kernels/ops.h order, null for an absent optional one. */
export interface OpCall {
  op: OpKind;
  params?: Record<string, number>;
  src: (OpTensor | null)[];
  dst: (OpTensor | null)[];
}

export interface NativeProgram {
  /** One asynchronous native call: uploads inputs, runs every op, downloads outputs. Steps run in call order. */
  step(request: StepRequest): Promise<StepResult>;
  memoryUsage(): MemoryUsage;
  /** Frees the program's device memory (once no step is in flight). Idempotent. */
  dispose(): void;
}

export interface NativeDevice {
  info(): NativeDeviceInfo;
  /** Allocates and loads the weights on a worker thread. */
  createProgram(spec: ProgramSpec): Promise<NativeProgram>;
  /** Runs one op synchronously and returns every dst (null where the dst was null). */
  runOp(call: OpCall): (HostArray | null)[];
  /** Whether the backend implements this op for these operand dtypes (data is ignored). */
  supportsOp(call: OpCall): boolean;
  /** Releases the device; the backend goes away once its programs are disposed too. Idempotent. */
  close(): void;
}

export interface NativeDeviceGroupOptions {
  /** Ranks: one backend instance each. */
  size: number;
  /** Rank r's device; default r. */
  deviceIndices?: number[];
  /** CPU worker threads of each rank; 0 or absent = hardware concurrency. */
  numThreads?: number;
  /** 'auto' (default): the backend's own collectives (cuda: NCCL), else the host communicator. */
  communicator?: 'auto' | 'host';
}

/** The ranks of a tensor-parallel group, one backend instance each. */
export interface NativeDeviceGroup {
  /** Each rank's device, rank 0 first. */
  info(): NativeDeviceInfo[];
  /**
   * One spec per rank (its shard of the weights); one Program whose step runs every rank and
   * returns rank 0's outputs. Opens the group's communicators (NCCL on cuda) first.
   */
  createProgram(specs: ProgramSpec[]): Promise<NativeProgram>;
  /** Idempotent. Programs already created keep working until disposed. */
  close(): void;
}

export interface NativeAddon {
  /** Backends compiled into this build, cpu first. */
  listBackends(): string[];
  /** Throws (error.code "UD_ERR_UNAVAILABLE") when the backend is not compiled in or has no device. */
  openDevice(name: string, options?: NativeDeviceOptions): NativeDevice;
  /** Opens `size` instances of the backend (device 0..size-1); throws naming the rank that fails. */
  openDeviceGroup(name: string, options: NativeDeviceGroupOptions): NativeDeviceGroup;
}

/** Where cmake-js puts the addon, relative to the repository root. */
const ADDON_CANDIDATES = ['build/native/Release/updraft.node', 'build/native/updraft.node', 'build/native/Debug/updraft.node'];

function repositoryRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
}

let cached: NativeAddon | undefined;

/** Loads the addon once. Throws with build instructions when it has not been built. */
export function loadNativeAddon(): NativeAddon {
  if (cached) return cached;
  const root = repositoryRoot();
  const override = process.env['UPDRAFT_NATIVE_ADDON'];
  const candidates = override ? [resolve(override)] : ADDON_CANDIDATES.map((p) => join(root, p));
  const path = candidates.find((p) => existsSync(p));
  if (!path) {
    throw new Error(
      `The Updraft native addon is not built (looked for ${candidates.join(', ')}). ` +
        'Run `npm run build:native` (needs cmake and a C++17 compiler).',
    );
  }
  const require = createRequire(import.meta.url);
  cached = require(path) as NativeAddon;
  return cached;
}
