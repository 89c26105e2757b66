import { describe, expect, it } from 'vitest';
import { RequestStatus } from '../../../src/engine/request.ts';
import { EOS, plan, req, setup, step, tokens } from './helpers.ts';

describe('Scheduler: one step', () => {
  it('prefills then decodes, describing tokens, positions, block tables and sampling per request', () => {
    const { sched } = setup({ blockSize: 4 });
    const a = req('a', [11, 12, 13, 14, 15, 16]);
    sched.addRequest(a);
    const s1 = step(sched).out.scheduled[0]!;
    expect(s1).toMatchObject({ requestId: 'a', startPos: 0, numScheduledTokens: 6, isAdmission: true, willSample: true, sampleIndex: 0 });
    expect([...s1.tokenIds]).toEqual([11, 12, 13, 14, 15, 16]);
    expect(s1.blockIds).toEqual([1, 2]);
    expect(s1.newBlockIds).toEqual([1, 2]);
    expect(a.outputTokenIds).toEqual([7]);
    expect(a.numComputedTokens).toBe(6);

    const s2 = step(sched, () => 8).out.scheduled[0]!;
    expect(s2).toMatchObject({ startPos: 6, numScheduledTokens: 1, isAdmission: false, willSample: true, sampleIndex: 1 });
    expect([...s2.tokenIds]).toEqual([7]);
    expect(s2.newBlockIds).toEqual([]);
    // slot = blockIds[floor(p / blockSize)] * blockSize + p % blockSize
    expect(s2.blockIds[Math.floor(6 / 4)]! * 4 + (6 % 4)).toBe(10);
    step(sched);
    const s4 = step(sched).out.scheduled[0]!;
    expect(s4.startPos).toBe(8);
    expect(s4.newBlockIds).toEqual([3]);
    expect(a.outputTokenIds).toEqual([7, 8, 7, 7]);
  });

  it('chunks a long prompt over steps and samples only at its end', () => {
    const { sched } = setup({ maxNumBatchedTokens: 8 });
    const a = req('a', 20);
    sched.addRequest(a);
    const outs = [step(sched).out, step(sched).out, step(sched).out];
    expect(outs.map((o) => plan(o))).toEqual([[['a', 8]], [['a', 8]], [['a', 4]]]);
    expect(outs.map((o) => o.scheduled[0]!.willSample)).toEqual([false, false, true]);
    expect(outs.map((o) => o.scheduled[0]!.sampleIndex)).toEqual([0, 0, 0]);
    expect(outs.map((o) => o.numSampled)).toEqual([0, 0, 1]);
    expect(a.outputTokenIds).toEqual([7]);
  });

  it('respects maxNumSeqs and the token budget', () => {
    const { sched } = setup({ maxNumSeqs: 2, maxNumBatchedTokens: 64 });
    for (const id of ['a', 'b', 'c']) sched.addRequest(req(id, 4));
    const { out } = step(sched);
    expect(plan(out)).toEqual([['a', 4], ['b', 4]]);
    expect(out.numScheduledTokens).toBe(8);
    expect(sched.numRunning).toBe(2);
    expect(sched.numWaiting).toBe(1);
  });

  it('admits waiting requests by priority, then arrival', () => {
    const { sched } = setup({ maxNumSeqs: 1 });
    sched.addRequest(req('late-low', 2, { maxTokens: 1 }, { priority: 1 }));
    sched.addRequest(req('mid', 2, { maxTokens: 1 }));
    sched.addRequest(req('urgent', 2, { maxTokens: 1 }, { priority: -1 }));
    sched.addRequest(req('mid-2', 2, { maxTokens: 1 }));
    const order = [1, 2, 3, 4].map(() => step(sched).out.scheduled[0]!.requestId);
    expect(order).toEqual(['urgent', 'mid', 'mid-2', 'late-low']);
  });

  it('refuses to schedule twice without an update, and updates for another step', () => {
    const { sched } = setup();
    sched.addRequest(req('a', 3));
    const out = sched.schedule();
    expect(() => sched.schedule()).toThrow(/awaiting updateFromOutput/);
    expect(() => sched.updateFromOutput(out, [])).toThrow(/no valid sampled token for a/);
    sched.checkIntegrity(); // a failed update changes nothing
    sched.updateFromOutput(out, new Map([['a', 9]]));
    expect(() => sched.updateFromOutput(out, [1])).toThrow(/not the oldest step in flight/);
  });

  it('validates its configuration and rejects requests that can never run', () => {
    expect(() => setup({ maxNumSeqs: 8, maxNumBatchedTokens: 4 })).toThrow(/>= maxNumSeqs/);
    expect(() => setup({ enableChunkedPrefill: false, maxNumBatchedTokens: 64, maxModelLen: 128 })).toThrow(/without chunked prefill/);
    const { sched } = setup({ numBlocks: 5, blockSize: 4, maxModelLen: 64 }); // 4 usable blocks = 16 tokens
    expect(() => sched.addRequest(req('big', 10, { maxTokens: 8 }))).toThrow(/needs up to 5 KV blocks but the cache has 4/);
    expect(sched.validateRequest(10, 7)).toBeNull();
    expect(sched.validateRequest(0, 1)).toMatch(/empty/);
    expect(sched.validateRequest(65, 1)).toMatch(/context window/);
    sched.addRequest(req('a', 2, { maxTokens: 2 }));
    expect(() => sched.addRequest(req('a', 2, { maxTokens: 2 }))).toThrow(/already in the scheduler/);
  });
});

