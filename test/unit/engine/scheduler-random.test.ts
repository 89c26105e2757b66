/**
 * Randomized property tests: thousands of steps with random arrivals, shared prefixes, salts, priorities,
 * aborts in every state (including mid-step), tiny pools that force preemption, chunked prefill on/off and
 * prefix caching on/off. After every schedule() and every updateFromOutput() the integrity checks must
 * pass; at the end every request has finished, every block is free, and each request's tokens equal what
 * it would have produced running alone (FakeModel reads KV back through the block tables).
 */
import { describe, expect, it } from 'vitest';
import { KVCacheManager } from '../../../src/kv/kv-cache-manager.ts';
import { Request, RequestStatus, finishReasonOf } from '../../../src/engine/request.ts';
import { Scheduler } from '../../../src/engine/scheduler.ts';
import { defaultSamplingParams } from '../../../src/sampling/params.ts';
import { FakeModel, makeRng, runAlone } from './fake-model.ts';
import type { SchedulerOutput } from '../../../src/engine/scheduler-output.ts';

const VOCAB = 40;
const EOS = 0;

interface SimResult {
  steps: number;
  numRequests: number;
  preemptions: number;
  prefixHits: number;
  checkedOutputs: number;
  placeholderTokens: number;
}

let headroomSeeds = 0;

