import { describe, expect, it } from 'vitest';
import { DEFAULT_BATCH_LIMITS, resolveBatchLimits } from '../../../src/model/batch-limits.ts';

const GiB = 1024 ** 3;
const none = { maxNumSeqs: null, maxNumBatchedTokens: null };

describe('resolveBatchLimits', () => {
  it('sizes the defaults by the device: f32 host, small accelerator, large accelerator', () => {
    expect(resolveBatchLimits({ preferredDtype: 'f32', totalMemory: 512 * GiB }, none)).toEqual(DEFAULT_BATCH_LIMITS.host);
    expect(resolveBatchLimits({ preferredDtype: 'bf16', totalMemory: 24 * GiB }, none)).toEqual({ maxNumSeqs: 256, maxNumBatchedTokens: 2048 });
    expect(resolveBatchLimits({ preferredDtype: 'bf16', totalMemory: 80 * GiB }, none)).toEqual({ maxNumSeqs: 1024, maxNumBatchedTokens: 8192 });
    expect(resolveBatchLimits({ preferredDtype: 'f16', totalMemory: 140 * GiB }, none)).toEqual(DEFAULT_BATCH_LIMITS.largeAccelerator);
  });

  it('keeps what the user set, and raises a default token budget to the sequences asked for', () => {
    const h200 = { preferredDtype: 'bf16' as const, totalMemory: 140 * GiB };
    expect(resolveBatchLimits(h200, { maxNumSeqs: 256, maxNumBatchedTokens: 4096 })).toEqual({ maxNumSeqs: 256, maxNumBatchedTokens: 4096 });
    expect(resolveBatchLimits(h200, { maxNumSeqs: 16, maxNumBatchedTokens: null })).toEqual({ maxNumSeqs: 16, maxNumBatchedTokens: 8192 });
    expect(resolveBatchLimits(h200, { maxNumSeqs: 16384, maxNumBatchedTokens: null })).toEqual({ maxNumSeqs: 16384, maxNumBatchedTokens: 16384 });
    // An explicit budget below the sequences is left for the scheduler to refuse, naming both flags.
    expect(resolveBatchLimits(h200, { maxNumSeqs: 64, maxNumBatchedTokens: 32 })).toEqual({ maxNumSeqs: 64, maxNumBatchedTokens: 32 });
  });
});