describe('Scheduler: decodes and long prompts', () => {
  it('a long prompt cannot starve running decodes: they get a token every step while it prefills in chunks', () => {
    const { sched } = setup({ maxNumBatchedTokens: 16, maxModelLen: 512, numBlocks: 200 });
    const decoders = ['d1', 'd2', 'd3'].map((id) => req(id, 3, { maxTokens: 400 }));
    for (const d of decoders) sched.addRequest(d);
    step(sched);
    const long = req('long', 300);
    sched.addRequest(long);
    let prefillSteps = 0;
    while (long.numOutputTokens === 0) {
      const { out } = step(sched);
      expect(plan(out).slice(0, 3)).toEqual([['d1', 1], ['d2', 1], ['d3', 1]]);
      expect(plan(out)[3]).toEqual(['long', Math.min(13, 300 - 13 * prefillSteps)]);
      prefillSteps++;
    }
    expect(prefillSteps).toBe(Math.ceil(300 / 13));
    expect(decoders.every((d) => d.numOutputTokens === prefillSteps + 1)).toBe(true);
  });

  it('puts decodes before prefill chunks even when the prefilling request was admitted first', () => {
    const { sched } = setup({ maxNumBatchedTokens: 16, longPrefillTokenThreshold: 8 });
    sched.addRequest(req('long', 100));
    sched.addRequest(req('short', 2));
    expect(plan(step(sched).out)).toEqual([['long', 8], ['short', 2]]);
    expect(plan(step(sched).out)).toEqual([['short', 1], ['long', 8]]);
  });

  it('without chunked prefill, a prompt that does not fit the remaining budget waits and smaller ones pass it', () => {
    const { sched } = setup({ enableChunkedPrefill: false, maxNumBatchedTokens: 32, maxModelLen: 32, maxWaitingSkips: 100, enablePrefixCaching: false });
    sched.addRequest(req('a', 4));
    step(sched);
    sched.addRequest(req('big', 32, { maxTokens: 1 }));
    sched.addRequest(req('small', 5));
    const { out } = step(sched);
    expect(plan(out)).toEqual([['a', 1], ['small', 5]]); // 32 > 31 left after a's decode
    sched.abortRequest('a');
    sched.abortRequest('small');
    expect(plan(step(sched).out)).toEqual([['big', 32]]);
  });
});