function simulate(seed: number, stepsInFlight: 1 | 2): SimResult {
  const rng = makeRng(seed);
  const blockSize = rng.pick([1, 2, 4, 8, 16]);
  const maxModelLen = rng.int(16, 120);
  const chunked = rng.chance(0.7);
  const caching = rng.chance(0.7);
  const maxNumSeqs = rng.int(1, 8);
  const maxNumBatchedTokens = chunked ? rng.int(maxNumSeqs, 48) : maxModelLen + rng.int(0, 48);
  const blocksForLongest = Math.ceil(maxModelLen / blockSize);
  const numBlocks = 1 + blocksForLongest + rng.int(0, 2 * blocksForLongest);
  const kv = new KVCacheManager({ numBlocks, blockSize, enablePrefixCaching: caching });
  // Decode headroom at admission on a third of the seeds (fast decay, so both its ends are reached).
  const initialRatio = rng.pick([0.3, 0.7, 1]);
  const headroom = rng.chance(0.35) ? { initialRatio, minRatio: initialRatio / 5, decayPerStep: rng.pick([0.01, 0.05]) } : null;
  headroomSeeds += headroom === null ? 0 : 1;
  const sched = new Scheduler(
    { maxNumSeqs, maxNumBatchedTokens, maxModelLen, enableChunkedPrefill: chunked, eosTokenIds: [EOS], maxWaitingSkips: rng.int(0, 8), longPrefillTokenThreshold: rng.chance(0.3) ? rng.int(1, 16) : 0, maxStepsInFlight: stepsInFlight, headroom },
    kv,
  );
  const model = new FakeModel(kv.pool, blockSize, VOCAB);
  const randomTokens = (n: number): number[] => Array.from({ length: n }, () => rng.int(1, VOCAB - 1));
  const prefixes = [randomTokens(rng.int(1, 40)), randomTokens(rng.int(1, 40)), randomTokens(blockSize * 2)];
  const salts = [null, null, 'tenant-a', 'tenant-b'];

  const numRequests = rng.int(8, 40);
  const all: Request[] = [];
  const endedByUs = new Set<Request>(); // aborted or finished by a (simulated) stop string
  let preemptions = 0;
  let step = 0;
  const pending: { out: SchedulerOutput; sampled: number[] }[] = [];
  let previousSamples = new Map<string, number>();
  let placeholderTokens = 0;
  const live = (): Request[] => all.filter((r) => !endedByUs.has(r) && r.status !== RequestStatus.FINISHED_STOPPED && r.status !== RequestStatus.FINISHED_LENGTH);
  const endRandom = (filter: (r: Request) => boolean, how: 'abort' | 'stop'): void => {
    const candidates = live().filter(filter);
    if (candidates.length === 0) return;
    const r = rng.pick(candidates);
    const ok = how === 'abort' ? sched.abortRequest(r.requestId) : sched.finishRequest(r.requestId, RequestStatus.FINISHED_STOPPED, '</s>');
    expect(ok).toBe(true);
    expect(sched.abortRequest(r.requestId)).toBe(false); // idempotent
    expect(kv.blockIds(r.requestId)).toHaveLength(0); // freed at once
    endedByUs.add(r);
  };

  while (all.length < numRequests || sched.hasUnfinishedRequests()) {
    if (++step > 20_000) throw new Error(`seed ${seed}: no termination after ${step} steps`);
    const arrivals = all.length < numRequests && rng.chance(0.4) ? rng.int(1, 3) : 0;
    for (let i = 0; i < arrivals && all.length < numRequests; i++) {
      const prompt = rng.chance(0.6) ? [...rng.pick(prefixes), ...randomTokens(rng.int(0, 20))] : randomTokens(rng.int(1, 50));
      prompt.length = Math.min(prompt.length, maxModelLen);
      const r = new Request({
        requestId: `r${all.length}`,
        promptTokenIds: prompt,
        params: defaultSamplingParams({
          maxTokens: rng.int(1, 40),
          minTokens: rng.chance(0.2) ? rng.int(0, 10) : 0,
          ignoreEos: rng.chance(0.2),
          stopTokenIds: rng.chance(0.3) ? [rng.int(1, VOCAB - 1)] : [],
        }),
        priority: rng.chance(0.3) ? rng.int(-2, 2) : 0,
        cacheSalt: rng.pick(salts),
      });
      all.push(r);
      sched.addRequest(r);
    }
    if (rng.chance(0.03)) endRandom(() => true, 'abort');
    if (rng.chance(0.01)) endRandom((r) => r.status === RequestStatus.PREEMPTED, 'abort');
    if (rng.chance(0.01)) endRandom((r) => r.status === RequestStatus.RUNNING && r.numOutputTokens > 0, 'stop');

    // Requests with one token to compute now (not waiting on a step in flight, not at their limit).
    const decoding = live().filter(
      (r) =>
        r.status === RequestStatus.RUNNING &&
        r.numTokensWithPlaceholders - r.numComputedTokens === 1 &&
        r.numOutputTokens + r.numOutputPlaceholders < r.params.maxTokens &&
        r.numTokensWithPlaceholders < maxModelLen,
    );
    let launched = false;
    if (pending.length < stepsInFlight) {
      const out = sched.schedule();
      sched.checkIntegrity();
      preemptions += out.preemptedRequestIds.length;
      expect(out.numScheduledTokens).toBeLessThanOrEqual(maxNumBatchedTokens);
      expect(out.scheduled.length).toBeLessThanOrEqual(maxNumSeqs);
      const scheduledIds = new Set(out.scheduled.map((s) => s.requestId));
      expect(scheduledIds.size).toBe(out.scheduled.length);
      // Decodes never starve: every request decoding before the step runs in it unless it was preempted.
      for (const r of decoding) {
        if (r.status === RequestStatus.RUNNING) expect(scheduledIds.has(r.requestId), `seed ${seed} step ${step}: decode ${r.requestId} skipped`).toBe(true);
      }
      if (out.scheduled.length > 0) {
        // The device runs steps in launch order: execute now, with the previous launch's samples.
        const sampled = model.step(out, previousSamples);
        for (const s of out.scheduled) placeholderTokens += s.numPlaceholderTokens;
        previousSamples = new Map(out.scheduled.flatMap((s, i) => (s.willSample ? [[s.requestId, sampled[i]!] as [string, number]] : [])));
        pending.push({ out, sampled });
        launched = true;
      } else {
        sched.updateFromOutput(out, []); // a no-op for an empty step
      }
    }
    if (rng.chance(0.03)) endRandom(() => true, 'abort'); // while the step is in flight
    if (pending.length === stepsInFlight || (!launched && pending.length > 0)) {
      const { out, sampled } = pending.shift()!;
      sched.updateFromOutput(out, sampled);
      sched.checkIntegrity();
    }
  }

  expect(kv.pool.numFreeBlocks).toBe(numBlocks - 1);
  expect(kv.usage()).toBe(0);
  expect(sched.numRunning + sched.numWaiting).toBe(0);
  let checkedOutputs = 0;
  let cachedTokens = 0;
  let admitted = 0;
  for (const r of all) {
    cachedTokens += r.numCachedTokens;
    if (r.numPreemptions > 0 || r.numOutputTokens > 0 || r.numComputedTokens > 0) admitted++;
    const alone = runAlone([...r.promptTokenIds], r.params, { vocabSize: VOCAB, maxModelLen, eosTokenId: EOS });
    if (endedByUs.has(r)) {
      expect(alone.outputTokenIds.slice(0, r.numOutputTokens), `seed ${seed} ${r.requestId}`).toEqual(r.outputTokenIds);
      continue;
    }
    expect(r.outputTokenIds, `seed ${seed} ${r.requestId} (preempted ${r.numPreemptions}x)`).toEqual(alone.outputTokenIds);
    expect(finishReasonOf(r.status)).toBe(alone.finish);
    expect(r.stopReason).toBe(alone.stopReason);
    checkedOutputs++;
  }
  // Hits are counted once per request, at first admission: the stats equal the per-request usage numbers.
  const stats = kv.prefixCacheStats;
  expect(stats.hits).toBe(cachedTokens);
  if (!caching) expect(stats.queries).toBe(0);
  else expect(stats.requests).toBeGreaterThanOrEqual(admitted - all.filter((r) => endedByUs.has(r) && r.numOutputTokens === 0).length);
  return { steps: step, numRequests: all.length, preemptions, prefixHits: stats.hits, checkedOutputs, placeholderTokens };
}

