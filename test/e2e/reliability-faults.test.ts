/**
 * Issue 8, faults, end to end through HTTP:
 * - a failing native call (injected: the step runs, then its result is an out-of-device-memory error,
 *   as the addon reports one) fails the requests in that step with a 500 error body, or an SSE error
 *   event mid-stream, and the engine keeps serving: a queued request completes, later ones are right;
 * - a device result the engine cannot use (injected: negative token ids) kills the loop itself: every
 *   request it held fails, and the loop restarts cleanly (nothing held, same greedy outputs after);
 * - startup fails early, with a clear message and exit code 1, when the model does not fit.
 * The fault hook is RuntimeOptions.wrapRunner (test-only, around the model runner); no test code
 * runs in the kernels.
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiLogger } from '../../src/api/errors.ts';
import { defaultServeConfig } from '../../src/config.ts';
import type { Request } from '../../src/engine/request.ts';
import type { SchedulerOutput } from '../../src/engine/scheduler-output.ts';
import type { StepRunner } from '../../src/model/runner.ts';
import { startRuntime } from '../../src/runtime.ts';
import { tinyModelConfig, TINY_MODELS, TOK512_DIR, TOKENIZER_FILES } from '../fixtures/tiny-models.ts';
import { scratchDir } from '../helpers/paths.ts';
import { startTestServer, type TestServer } from './harness.ts';
import { isOpenAIError, rawExchange, rawPost, runCli, sseData, storiesOrTiny, waitFor } from './reliability-helpers.ts';

type Fault = 'device-error' | 'corrupt-result';

class FaultInjector {
  /** Decides, per step, whether to inject a fault (then it disarms). */
  plan: ((out: SchedulerOutput) => Fault | null) | null = null;
  readonly injected: Fault[] = [];
  readonly wrap = (runner: StepRunner): StepRunner => ({
    execute: async (out) => {
      const fault = this.plan?.(out) ?? null;
      // The device runs the step either way (a kernel fault is reported when the step completes).
      const result = runner.execute(out);
      if (fault === null) return result;
      this.plan = null;
      this.injected.push(fault);
      const sampled = await result;
      if (fault === 'device-error') throw new Error('UD_ERR_OUT_OF_MEMORY: out of device memory while running the step (injected)');
      return sampled.map((s) => (s === null ? null : { ...s, tokenId: -7 }));
    },
  });

  /** Arms a fault for the first step in which a request with this prompt has at least `afterTokens` outputs. */
  armFor(promptTokenIds: number[], fault: Fault, afterTokens = 3): void {
    const key = promptTokenIds.join(',');
    const matches = (r: Request) => Array.from(r.promptTokenIds).join(',') === key && r.numOutputTokens >= afterTokens;
    this.plan = (out) => (out.scheduled.some((s) => matches(s.request)) ? fault : null);
  }
}

const model = await storiesOrTiny();
const faults = new FaultInjector();
const loggedErrors: string[] = [];
const logger: ApiLogger = { error: (message, details) => loggedErrors.push(`${message} ${JSON.stringify(details ?? {})}`) };
let server: TestServer;

beforeAll(async () => {
  // One sequence at a time: a second request waits in the queue, outside the failing step.
  server = await startTestServer(model.dir, { maxNumSeqs: 1 }, { wrapRunner: faults.wrap }, { logger });
});
afterAll(async () => server?.close());

const post = (path: string, body: unknown) =>
  fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

async function greedy(prompt: string): Promise<string> {
  const response = await post('/v1/completions', { prompt, max_tokens: 24, temperature: 0, ignore_eos: true });
  expect(response.status).toBe(200);
  return ((await response.json()) as { choices: { text: string }[] }).choices[0]!.text;
}

/**
 * Nothing held once the last response is out. With async scheduling one more step may already be on
 * the device when a request's final output is sent (launched before its tokens were known to finish
 * it); that step must drain within a step's time, then everything is free.
 */
async function expectEngineClean(): Promise<void> {
  const engine = server.runtime.engine;
  await waitFor(() => engine.scheduler.numStepsInFlight === 0, 2_000, 'the step in flight to finish');
  expect(engine.numTrackedRequests).toBe(0);
  expect(engine.scheduler.hasUnfinishedRequests()).toBe(false);
  expect(engine.scheduler.numStepsInFlight).toBe(0);
  expect(engine.scheduler.kv.usage()).toBe(0);
  engine.scheduler.checkIntegrity();
}