describe('Scheduler: preemption', () => {
  // blockSize 2, 6 usable blocks: three 3-token prompts take 2 blocks each; the third decode step needs a third.
  function threeRunning(enablePrefixCaching = false) {
    const { sched, kv } = setup({ blockSize: 2, numBlocks: 7, enablePrefixCaching, maxModelLen: 16 });
    const a = req('a', 3, { maxTokens: 10 });
    const b = req('b', 3, { maxTokens: 10 }, { priority: 1 });
    const c = req('c', 3, { maxTokens: 10 });
    for (const r of [a, b, c]) sched.addRequest(r);
    step(sched);
    step(sched);
    return { sched, kv, a, b, c };
  }

  it('preempts the worst priority first, then the latest arrival; the victim restarts from scratch keeping its outputs', () => {
    const { sched, kv, a, b, c } = threeRunning();
    const s3 = step(sched).out;
    expect(s3.preemptedRequestIds).toEqual(['b']);
    expect(plan(s3)).toEqual([['a', 1], ['c', 1]]);
    expect(b.status).toBe(RequestStatus.PREEMPTED);
    expect(b.numComputedTokens).toBe(0);
    expect(b.numPreemptions).toBe(1);
    expect(b.outputTokenIds).toEqual([7, 7]);
    expect(kv.blockIds('b')).toEqual([]);
    step(sched);
    const s5 = step(sched).out;
    expect(s5.preemptedRequestIds).toEqual(['c']); // equal priority with a: the later arrival goes
    expect(plan(s5)).toEqual([['a', 1]]);
    expect(c.outputTokenIds).toEqual([7, 7, 7, 7]);
    // Once a finishes, c (priority 0) comes back before b, recomputing prompt + outputs in one go.
    while (a.status === RequestStatus.RUNNING) step(sched);
    const back = step(sched).out.scheduled.find((s) => s.requestId === 'c')!;
    expect(back).toMatchObject({ startPos: 0, numScheduledTokens: 7, isAdmission: true, willSample: true, sampleIndex: 4 });
    expect([...back.tokenIds]).toEqual([1, 2, 3, 7, 7, 7, 7]);
  });

  it('undoes a victim already scheduled in the same step and gives its tokens back', () => {
    const { sched } = setup({ blockSize: 2, numBlocks: 6, maxModelLen: 16 }); // 5 usable blocks
    const a = req('a', 2, { maxTokens: 6 }, { priority: 1 }); // admitted first, so scheduled first
    const b = req('b', 2, { maxTokens: 6 });
    sched.addRequest(a);
    sched.addRequest(b);
    step(sched); // 1 block each
    step(sched); // position 2: 2 blocks each
    step(sched); // position 3
    // Position 4: a takes the last free block, then b needs one and the worst running request is a.
    const { out } = step(sched);
    expect(out.preemptedRequestIds).toEqual(['a']);
    expect(plan(out)).toEqual([['b', 1]]);
    expect(out.numScheduledTokens).toBe(1);
  });

  it('never preempts the only running request: it waits until blocks come back', () => {
    const { sched, kv } = setup({ blockSize: 2, numBlocks: 5, maxModelLen: 16 });
    const a = req('a', 3, { maxTokens: 4 });
    sched.addRequest(a);
    step(sched); // a: 2 blocks, 4 tokens
    step(sched); // computes position 3: still 2 blocks
    // Something outside the scheduler holds the other two blocks.
    const outsider = { requestId: 'outsider', numTokens: 4, numComputedTokens: 0, cacheSalt: null, blockHashes: [], tokenIds: () => new Int32Array(2) };
    expect(kv.allocateSlots(outsider, 4)).toHaveLength(2);
    const { out } = setupLessStep(sched);
    expect(out.preemptedRequestIds).toEqual([]);
    expect(out.scheduled).toEqual([]);
    expect(a.status).toBe(RequestStatus.RUNNING);
    kv.free(outsider);
    expect(plan(step(sched).out)).toEqual([['a', 1]]);
  });

  it('does not count a preempted request’s re-admission hits as prefix-cache hits', () => {
    const { sched, kv } = setup({ blockSize: 2, numBlocks: 7, maxModelLen: 16 });
    const a = req('a', 3, { maxTokens: 6 });
    const b = req('b', [21, 22, 23, 24, 25], { maxTokens: 3 }, { priority: 1 });
    sched.addRequest(a);
    sched.addRequest(b);
    step(sched);
    step(sched);
    const statsBefore = { ...kv.prefixCacheStats };
    expect(statsBefore).toEqual({ requests: 2, queries: 8, hits: 0 });
    expect(step(sched).out.preemptedRequestIds).toEqual(['b']);
    let readmission;
    while (readmission === undefined) readmission = step(sched).out.scheduled.find((s) => s.requestId === 'b');
    expect(readmission.startPos).toBe(4); // two of its own blocks were still cached
    expect(kv.prefixCacheStats).toEqual(statsBefore);
    expect(b.numCachedTokens).toBe(0);
    while (sched.hasUnfinishedRequests()) step(sched);
    expect(b.outputTokenIds).toHaveLength(3);
  });
});