describe.each([
  { mode: 'one step at a time', stepsInFlight: 1 as const },
  { mode: 'async scheduling (two steps in flight)', stepsInFlight: 2 as const },
])('scheduler + KV cache under random workloads: $mode', ({ stepsInFlight }) => {
  it('keeps every invariant, finishes everything, frees every block and reproduces solo outputs (300 seeds)', () => {
    headroomSeeds = 0;
    const total = { steps: 0, numRequests: 0, preemptions: 0, prefixHits: 0, checkedOutputs: 0, seedsWithPreemption: 0, placeholderTokens: 0 };
    for (let seed = 1; seed <= 300; seed++) {
      const r = simulate(seed, stepsInFlight);
      total.steps += r.steps;
      total.numRequests += r.numRequests;
      total.preemptions += r.preemptions;
      total.prefixHits += r.prefixHits;
      total.checkedOutputs += r.checkedOutputs;
      total.placeholderTokens += r.placeholderTokens;
      if (r.preemptions > 0) total.seedsWithPreemption++;
    }
    // The sweep must actually exercise the hard paths, or passing proves little.
    expect(headroomSeeds).toBeGreaterThan(60);
    expect(total.steps).toBeGreaterThan(10_000);
    expect(total.seedsWithPreemption).toBeGreaterThan(30);
    expect(total.preemptions).toBeGreaterThan(200);
    expect(total.prefixHits).toBeGreaterThan(1000);
    expect(total.checkedOutputs).toBeGreaterThan(3000);
    // Async scheduling must really schedule tokens whose ids were still on the "device".
    if (stepsInFlight === 2) expect(total.placeholderTokens).toBeGreaterThan(5000);
    else expect(total.placeholderTokens).toBe(0);
  });
});
