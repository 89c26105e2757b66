import { describe, expect, it } from 'vitest';
import { DecodeHeadroom, headroomFromConservativeness } from '../../../src/engine/sched-headroom.ts';
import { req, setup, step } from './helpers.ts';

// 24 usable blocks of 4 tokens = 96 tokens of KV: exactly both requests at their longest. One running
// request (8-token prompt, up to 40 more tokens) and a waiting one (the same): both prompts fit now.
const scenario = (headroom: { initialRatio: number; minRatio: number; decayPerStep: number } | null) => {
  const { sched, kv } = setup({ numBlocks: 25, blockSize: 4, maxModelLen: 64, headroom, enablePrefixCaching: false });
  sched.addRequest(req('a', 8, { maxTokens: 40, ignoreEos: true }));
  step(sched); // a's prompt
  sched.addRequest(req('b', 8, { maxTokens: 40, ignoreEos: true }));
  return { sched, kv };
};

describe('decode headroom at admission', () => {
  it('without it, a prompt that fits is admitted at once', () => {
    const { sched } = scenario(null);
    step(sched);
    expect(sched.numRunning).toBe(2);
  });

  it('with it, a prompt waits while the running decodes would not keep their share of the blocks', () => {
    // Full reserve after a's first token: a (3 blocks) may write 39 more tokens and b 40, which with b's
    // prompt (2 blocks) needs 3 + 2 + 20 blocks > 24.
    const { sched, kv } = scenario({ initialRatio: 1, minRatio: 1, decayPerStep: 0 });
    step(sched);
    expect(sched.numRunning).toBe(1);
    expect(sched.numWaiting).toBe(1);
    // b's trial allocation was given back: only a's blocks are held.
    expect(kv.pool.numUsableBlocks - kv.pool.numFreeBlocks).toBe(3);
    // As a generates, its reserve shrinks; b gets in once a's remaining tokens and b's all fit.
    let steps = 0;
    while (sched.numRunning < 2 && steps++ < 60) step(sched);
    expect(sched.numRunning).toBe(2);
    expect(steps).toBeGreaterThanOrEqual(2);
    // Admitted with headroom, neither is ever preempted on the way to the end.
    let preemptions = 0;
    while (sched.hasUnfinishedRequests()) preemptions += step(sched).out.preemptedRequestIds.length;
    expect(preemptions).toBe(0);
  });

  it('a request alone always runs, whatever the reserve', () => {
    const { sched } = setup({ numBlocks: 21, blockSize: 4, maxModelLen: 64, headroom: { initialRatio: 1, minRatio: 1, decayPerStep: 0 } });
    sched.addRequest(req('solo', 20, { maxTokens: 44, ignoreEos: true }));
    step(sched);
    expect(sched.numRunning).toBe(1);
  });

  it('is back to its initial reserve after the scheduler was idle, however far it had decayed', () => {
    // 50 steps take the reserve from 1 to 0; x alone decodes for 50, then the scheduler idles.
    const { sched } = setup({ numBlocks: 25, blockSize: 4, maxModelLen: 64, headroom: { initialRatio: 1, minRatio: 0, decayPerStep: 0.02 }, enablePrefixCaching: false });
    sched.addRequest(req('x', 8, { maxTokens: 50, ignoreEos: true }));
    while (sched.hasUnfinishedRequests()) step(sched);
    step(sched); // idle
    // The scenario of the test above: at a reserve of 0 b would be admitted at once; at ~1 it waits.
    sched.addRequest(req('a', 8, { maxTokens: 40, ignoreEos: true }));
    step(sched);
    sched.addRequest(req('b', 8, { maxTokens: 40, ignoreEos: true }));
    step(sched);
    expect(sched.numRunning).toBe(1);
    expect(sched.numWaiting).toBe(1);
  });

  it('decays while nothing is preempted and resets on a preemption; conservativeness 0 turns it off', () => {
    const h = new DecodeHeadroom({ initialRatio: 0.7, minRatio: 0.1, decayPerStep: 0.25 });
    h.afterStep(false);
    expect(h.ratio).toBeCloseTo(0.45);
    h.afterStep(false);
    h.afterStep(false);
    expect(h.ratio).toBeCloseTo(0.1);
    h.afterStep(true);
    expect(h.ratio).toBe(0.7);
    h.afterStep(false);
    h.reset();
    expect(h.ratio).toBe(0.7);
    expect(headroomFromConservativeness(0)).toBeNull();
    expect(headroomFromConservativeness(1)).toEqual({ initialRatio: 0.7, minRatio: 0.1, decayPerStep: 0.001 });
    expect(headroomFromConservativeness(2)!.initialRatio).toBe(1);
    expect(() => new DecodeHeadroom({ initialRatio: 0.2, minRatio: 0.5, decayPerStep: 0 })).toThrow(/minRatio/);
  });
});
