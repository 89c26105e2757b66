/**
 * Issue 8, disconnects: a client that hangs up mid-stream, mid-prefill (a long prompt computed in
 * chunks), while its non-streamed answer is being generated, or while it waits for admission has its
 * request aborted and its KV blocks freed at once: no step launched after the server noticed the
 * hang-up computes it, at most one step was launched between the hang-up and the server noticing,
 * and the cache ends empty. A recording runner wrapper (the test-only hook RuntimeOptions.wrapRunner)
 * sees every step's requests; it also slows steps down a little so that "mid-prefill" is a moment.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Request } from '../../src/engine/request.ts';
import type { StepRunner } from '../../src/model/runner.ts';
import { startTestServer, type TestServer } from './harness.ts';
import { rawExchange, rawPost, storiesOrTiny, waitFor } from './reliability-helpers.ts';

class StepRecorder {
  readonly launches: Request[][] = [];
  delayMs = 0;
  readonly wrap = (runner: StepRunner): StepRunner => ({
    execute: async (out) => {
      this.launches.push(out.scheduled.map((s) => s.request));
      // The real call first (it issues the native step synchronously), then the delay.
      const result = runner.execute(out);
      if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
      return result;
    },
  });

  /** Launches from index `from` on that computed `requestId`. */
  launchesOf(requestId: string, from = 0): number {
    return this.launches.slice(from).filter((step) => step.some((r) => r.requestId === requestId)).length;
  }

  /** The first request seen in a step after index `from` (a new arrival). */
  newRequestAfter(from: number, known: ReadonlySet<string>): Request | undefined {
    for (const step of this.launches.slice(from)) for (const r of step) if (!known.has(r.requestId)) return r;
    return undefined;
  }
}

const model = await storiesOrTiny();
const recorder = new StepRecorder();
let server: TestServer;

beforeAll(async () => {
  // One sequence at a time (so a second request queues), 16-token prompt chunks (so a long prompt takes many steps).
  server = await startTestServer(model.dir, { maxNumSeqs: 1, maxNumBatchedTokens: 16 }, { wrapRunner: recorder.wrap });
});
afterAll(async () => server?.close());

