/**
 * Device memory arithmetic: how many paged-KV blocks fit a budget, and what a program's weights,
 * KV cache and activations take (to report at startup and to check fit before allocating).
 */
import { DTYPE_BYTES } from '../device/program.ts';
import type { DType, Dim, ProgramSpec, TensorDecl, TensorRole } from '../device/program.ts';

/** The model dimensions the KV cache depends on (a DecoderConfig has them). */
export interface KvCacheGeometry {
  numLayers: number;
  numKvHeads: number;
  headDim: number;
}

/** K and V of every layer for one block: 2 × numLayers × blockSize × numKvHeads × headDim × dtype bytes. */
export function kvBytesPerBlock(cfg: KvCacheGeometry, blockSize: number, dtype: DType): number {
  return 2 * cfg.numLayers * blockSize * cfg.numKvHeads * cfg.headDim * DTYPE_BYTES[dtype];
}

/** Most whole blocks that fit in `budgetBytes` (0 when not even one does). */
export function numBlocksForBudget(cfg: KvCacheGeometry, budgetBytes: number, blockSize: number, dtype: DType): number {
  if (!(budgetBytes > 0)) return 0;
  return Math.floor(budgetBytes / kvBytesPerBlock(cfg, blockSize, dtype));
}

/** Size of one dimension at its maximum. "name" or "name+k" refer to `dims`. */
export function resolveDim(dim: Dim, dims: Record<string, number>): number {
  if (typeof dim === 'number') return dim;
  const match = /^([A-Za-z_][A-Za-z0-9_]*)(?:\+(\d+))?$/.exec(dim);
  const base = match ? dims[match[1]!] : undefined;
  if (base === undefined) throw new Error(`unknown symbolic dimension "${dim}" (dims: ${Object.keys(dims).join(', ')})`);
  return base + Number(match![2] ?? 0);
}

/** Bytes of one tensor at the maximum of its symbolic dims. */
export function tensorBytes(decl: TensorDecl, dims: Record<string, number>): number {
  return decl.shape.reduce<number>((n, d) => n * resolveDim(d, dims), 1) * DTYPE_BYTES[decl.dtype];
}

export type ProgramMemory = Record<TensorRole, number> & { total: number };

/** Bytes per tensor role; 'state' is the KV cache, 'weight' what the checkpoint occupies on the device. */
export function programMemory(spec: ProgramSpec): ProgramMemory {
  const bytes: ProgramMemory = { weight: 0, state: 0, activation: 0, input: 0, output: 0, total: 0 };
  for (const decl of spec.tensors) {
    const n = tensorBytes(decl, spec.dims);
    bytes[decl.role] += n;
    bytes.total += n;
  }
  return bytes;
}

export function programWeightBytes(spec: ProgramSpec): number {
  return programMemory(spec).weight;
}

/** "1.23 GiB" — for startup logs. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(2)} ${units[unit]}`;
}