/** A step without the integrity checks (for tests that deliberately hold blocks outside the scheduler). */
function setupLessStep(sched: ReturnType<typeof setup>['sched']) {
  const out = sched.schedule();
  sched.updateFromOutput(out, out.scheduled.map(() => 7));
  return { out };
}

describe('Scheduler: waiting requests that do not fit', () => {
  it('skips a request that cannot get blocks so smaller ones behind it start, then holds the line after maxWaitingSkips', () => {
    const { sched } = setup({ blockSize: 4, numBlocks: 9, maxWaitingSkips: 2, enablePrefixCaching: false }); // 8 usable blocks
    const a = req('a', 21, { maxTokens: 4 });
    sched.addRequest(a);
    step(sched); // a: 6 blocks, enough for all its tokens
    sched.addRequest(req('big', 12, { maxTokens: 1 })); // 3 blocks, only 2 free
    sched.addRequest(req('s1', 2, { maxTokens: 5 }));
    expect(plan(step(sched).out)).toEqual([['a', 1], ['s1', 2]]); // big skipped once
    sched.abortRequest('s1');
    sched.addRequest(req('s2', 2, { maxTokens: 5 }));
    expect(plan(step(sched).out)).toEqual([['a', 1], ['s2', 2]]); // skipped twice
    sched.abortRequest('s2');
    sched.addRequest(req('s3', 2, { maxTokens: 5 }));
    expect(plan(step(sched).out)).toEqual([['a', 1]]); // third skip: big now blocks s3
    expect(a.status).toBe(RequestStatus.FINISHED_LENGTH);
    expect(plan(step(sched).out)).toEqual([['big', 12], ['s3', 2]]);
  });

  it('a stream of small requests cannot starve a big one (and does without the barrier)', () => {
    const admittedAt = (maxWaitingSkips: number): number | null => {
      // 12 usable blocks; big needs 7. A small lives 8 steps and one arrives every other step, so about
      // four are always running, staggered, holding more than the 5 blocks big could leave them.
      const { sched } = setup({ blockSize: 4, numBlocks: 13, maxNumSeqs: 4, maxWaitingSkips, enablePrefixCaching: false });
      for (let t = 0; t < 400; t++) {
        if (t % 2 === 0) sched.addRequest(req(`s${t}`, 4, { maxTokens: 8 }));
        if (t === 8) sched.addRequest(req('big', 28, { maxTokens: 1 }));
        const { out } = step(sched);
        if (out.scheduled.some((s) => s.requestId === 'big')) return t;
      }
      return null;
    };
    expect(admittedAt(Infinity)).toBeNull();
    expect(admittedAt(16)).not.toBeNull();
    expect(admittedAt(16)!).toBeLessThan(8 + 2 * 16 + 10);
  });
});

