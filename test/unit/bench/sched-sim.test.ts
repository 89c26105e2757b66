import { describe, expect, it } from 'vitest';
import { simulateBatch, type BatchWorkload } from '../../../bench/sched-sim.ts';

const small: BatchWorkload = { requests: 40, inputLen: 64, outputLen: 32, kvTokens: 40 * 128, blockSize: 16, maxNumSeqs: 64, maxNumBatchedTokens: 512, conservativeness: 0 };

describe('bench/sched-sim', () => {
  it('computes every prompt once and never preempts when the KV cache holds the whole batch', () => {
    const r = simulateBatch(small);
    expect(r.outputTokens).toBe(40 * 32);
    expect(r.preemptions).toBe(0);
    expect(r.recomputedTokens).toBe(0);
  });

  it('recomputes preempted prompts when the cache is short, and decode headroom recomputes less', () => {
    const tight = { ...small, kvTokens: 1024 };
    const eager = simulateBatch(tight);
    const careful = simulateBatch({ ...tight, conservativeness: 2 });
    expect(eager.outputTokens).toBe(40 * 32);
    expect(careful.outputTokens).toBe(40 * 32);
    expect(eager.preemptions).toBeGreaterThan(0);
    expect(eager.recomputedTokens).toBeGreaterThan(0);
    expect(careful.recomputedTokens).toBeLessThan(eager.recomputedTokens);
  });
});