describe(`a failing native call (${model.name})`, () => {
  it('fails the request in that step with a 500 in OpenAI shape; the queued one and later ones are served', async () => {
    const reference = await greedy('The little bird');
    const victimPrompt = 'A failing step, non-streamed';
    faults.armFor(await server.runtime.service.encode(victimPrompt), 'device-error');
    const victim = post('/v1/completions', { prompt: victimPrompt, max_tokens: 60, ignore_eos: true });
    await waitFor(() => server.runtime.engine.numTrackedRequests === 1, 5000, 'the victim to start');
    const queued = post('/v1/completions', { prompt: 'The little bird', max_tokens: 24, temperature: 0, ignore_eos: true });

    const failed = await victim;
    expect(failed.status).toBe(500);
    const body: unknown = await failed.json();
    expect(isOpenAIError(body), JSON.stringify(body)).toBe(true);
    expect(body).toMatchObject({ error: { type: 'server_error', code: 'internal_error' } });
    // The client learns nothing about the internals; the log has the cause.
    expect(JSON.stringify(body)).not.toMatch(/OUT_OF_MEMORY|injected/);
    expect(loggedErrors.some((line) => line.includes('OUT_OF_MEMORY'))).toBe(true);
    expect(faults.injected).toEqual(['device-error']);

    const served = await queued;
    expect(served.status).toBe(200);
    expect(((await served.json()) as { choices: { text: string }[] }).choices[0]!.text).toBe(reference);
    expect(await greedy('The little bird')).toBe(reference);
    await expectEngineClean();
  });

  it('mid-stream: the stream gets an SSE error event and [DONE]; the engine carries on', async () => {
    const reference = await greedy('The little bird');
    const victimPrompt = 'A failing step, streamed';
    faults.armFor(await server.runtime.service.encode(victimPrompt), 'device-error', 4);
    const exchange = await rawExchange(server.url, rawPost('/v1/completions', { prompt: victimPrompt, max_tokens: 60, ignore_eos: true, stream: true }));
    await exchange.waitFor(/data: \[DONE\]/);
    expect(exchange.received()).toMatch(/^HTTP\/1\.1 200/);
    const events = sseData(exchange.received());
    expect(events.at(-1)).toBe('[DONE]');
    const errorEvent: unknown = JSON.parse(events.at(-2)!);
    expect(isOpenAIError(errorEvent)).toBe(true);
    expect(errorEvent).toMatchObject({ error: { type: 'server_error' } });
    // Text was streamed before the fault.
    expect(events.slice(0, -2).some((data) => /"text":"[^"]+"/.test(data))).toBe(true);
    exchange.socket.destroy();
    expect(await greedy('The little bird')).toBe(reference);
    await expectEngineClean();
  });
});

describe(`the engine loop dying (${model.name})`, () => {
  it('fails every request it held, restarts cleanly, and serves the same outputs after', async () => {
    const engine = server.runtime.engine;
    const reference = await greedy('Once upon a time');
    const failuresBefore = engine.numLoopFailures;
    const victimPrompt = 'The loop dies during this one';
    faults.armFor(await server.runtime.service.encode(victimPrompt), 'corrupt-result');
    const streamed = await rawExchange(server.url, rawPost('/v1/completions', { prompt: victimPrompt, max_tokens: 60, ignore_eos: true, stream: true }));
    await waitFor(() => engine.numTrackedRequests === 1, 5000, 'the victim to start');
    const queued = post('/v1/completions', { prompt: 'Queued behind it', max_tokens: 60, ignore_eos: true });

    await streamed.waitFor(/data: \[DONE\]/);
    const events = sseData(streamed.received());
    expect(isOpenAIError(JSON.parse(events.at(-2)!))).toBe(true);
    streamed.socket.destroy();
    const queuedResponse = await queued;
    expect(queuedResponse.status).toBe(500);
    expect(isOpenAIError(await queuedResponse.json())).toBe(true);

    expect(faults.injected.at(-1)).toBe('corrupt-result');
    expect(engine.numLoopFailures).toBe(failuresBefore + 1);
    await expectEngineClean();
    // A fresh loop, same answers (the prefix cache was dropped, not trusted).
    expect(await greedy('Once upon a time')).toBe(reference);
    const streamedAgain = await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'Hello' }], max_tokens: 8, stream: true });
    expect(streamedAgain.status).toBe(200);
    expect(await streamedAgain.text()).toMatch(/data: \[DONE\]/);
    await expectEngineClean();
  });
});

describe('startup when the model does not fit', () => {
  it('exits 1 at once with a clear message (dummy weights for a config far larger than memory)', async () => {
    const dir = await scratchDir('huge-model');
    await mkdir(dir, { recursive: true });
    const config = {
      ...tinyModelConfig(TINY_MODELS['tiny-llama']),
      hidden_size: 65536,
      intermediate_size: 262144,
      num_hidden_layers: 200,
      num_attention_heads: 512,
      num_key_value_heads: 64,
      head_dim: 128,
    };
    await writeFile(join(dir, 'config.json'), JSON.stringify(config));
    for (const file of TOKENIZER_FILES) await copyFile(join(TOK512_DIR, file), join(dir, file));
    const run = await runCli(['serve', dir, '--load-format', 'dummy', '--port', '0'], {}, 60_000);
    expect(run.code, run.output).toBe(1);
    expect(run.output).toMatch(/could not load/);
    expect(run.output).toMatch(/does not fit|needs [\d.]+ GiB/);
    expect(run.ms).toBeLessThan(30_000);
  });

  it('refuses a KV cache budget too small for one context, naming the flag', async () => {
    await expect(startRuntime({ ...defaultServeConfig(), model: model.dir, kvCacheMemoryBytes: 1024, numThreads: 1 })).rejects.toThrow(/--kv-cache-memory/);
    await expect(startRuntime({ ...defaultServeConfig(), model: model.dir, gpuMemoryUtilization: 1e-12, numThreads: 1 })).rejects.toThrow(/does not fit|--gpu-memory-utilization|--kv-cache-memory/);
  });
});