describe('Scheduler: stops', () => {
  const finishOne = (params: Parameters<typeof req>[2], samples: number[], o: Parameters<typeof setup>[0] = {}) => {
    const { sched, kv } = setup(o);
    const r = req('r', 3, params);
    sched.addRequest(r);
    let i = 0;
    let last;
    while (sched.hasUnfinishedRequests()) last = step(sched, () => samples[Math.min(i++, samples.length - 1)]!);
    expect(kv.pool.numFreeBlocks).toBe(kv.pool.numUsableBlocks);
    expect(last!.updates).toEqual([expect.objectContaining({ finished: true, status: r.status })]);
    return r;
  };

  it('stops on EOS with no stop reason, unless ignoreEos', () => {
    const r = finishOne({}, [5, 6, EOS, 8]);
    expect(r.status).toBe(RequestStatus.FINISHED_STOPPED);
    expect(r.outputTokenIds).toEqual([5, 6, EOS]);
    expect(r.stopReason).toBeNull();
    const ign = finishOne({ ignoreEos: true, maxTokens: 5 }, [EOS]);
    expect(ign.status).toBe(RequestStatus.FINISHED_LENGTH);
    expect(ign.outputTokenIds).toEqual([EOS, EOS, EOS, EOS, EOS]);
  });

  it('honours minTokens before EOS and stop tokens', () => {
    const r = finishOne({ minTokens: 3, stopTokenIds: [9] }, [EOS, 9, EOS, 4]);
    expect(r.outputTokenIds).toEqual([EOS, 9, EOS]);
    expect(r.status).toBe(RequestStatus.FINISHED_STOPPED);
  });

  it('stops on a stop token id and reports it', () => {
    const r = finishOne({ stopTokenIds: [9, 11] }, [5, 11]);
    expect(r.status).toBe(RequestStatus.FINISHED_STOPPED);
    expect(r.stopReason).toBe(11);
  });

  it('stops at maxTokens and at the context window', () => {
    expect(finishOne({ maxTokens: 4 }, [5]).outputTokenIds).toHaveLength(4);
    const capped = finishOne({ maxTokens: 100 }, [5], { maxModelLen: 10 });
    expect(capped.status).toBe(RequestStatus.FINISHED_LENGTH);
    expect(capped.numTokens).toBe(10);
    const full = finishOne({ maxTokens: 100 }, [5], { maxModelLen: 3 }); // prompt fills the window: one token
    expect(full.outputTokenIds).toEqual([5]);
  });

  it('reports requests finished since the previous step in the next output', () => {
    const { sched } = setup();
    sched.addRequest(req('a', 2, { maxTokens: 1 }));
    sched.addRequest(req('b', 2));
    expect(step(sched).updates.map((u) => [u.request.requestId, u.finished])).toEqual([['a', true], ['b', false]]);
    sched.abortRequest('b');
    const { out } = step(sched);
    expect(out.finishedRequestIds).toEqual(['a', 'b']);
    expect(step(sched).out.finishedRequestIds).toEqual([]);
  });
});

