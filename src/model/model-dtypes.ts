/**
 * `--dtype` → the dtypes a model runs in. As vLLM's flag, it names the model's dtype: on a GPU (a device
 * whose preferred dtype is 16-bit) the weights and the activations (and so the KV cache's `auto`); on
 * the CPU backend, which computes in f32 whatever its weights are stored in, the weights only.
 * `auto`: the device's preferred dtype, except that the CPU keeps the checkpoint's weight dtype.
 */
import type { DTypeOption } from '../config.ts';
import type { DType } from '../device/program.ts';

const DTYPE_OPTION: Record<Exclude<DTypeOption, 'auto'>, DType> = { float32: 'f32', bfloat16: 'bf16', float16: 'f16' };

export interface ModelDtypes {
  /** Activations (and the KV cache's `auto` storage). */
  computeDtype: DType;
  /** Weights as stored on the device; 'auto' = the checkpoint's own dtype. */
  weightDtype: DType | 'auto';
}

export function resolveModelDtypes(option: DTypeOption | undefined, preferredDtype: DType): ModelDtypes {
  const explicit = option === undefined || option === 'auto' ? undefined : DTYPE_OPTION[option];
  const onHost = preferredDtype === 'f32';
  const computeDtype = explicit !== undefined && !onHost ? explicit : preferredDtype;
  const weightDtype = explicit ?? (onHost ? 'auto' : computeDtype);
  return { computeDtype, weightDtype };
}
