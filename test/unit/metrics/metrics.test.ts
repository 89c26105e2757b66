/**
 * GET /metrics over the fake service: every documented name (ours and the vLLM aliases), values that
 * follow the service's stats and the requests served, one registry per app, process metrics, and the
 * request timings (with a controlled clock).
 */
import { describe, expect, it } from 'vitest';
import { createApp } from '../../../src/api/app.ts';
import type { GenerateOutput, ServiceStats } from '../../../src/engine/inference-service.ts';
import { ServiceError } from '../../../src/engine/inference-service.ts';
import { instrumentService } from '../../../src/metrics/instrument.ts';
import { LEGACY_KV_USAGE_NAME, METRIC_NAMES, ServerMetrics } from '../../../src/metrics/server-metrics.ts';
import { FakeInferenceService } from '../../helpers/fake-service.ts';
import { metricTypes, parsePrometheus, sampleValue, type Sample } from '../../helpers/prometheus.ts';

const MODEL = { model_name: 'fake-model' };

async function scrape(app: { request: (path: string) => Response | Promise<Response> }): Promise<{ text: string; samples: Sample[] }> {
  const response = await app.request('/metrics');
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const text = await response.text();
  return { text, samples: parsePrometheus(text) };
}

function chat(app: ReturnType<typeof createApp>, body: Record<string, unknown>, headers: Record<string, string> = {}) {
  return app.request('/v1/chat/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'Hi there' }], ...body }),
  });
}