describe('Scheduler: abort and finish', () => {
  it('aborts waiting, running and preempted requests, freeing blocks at once; idempotent', () => {
    const { sched, kv } = setup({ blockSize: 2, numBlocks: 7, maxModelLen: 16 });
    const a = req('a', 3, { maxTokens: 10 });
    const b = req('b', 3, { maxTokens: 10 }, { priority: 1 });
    const c = req('c', 3, { maxTokens: 10 });
    const w = req('w', 3, { maxTokens: 10 });
    for (const r of [a, b, c]) sched.addRequest(r);
    step(sched);
    step(sched);
    step(sched); // preempts b
    sched.addRequest(w);
    expect([b.status, w.status]).toEqual([RequestStatus.PREEMPTED, RequestStatus.WAITING]);
    for (const r of [w, b, a]) {
      expect(sched.abortRequest(r.requestId)).toBe(true);
      expect(r.status).toBe(RequestStatus.FINISHED_ABORTED);
      expect(kv.blockIds(r.requestId)).toEqual([]);
      sched.checkIntegrity();
    }
    expect(sched.abortRequest('a')).toBe(false);
    expect(sched.abortRequest('never-seen')).toBe(false);
    expect(sched.numRunning + sched.numWaiting).toBe(1);
    expect(kv.usage()).toBeCloseTo(3 / 6);
  });

  it('a request aborted while its step is in flight gets no token, and its id can be reused', () => {
    const { sched, kv } = setup();
    const a = req('a', 5);
    sched.addRequest(a);
    const out = sched.schedule();
    expect(sched.abortRequest('a')).toBe(true);
    expect(kv.blockIds('a')).toEqual([]);
    sched.checkIntegrity();
    const again = req('a', 2);
    sched.addRequest(again);
    expect(sched.updateFromOutput(out, [9])).toEqual([]);
    expect(a.outputTokenIds).toEqual([]);
    expect(again.numComputedTokens).toBe(0);
    sched.checkIntegrity();
    expect(plan(step(sched).out)).toEqual([['a', 2]]);
  });

  it('finishRequest ends a request with the stop string as its reason', () => {
    const { sched } = setup();
    const a = req('a', 2);
    sched.addRequest(a);
    step(sched);
    expect(sched.finishRequest('a', RequestStatus.FINISHED_STOPPED, '###')).toBe(true);
    expect([a.status, a.stopReason]).toEqual([RequestStatus.FINISHED_STOPPED, '###']);
    expect(sched.hasUnfinishedRequests()).toBe(false);
    expect(sched.finishRequest('a', RequestStatus.FINISHED_STOPPED)).toBe(false); // already finished
    sched.addRequest(req('b', 2));
    expect(() => sched.finishRequest('b', RequestStatus.RUNNING as never)).toThrow(/not a finished status/);
  });
});

describe('Scheduler: prefix caching', () => {
  it('serves shared prefixes from cache, records hits once per request, and keeps tenants apart', () => {
    const { sched, kv } = setup({ blockSize: 4 });
    const system = tokens(16, 100);
    const a = req('a', [...system, 1, 2], { maxTokens: 1 });
    sched.addRequest(a);
    while (sched.hasUnfinishedRequests()) step(sched);
    expect(a.numCachedTokens).toBe(0);
    const b = req('b', [...system, 3, 4, 5], { maxTokens: 2 });
    const t = req('t', [...system, 3, 4, 5], { maxTokens: 2 }, { cacheSalt: 'other-tenant' });
    sched.addRequest(b);
    sched.addRequest(t);
    const first = step(sched).out;
    expect(plan(first)).toEqual([['b', 3], ['t', 19]]);
    expect(first.scheduled[0]).toMatchObject({ startPos: 16 });
    expect(b.numCachedTokens).toBe(16);
    expect(t.numCachedTokens).toBe(0);
    while (sched.hasUnfinishedRequests()) step(sched);
    expect(kv.prefixCacheStats).toEqual({ requests: 3, queries: 18 + 19 + 19, hits: 16 });
  });

  it('with prefix caching off computes every prompt in full', () => {
    const { sched, kv } = setup({ blockSize: 4, enablePrefixCaching: false });
    for (const id of ['a', 'b']) {
      sched.addRequest(req(id, 17, { maxTokens: 1 }));
      expect(plan(step(sched).out)).toEqual([[id, 17]]);
    }
    expect(kv.prefixCacheStats.hits).toBe(0);
  });
});