/** Polls every turn of the event loop until the engine holds nothing; returns the number of launches by then. */
async function launchesWhenFreed(): Promise<number> {
  const engine = server.runtime.engine;
  const deadline = Date.now() + 5000;
  while (engine.numTrackedRequests > 0 && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
  return recorder.launches.length;
}

function expectNothingHeld(): void {
  const engine = server.runtime.engine;
  expect(engine.numTrackedRequests).toBe(0);
  expect(engine.scheduler.hasUnfinishedRequests()).toBe(false);
  expect(engine.scheduler.numRunning + engine.scheduler.numWaiting).toBe(0);
  expect(engine.scheduler.kv.usage()).toBe(0);
  expect([...engine.scheduler.kv.requestIds()]).toEqual([]);
  engine.scheduler.checkIntegrity();
}

/** Asserts the abort contract for `requestId`, hung up when `launchesAtHangUp` steps had been launched. */
function expectAbortedWithinOneStep(requestId: string, launchesAtHangUp: number, launchesAtFree: number): void {
  expectNothingHeld();
  // Between the hang-up and the server noticing, at most one more step took the request...
  expect(recorder.launchesOf(requestId, launchesAtHangUp)).toBeLessThanOrEqual(1);
  // ...and none after it noticed.
  expect(recorder.launchesOf(requestId, launchesAtFree)).toBe(0);
}

describe(`client disconnects (${model.name})`, () => {
  it('mid-stream: the request is aborted and its blocks freed within one step', async () => {
    recorder.delayMs = 3;
    const exchange = await rawExchange(server.url, rawPost('/v1/completions', { prompt: 'One day', max_tokens: 400, ignore_eos: true, stream: true }));
    await exchange.waitFor(/data: [^\n]*"text":"[^"]+"[\s\S]*data: [^\n]*"text":"[^"]+"/);
    const requestId = /"id":"([^"]+)"/.exec(exchange.received())![1]!;
    expect(server.runtime.engine.scheduler.kv.usage()).toBeGreaterThan(0);
    const atHangUp = recorder.launches.length;
    exchange.socket.destroy();
    const atFree = await launchesWhenFreed();
    expectAbortedWithinOneStep(requestId, atHangUp, atFree);
    expect(recorder.launchesOf(requestId)).toBeLessThan(400);
  });

  it('mid-prefill: a long prompt computed in 16-token chunks stops being computed', async () => {
    recorder.delayMs = 5;
    const service = server.runtime.service;
    let prompt = '';
    while ((await service.encode(prompt)).length < 400) prompt += 'Once upon a time, a little dog named Max found a big red ball in the park. ';
    const numPromptTokens = (await service.encode(prompt)).length;
    expect(numPromptTokens).toBeLessThan(480);
    const before = recorder.launches.length;
    const exchange = await rawExchange(server.url, rawPost('/v1/completions', { prompt, max_tokens: 8 }));
    let request: Request | undefined;
    await waitFor(() => (request = recorder.newRequestAfter(before, new Set())) !== undefined && request.numComputedTokens >= 64, 10_000, 'the prefill to start');
    expect(request!.numComputedTokens).toBeLessThan(numPromptTokens - 64);
    const atHangUp = recorder.launches.length;
    exchange.socket.destroy();
    const atFree = await launchesWhenFreed();
    expectAbortedWithinOneStep(request!.requestId, atHangUp, atFree);
    expect(request!.numOutputTokens).toBe(0);
  });

  it('while generating a non-streamed answer (before any header was sent)', async () => {
    recorder.delayMs = 3;
    const before = recorder.launches.length;
    const exchange = await rawExchange(server.url, rawPost('/v1/chat/completions', { messages: [{ role: 'user', content: 'Tell a story' }], max_tokens: 400, ignore_eos: true }));
    let request: Request | undefined;
    await waitFor(() => (request = recorder.newRequestAfter(before, new Set())) !== undefined && request.numOutputTokens >= 5, 10_000, 'tokens to be generated');
    expect(exchange.received()).toBe('');
    const atHangUp = recorder.launches.length;
    exchange.socket.destroy();
    const atFree = await launchesWhenFreed();
    expectAbortedWithinOneStep(request!.requestId, atHangUp, atFree);
  });

  it('while queued for admission: it leaves the queue and never runs; the running request is unaffected', async () => {
    recorder.delayMs = 3;
    const engine = server.runtime.engine;
    const before = recorder.launches.length;
    const running = await rawExchange(server.url, rawPost('/v1/completions', { prompt: 'The cat', max_tokens: 300, ignore_eos: true, stream: true }));
    await running.waitFor(/"text":"[^"]+"/);
    const runningId = /"id":"([^"]+)"/.exec(running.received())![1]!;
    const queued = await rawExchange(server.url, rawPost('/v1/completions', { prompt: 'The queued dog', max_tokens: 300, ignore_eos: true, stream: true }));
    await waitFor(() => engine.scheduler.numWaiting === 1, 5000, 'the second request to queue');
    expect(engine.numTrackedRequests).toBe(2);
    queued.socket.destroy();
    await waitFor(() => engine.numTrackedRequests === 1, 5000, 'the queued request to be dropped');
    expect(engine.scheduler.numWaiting).toBe(0);
    // The queued request never reached a step.
    const seen = new Set(recorder.launches.slice(before).flatMap((step) => step.map((r) => r.requestId)));
    expect([...seen]).toEqual([runningId]);
    // The running one completes normally.
    await running.waitFor(/data: \[DONE\]/, 20_000);
    expect(running.received()).toContain('"finish_reason":"length"');
    running.socket.destroy();
    await launchesWhenFreed();
    expectNothingHeld();
  });
});
