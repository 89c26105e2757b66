/**
 * The step limits when the user sets none: how many sequences run at once (--max-num-seqs) and how many
 * tokens one step computes (--max-num-batched-tokens). They depend on the device, as vLLM's defaults do:
 * a big accelerator is only busy with many sequences in flight, while the CPU reference backend wants
 * small steps so that decodes keep flowing. Decided from the device's capabilities, not its name.
 */
import type { DeviceInfo } from '../device/device.ts';

export interface BatchLimits {
  maxNumSeqs: number;
  maxNumBatchedTokens: number;
}

/** Accelerators with at least this much memory get the large defaults (vLLM: 70 GiB, H100/H200/910B). */
const LARGE_DEVICE_BYTES = 70 * 1024 ** 3;

/** The defaults per kind of device; exported for the flag table's help text and the tests. */
export const DEFAULT_BATCH_LIMITS = {
  /** Devices that compute in f32 (the CPU backend): small steps, few sequences. */
  host: { maxNumSeqs: 64, maxNumBatchedTokens: 2048 },
  /** bf16/f16 accelerators under 70 GiB. */
  accelerator: { maxNumSeqs: 256, maxNumBatchedTokens: 2048 },
  /** bf16/f16 accelerators with 70 GiB or more (vLLM's defaults on an H100 for the API server). */
  largeAccelerator: { maxNumSeqs: 1024, maxNumBatchedTokens: 8192 },
} as const satisfies Record<string, BatchLimits>;

/** The user's values where given (non-null), else the device's defaults; tokens ≥ sequences always. */
export function resolveBatchLimits(info: Pick<DeviceInfo, 'preferredDtype' | 'totalMemory'>, requested: { maxNumSeqs: number | null; maxNumBatchedTokens: number | null }): BatchLimits {
  const defaults =
    info.preferredDtype === 'f32' ? DEFAULT_BATCH_LIMITS.host : info.totalMemory >= LARGE_DEVICE_BYTES ? DEFAULT_BATCH_LIMITS.largeAccelerator : DEFAULT_BATCH_LIMITS.accelerator;
  const maxNumSeqs = requested.maxNumSeqs ?? defaults.maxNumSeqs;
  // Every running decode must fit a step: an explicit --max-num-seqs above the default token budget
  // raises the budget with it (an explicit budget below it is the scheduler's error to report).
  const maxNumBatchedTokens = requested.maxNumBatchedTokens ?? Math.max(defaults.maxNumBatchedTokens, maxNumSeqs);
  return { maxNumSeqs, maxNumBatchedTokens };
}
