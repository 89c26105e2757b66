/**
 * GET /metrics on the real stack (tiny model, CPU backend): the values move as requests are served —
 * running / waiting / KV usage while a stream is open, token counters equal to the usage the API
 * reported, prefix-cache queries and hits equal to the engine's, latency histograms (queue time from
 * the engine), finish reasons, and preemptions under a KV cache too small for the load.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyModelDir } from '../fixtures/tiny-models.ts';
import { parsePrometheus, sampleValue, type Sample } from '../helpers/prometheus.ts';
import { startTestServer } from './harness.ts';
import type { TestServer } from './harness.ts';

const modelDir = await tinyModelDir('tiny-llama');
const PROMPT = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her dog. ';

async function scrape(server: TestServer): Promise<Sample[]> {
  const response = await fetch(`${server.url}/metrics`);
  expect(response.status).toBe(200);
  return parsePrometheus(await response.text());
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return sampleValue(samples, name, { model_name: modelDir, ...labels });
}

interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  prompt_tokens_details?: { cached_tokens: number };
}

async function complete(server: TestServer, body: Record<string, unknown>): Promise<Usage> {
  const response = await fetch(`${server.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: PROMPT, max_tokens: 8, temperature: 0, ignore_eos: true, ...body }),
  });
  const json = (await response.json()) as { usage: Usage };
  expect(response.status, JSON.stringify(json)).toBe(200);
  return json.usage;
}

/** Opens a stream and reads until the first token arrived; returns a function that hangs up. */
async function openStream(server: TestServer, maxTokens: number): Promise<() => Promise<void>> {
  const controller = new AbortController();
  const response = await fetch(`${server.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: PROMPT, max_tokens: maxTokens, ignore_eos: true, stream: true }),
    signal: controller.signal,
  });
  expect(response.status).toBe(200);
  const reader = response.body!.getReader();
  await reader.read();
  return async () => {
    controller.abort();
    await reader.cancel().catch(() => {});
  };
}

async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('GET /metrics on a real server', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(modelDir, { maxNumSeqs: 1 });
  });
  afterAll(async () => server?.close());

  it('counts tokens, prefix-cache use, finish reasons and latencies of served requests', async () => {
    const before = await scrape(server);
    // The KV cache's set-up, in vLLM's cache_config_info labels (the CPU's auto cache is f32).
    const cacheLabels = {
      block_size: String(server.runtime.model.blockSize),
      cache_dtype: 'auto',
      kv_cache_storage_dtype: 'f32',
      num_gpu_blocks: String(server.runtime.engine.scheduler.kv.pool.numUsableBlocks),
      enable_prefix_caching: 'true',
    };
    expect(value(before, 'vllm:cache_config_info', cacheLabels)).toBe(1);
    expect(value(before, 'updraft_cache_config_info', cacheLabels)).toBe(1);
    expect(value(before, 'vllm:num_requests_running')).toBe(0);
    expect(value(before, 'vllm:generation_tokens_total')).toBe(0);

    const first = await complete(server, {});
    const second = await complete(server, {}); // the same prompt: its full blocks come from the prefix cache
    const stopped = await complete(server, { max_tokens: 64, ignore_eos: false, stop: [' '] });
    const usages = [first, second, stopped];
    expect(second.prompt_tokens_details?.cached_tokens).toBeGreaterThan(0);

    // With async scheduling one step may still be on the device after the last response: let it land.
    await until(() => server.runtime.engine.scheduler.numStepsInFlight === 0 && !server.runtime.engine.scheduler.hasUnfinishedRequests(), 'the engine to go idle');
    const after = await scrape(server);
    const sum = (f: (u: Usage) => number) => usages.reduce((total, u) => total + f(u), 0);
    for (const prefix of ['vllm:', 'updraft_']) {
      expect(value(after, `${prefix}prompt_tokens_total`)).toBe(sum((u) => u.prompt_tokens));
      expect(value(after, `${prefix}generation_tokens_total`)).toBe(sum((u) => u.completion_tokens));
    }
    expect(value(after, 'vllm:request_success_total', { finished_reason: 'length' })).toBe(2);
    expect(value(after, 'vllm:request_success_total', { finished_reason: 'stop' })).toBe(1);
    for (const name of ['time_to_first_token_seconds', 'e2e_request_latency_seconds', 'request_queue_time_seconds', 'request_prompt_tokens']) {
      expect(value(after, `vllm:${name}_count`), name).toBe(3);
      expect(value(after, `updraft_${name}_count`), name).toBe(3);
    }
    expect(value(after, 'vllm:inter_token_latency_seconds_count')).toBe(sum((u) => u.completion_tokens) - 3);
    expect(value(after, 'vllm:e2e_request_latency_seconds_sum')).toBeGreaterThan(value(after, 'vllm:time_to_first_token_seconds_sum'));
    expect(value(after, 'vllm:time_to_first_token_seconds_sum')).toBeGreaterThan(value(after, 'vllm:request_queue_time_seconds_sum'));

    const stats = server.runtime.service.stats();
    expect(value(after, 'vllm:prefix_cache_queries_total')).toBe(stats.prefixCacheQueries);
    expect(value(after, 'vllm:prefix_cache_hits_total')).toBe(stats.prefixCacheHits);
    expect(stats.prefixCacheHits).toBe(sum((u) => u.prompt_tokens_details?.cached_tokens ?? 0));
    expect(value(after, 'vllm:num_requests_running')).toBe(0);
    expect(value(after, 'vllm:kv_cache_usage_perc')).toBe(0);
    // The engine's step timing: at least one step per generated token beyond the first of each request.
    const engineStats = server.runtime.engine;
    expect(value(after, 'updraft_engine_steps_total')).toBe(engineStats.numSteps);
    expect(engineStats.numSteps).toBeGreaterThanOrEqual(sum((u) => u.completion_tokens) / 3);
    expect(value(after, 'updraft_engine_device_seconds_total')).toBeCloseTo(engineStats.deviceTimeMs / 1000, 6);
    expect(value(after, 'updraft_engine_device_seconds_total')).toBeGreaterThan(0);
    expect(value(after, 'updraft_engine_device_idle_seconds_total')).toBeLessThanOrEqual(value(after, 'updraft_engine_host_critical_seconds_total') + 1e-9);
    // Process metrics ride along.
    expect(after.some((s) => s.name === 'process_resident_memory_bytes')).toBe(true);
  });

  it('shows running, waiting and KV usage while requests are in flight, and counts a client that leaves as abort', async () => {
    const abortsBefore = value(await scrape(server), 'vllm:request_success_total', { finished_reason: 'abort' });
    const hangUpFirst = await openStream(server, 400);
    // max-num-seqs 1: a second request waits.
    const secondResponse = fetch(`${server.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'A second one', max_tokens: 4 }),
    });
    await until(async () => value(await scrape(server), 'vllm:num_requests_waiting') === 1, 'a waiting request');
    const during = await scrape(server);
    expect(value(during, 'vllm:num_requests_running')).toBe(1);
    expect(value(during, 'updraft_num_requests_running')).toBe(1);
    expect(value(during, 'updraft_num_requests_waiting')).toBe(1);
    expect(value(during, 'vllm:kv_cache_usage_perc')).toBeGreaterThan(0);
    expect(value(during, 'vllm:kv_cache_usage_perc')).toBe(value(during, 'updraft_kv_cache_usage_ratio'));

    await hangUpFirst();
    expect((await secondResponse).status).toBe(200);
    await until(async () => value(await scrape(server), 'vllm:request_success_total', { finished_reason: 'abort' }) === abortsBefore + 1, 'the abort to be counted');
    const afterwards = await scrape(server);
    expect(value(afterwards, 'vllm:num_requests_running')).toBe(0);
    expect(value(afterwards, 'vllm:num_requests_waiting')).toBe(0);
  });
});

describe('preemptions in /metrics', () => {
  let server: TestServer;
  beforeAll(async () => {
    // Room for about two requests at a time while six arrive: with no decode headroom (vLLM's policy)
    // the scheduler must preempt.
    const probe = await startTestServer(modelDir, { maxModelLen: 128 });
    const bytesPerBlock = probe.runtime.model.memory.state / probe.runtime.model.numKvBlocks;
    await probe.close();
    server = await startTestServer(modelDir, { maxModelLen: 128, kvCacheMemoryBytes: Math.ceil(bytesPerBlock * 11), scheduleConservativeness: 0 });
  });
  afterAll(async () => server?.close());

  it('counts them as the engine does', async () => {
    await Promise.all(Array.from({ length: 6 }, (_, i) => complete(server, { prompt: `Story ${i}:`, max_tokens: 64 })));
    const samples = await scrape(server);
    const preemptions = server.runtime.engine.numPreemptions;
    expect(preemptions).toBeGreaterThan(0);
    expect(value(samples, 'vllm:num_preemptions_total')).toBe(preemptions);
    expect(value(samples, 'updraft_num_preemptions_total')).toBe(preemptions);
    expect(value(samples, 'vllm:request_success_total', { finished_reason: 'length' })).toBe(6);
  });
});
