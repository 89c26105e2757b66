/**
 * --kv-cache-dtype: the dtype the KV cache is stored in, and the check that the device can store it.
 *
 * auto keeps the compute dtype (the cache as it was before the option existed); fp8 and fp8_e4m3 store
 * K and V as FP8 E4M3, unscaled (vLLM's semantics for a checkpoint without KV scales). Only the ops
 * that touch the cache see the new dtype (rope_kv_write writes it, attention reads it), so whether a
 * device can run the model with it is a question for exactly those ops: the loader asks it through
 * supportsOp before allocating anything, so a backend without FP8 (ascend) refuses at start with the
 * flag named instead of failing deep inside program creation.
 */
import { ConfigError } from '../config.ts';
import type { KvCacheDtypeOption } from '../config.ts';
import type { OpCall } from '../device/device.ts';
import type { DType, ProgramSpec, TensorDecl } from '../device/program.ts';
import { resolveDim } from './memory.ts';

/** The cache's storage dtype for the option, on a device that computes in `computeDtype`. */
export function kvCacheDtypeFor(option: KvCacheDtypeOption, computeDtype: DType): DType {
  return option === 'auto' ? computeDtype : 'f8e4m3';
}

/**
 * Each distinct op of `spec` with an operand of `dtype`, as supportsOp takes it: shapes at the dims'
 * maxima, params as declared, no data. Every layer's ops look alike, so a model yields a couple.
 */
export function opCallsTouching(spec: ProgramSpec, dtype: DType): OpCall[] {
  const tensors = new Map<string, TensorDecl>(spec.tensors.map((t) => [t.name, t]));
  const operand = (name: string | null) => {
    const decl = name === null ? undefined : tensors.get(name);
    return decl ? { dtype: decl.dtype, shape: decl.shape.map((d) => resolveDim(d, spec.dims)) } : null;
  };
  const calls = new Map<string, OpCall>();
  for (const node of spec.ops) {
    const names = [...node.src, ...node.dst];
    if (!names.some((name) => name !== null && tensors.get(name)?.dtype === dtype)) continue;
    const call: OpCall = { op: node.op, src: node.src.map(operand), dst: node.dst.map(operand), ...(node.params ? { params: node.params } : {}) };
    calls.set(JSON.stringify(call), call);
  }
  return [...calls.values()];
}

/** The refusal every path gives: the flag and value the user chose, the device, what is missing. */
export function kvCacheDtypeRefusal(option: KvCacheDtypeOption, deviceName: string, detail: string): ConfigError {
  return new ConfigError(`--kv-cache-dtype ${option} is not supported on ${deviceName}: ${detail}; use --kv-cache-dtype auto`);
}

/**
 * Throws kvCacheDtypeRefusal when the device lacks an op that touches a KV cache of `kvDtype` in
 * `spec`. `auto` is never refused here: the compute dtype's cache is what every backend implements.
 */
export function requireKvCacheSupport(
  option: KvCacheDtypeOption,
  kvDtype: DType,
  spec: ProgramSpec,
  device: { name: string; supportsOp: (call: OpCall) => boolean },
): void {
  if (option === 'auto') return;
  for (const call of opCallsTouching(spec, kvDtype)) {
    if (device.supportsOp(call)) continue;
    throw kvCacheDtypeRefusal(option, device.name, `its ${call.op} kernel does not take a KV cache of ${kvDtype} (operand dtypes: ${operandDtypes(call)})`);
  }
}

/**
 * Program creation on a device group (whose ranks cannot be asked beforehand) fails with the addon's
 * UD_ERR_UNSUPPORTED naming an op and its dtypes: the same refusal when that op has a `kvDtype`
 * operand, the error unchanged otherwise.
 */
export function explainKvCacheFailure(error: unknown, option: KvCacheDtypeOption, kvDtype: DType, deviceName: string): unknown {
  if (option === 'auto' || !(error instanceof Error)) return error;
  const code = (error as Error & { code?: unknown }).code;
  if (code !== 'UD_ERR_UNSUPPORTED' || !error.message.includes(kvDtype)) return error;
  return kvCacheDtypeRefusal(option, deviceName, error.message);
}

function operandDtypes(call: OpCall): string {
  const list = (operands: OpCall['src']) => operands.map((t) => t?.dtype ?? '-').join(', ');
  return `src ${list(call.src)}; dst ${list(call.dst)}`;
}