describe('GET /metrics', () => {
  it('exposes every metric under its updraft_ name and its vLLM alias, with model_name, plus process metrics', async () => {
    const kvCache = { cacheDtype: 'fp8', storageDtype: 'f8e4m3', blockSize: 16, numBlocks: 1000, enablePrefixCaching: true };
    const app = createApp(new FakeInferenceService({ model: { kvCache } }));
    const { text, samples } = await scrape(app);
    const types = metricTypes(text);
    const expectType = (name: string, type: string) => expect(types.get(name), name).toBe(type);
    for (const [key, names] of Object.entries(METRIC_NAMES)) {
      for (const name of names) {
        if (name === null) continue;
        const type = ['running', 'waiting', 'kvUsage', 'cacheConfig'].includes(key)
          ? 'gauge'
          : ['ttft', 'itl', 'e2e', 'queue', 'requestPromptTokens', 'requestGenerationTokens'].includes(key)
            ? 'histogram'
            : 'counter';
        expectType(name, type);
      }
    }
    // The names the Gateway API Inference Extension's endpoint picker routes on.
    for (const name of ['vllm:num_requests_waiting', 'vllm:num_requests_running', 'vllm:kv_cache_usage_perc', LEGACY_KV_USAGE_NAME]) {
      expect(sampleValue(samples, name, MODEL)).toBe(0);
    }
    expect(sampleValue(samples, 'vllm:request_success_total', { ...MODEL, finished_reason: 'stop' })).toBe(0);
    expect(sampleValue(samples, 'updraft_info', MODEL)).toBe(1);
    const cacheLabels = { ...MODEL, block_size: '16', cache_dtype: 'fp8', kv_cache_storage_dtype: 'f8e4m3', num_gpu_blocks: '1000', enable_prefix_caching: 'true' };
    expect(sampleValue(samples, 'vllm:cache_config_info', cacheLabels)).toBe(1);
    expect(sampleValue(samples, 'updraft_cache_config_info', cacheLabels)).toBe(1);
    expect(types.get('process_cpu_user_seconds_total')).toBe('counter');
    expect(types.get('process_resident_memory_bytes')).toBe('gauge');
    expect(types.get('nodejs_eventloop_lag_seconds')).toBe('gauge');
    expect(types.get('nodejs_heap_size_used_bytes')).toBe('gauge');
  });

  it('reads the scheduler state from stats() at each scrape; engine counters follow the service totals', async () => {
    const service = new FakeInferenceService();
    let stats: ServiceStats = { numRunning: 3, numWaiting: 5, kvCacheUsage: 0.25, prefixCacheQueries: 100, prefixCacheHits: 40, numPreemptions: 2 };
    service.stats = () => stats;
    const app = createApp(service);
    let { samples } = await scrape(app);
    for (const [ours, theirs] of [METRIC_NAMES.running, METRIC_NAMES.waiting, METRIC_NAMES.kvUsage, METRIC_NAMES.prefixQueries, METRIC_NAMES.prefixHits, METRIC_NAMES.preemptions]) {
      expect(sampleValue(samples, ours, MODEL)).toBe(sampleValue(samples, theirs!, MODEL));
    }
    expect(sampleValue(samples, 'vllm:num_requests_running', MODEL)).toBe(3);
    expect(sampleValue(samples, 'vllm:num_requests_waiting', MODEL)).toBe(5);
    expect(sampleValue(samples, 'vllm:kv_cache_usage_perc', MODEL)).toBe(0.25);
    expect(sampleValue(samples, 'vllm:prefix_cache_queries_total', MODEL)).toBe(100);
    expect(sampleValue(samples, 'vllm:prefix_cache_hits_total', MODEL)).toBe(40);
    expect(sampleValue(samples, 'vllm:num_preemptions_total', MODEL)).toBe(2);

    stats = { numRunning: 0, numWaiting: 1, kvCacheUsage: 0.5, prefixCacheQueries: 130, prefixCacheHits: 70, numPreemptions: 2 };
    ({ samples } = await scrape(app));
    expect(sampleValue(samples, 'updraft_num_requests_running', MODEL)).toBe(0);
    expect(sampleValue(samples, 'updraft_kv_cache_usage_ratio', MODEL)).toBe(0.5);
    expect(sampleValue(samples, 'updraft_prefix_cache_queries_total', MODEL)).toBe(130);
    expect(sampleValue(samples, 'updraft_prefix_cache_hits_total', MODEL)).toBe(70);
  });

  it('counts tokens, finish reasons and latencies of requests served, streaming or not', async () => {
    const service = new FakeInferenceService({ reply: 'one two three four', tokenDelayMs: 2 });
    const app = createApp(service);
    const plain = await chat(app, { max_tokens: 10 });
    const plainBody = (await plain.json()) as { usage: { prompt_tokens: number; completion_tokens: number } };
    const streamed = await chat(app, { max_tokens: 2, stream: true });
    const events = await streamed.text();
    expect(events).toContain('data: [DONE]');

    const { samples } = await scrape(app);
    const streamedPromptTokens = service.generations[1]!.request.promptTokenIds.length;
    const promptTokens = plainBody.usage.prompt_tokens + streamedPromptTokens;
    const generationTokens = plainBody.usage.completion_tokens + 2;
    for (const [name, value] of [
      ['vllm:prompt_tokens_total', promptTokens],
      ['updraft_prompt_tokens_total', promptTokens],
      ['vllm:generation_tokens_total', generationTokens],
      ['updraft_generation_tokens_total', generationTokens],
      ['vllm:time_to_first_token_seconds_count', 2],
      ['vllm:e2e_request_latency_seconds_count', 2],
      ['updraft_request_prompt_tokens_sum', promptTokens],
      ['updraft_request_generation_tokens_sum', generationTokens],
      // Every token after a request's first one has an interval.
      ['vllm:inter_token_latency_seconds_count', generationTokens - 2],
    ] as const) {
      expect(sampleValue(samples, name, MODEL), name).toBe(value);
    }
    expect(sampleValue(samples, 'vllm:request_success_total', { ...MODEL, finished_reason: 'stop' })).toBe(1);
    expect(sampleValue(samples, 'vllm:request_success_total', { ...MODEL, finished_reason: 'length' })).toBe(1);
    expect(sampleValue(samples, 'updraft_request_success_total', { ...MODEL, finished_reason: 'length' })).toBe(1);
    // The fake reports no engine timing: no queue time is made up.
    expect(sampleValue(samples, 'vllm:request_queue_time_seconds_count', MODEL)).toBe(0);
    // Each token took >= 2 ms: so does each interval and the first token.
    expect(sampleValue(samples, 'vllm:inter_token_latency_seconds_bucket', { ...MODEL, le: '0.001' })).toBe(0);
    expect(sampleValue(samples, 'vllm:time_to_first_token_seconds_bucket', { ...MODEL, le: '0.001' })).toBe(0);
  });

  it('counts refused requests, failed generations and clients that leave', async () => {
    const service = new FakeInferenceService({ reply: 'a b c d e f g h', tokenDelayMs: 5 });
    const app = createApp(service, { logger: { error: () => {} } });
    service.throwOnGenerate = new ServiceError('overloaded', 'busy', { retryAfterSeconds: 1 });
    expect((await chat(app, {})).status).toBe(429);

    service.failAfterOutputs = { count: 2, error: new Error('device step failed') };
    const failed = await chat(app, { stream: true });
    await failed.text();
    service.failAfterOutputs = null;

    const controller = new AbortController();
    const request = new Request('http://localhost/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }], stream: true }),
      signal: controller.signal,
    });
    const response = await app.fetch(request);
    const reader = response.body!.getReader();
    await reader.read();
    controller.abort();
    await reader.cancel().catch(() => {});
    await service.generations.at(-1)!.aborted;
    await new Promise((resolve) => setTimeout(resolve, 20));

    const { samples } = await scrape(app);
    expect(sampleValue(samples, 'updraft_requests_rejected_total', { ...MODEL, reason: 'overloaded' })).toBe(1);
    expect(sampleValue(samples, 'updraft_request_errors_total', MODEL)).toBe(1);
    expect(sampleValue(samples, 'vllm:request_success_total', { ...MODEL, finished_reason: 'abort' })).toBe(1);
    expect(sampleValue(samples, 'vllm:request_success_total', { ...MODEL, finished_reason: 'stop' })).toBe(0);
  });

  it('keeps a registry per app: two apps in one process count separately', async () => {
    const a = createApp(new FakeInferenceService({ model: { id: 'model-a' } }));
    const b = createApp(new FakeInferenceService({ model: { id: 'model-b' } }));
    await (await chat(a, {})).json();
    await (await chat(a, {})).json();
    const sa = (await scrape(a)).samples;
    const sb = (await scrape(b)).samples;
    expect(sampleValue(sa, 'vllm:e2e_request_latency_seconds_count', { model_name: 'model-a' })).toBe(2);
    expect(sampleValue(sb, 'vllm:e2e_request_latency_seconds_count', { model_name: 'model-b' })).toBe(0);
    expect(sb.some((s) => s.labels['model_name'] === 'model-a')).toBe(false);
  });

  it('can be turned off', async () => {
    const app = createApp(new FakeInferenceService(), { metrics: false });
    expect((await app.request('/metrics')).status).toBe(404);
  });
});

describe('instrumentService timings', () => {
  it('measures queue time (from the engine), TTFT, inter-token intervals and end-to-end from the outputs', async () => {
    const service = new FakeInferenceService();
    const usage = { promptTokens: 7, completionTokens: 0, cachedPromptTokens: 0 };
    let clock = 1000;
    // Outputs at t = +50 ms (1 token), +60 (2 tokens merged), +90 (1 token, final).
    const outputs: Array<[number, GenerateOutput]> = [
      [1050, { text: 'a', tokenIds: [5], finishReason: null, usage: { ...usage, completionTokens: 1 } }],
      [1060, { text: 'bc', tokenIds: [6, 7], finishReason: null, usage: { ...usage, completionTokens: 3 } }],
      [1090, { text: 'd', tokenIds: [8], finishReason: 'length', usage: { ...usage, completionTokens: 4 }, timing: { queueTimeMs: 30, numPreemptions: 1 } }],
    ];
    service.generate = () =>
      (async function* () {
        for (const [at, output] of outputs) {
          clock = at;
          yield output;
        }
      })();
    const metrics = new ServerMetrics(service, { processMetrics: false });
    const instrumented = instrumentService(service, { metrics, now: () => clock });
    for await (const _ of instrumented.generate({ requestId: 'r1', promptTokenIds: [1, 2, 3, 4, 5, 6, 7], params: {} as never })) void _;

    const samples = parsePrometheus(await metrics.scrape());
    const value = (name: string) => sampleValue(samples, name, MODEL);
    expect(value('updraft_time_to_first_token_seconds_sum')).toBeCloseTo(0.05, 9);
    expect(value('updraft_request_queue_time_seconds_sum')).toBeCloseTo(0.03, 9);
    expect(value('updraft_e2e_request_latency_seconds_sum')).toBeCloseTo(0.09, 9);
    // 2 tokens 10 ms after the first: 5 ms each; then one after 30 ms.
    expect(value('updraft_inter_token_latency_seconds_count')).toBe(3);
    expect(value('updraft_inter_token_latency_seconds_sum')).toBeCloseTo(0.04, 9);
    expect(sampleValue(samples, 'updraft_inter_token_latency_seconds_bucket', { ...MODEL, le: '0.005' })).toBe(2);
    expect(value('updraft_prompt_tokens_total')).toBe(7);
    expect(value('updraft_generation_tokens_total')).toBe(4);
  });

  it('forwards everything else to the service unchanged', async () => {
    const service = new FakeInferenceService();
    service.chatTemplateSource = '{{ messages }}';
    const instrumented = instrumentService(service, { metrics: new ServerMetrics(service, { processMetrics: false }) });
    expect(instrumented.model).toBe(service.model);
    expect(instrumented.chatTemplateSource).toBe('{{ messages }}');
    expect(await instrumented.encode('a b')).toEqual(await service.encode('a b'));
    expect(instrumented.stats()).toEqual(service.stats());
    expect(instrumentService(service, {})).toBe(service);
  });
});
