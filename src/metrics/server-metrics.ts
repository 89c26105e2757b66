/**
 * The Prometheus metrics of one server (one app instance, its own prom-client Registry).
 *
 * Every metric exists twice: `updraft_*` (ours) and the vLLM name that dashboards and the Gateway API
 * Inference Extension's endpoint picker already read (`vllm:num_requests_waiting`,
 * `vllm:kv_cache_usage_perc`, ...). Both carry a `model_name` label, as vLLM's do.
 *
 * Scheduler state (running, waiting, KV usage, prefix cache, preemptions) is read from
 * InferenceService.stats() when scraped; per-request timings are fed by instrumentService
 * (src/metrics/instrument.ts) as outputs flow to the HTTP layer. Process metrics (CPU, memory, event
 * loop, GC) come from prom-client's default collectors, created on the first scrape.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { FinishReason, KvCacheCard, ServiceStats } from '../engine/inference-service.ts';

/** What the metrics need of the service: its stats, the served model's name and its KV cache's set-up. */
export interface MetricsSource {
  readonly model: { readonly id: string; readonly kvCache?: KvCacheCard };
  stats(): ServiceStats;
}

/** One finished generation (one engine request: a choice of a request with n > 1 is one each). */
export interface FinishedRequest {
  /** The engine request id (the response id, `-<index>` added for n > 1 choices). */
  engineRequestId: string;
  /** The HTTP request id (x-request-id), when the request came through the API. */
  requestId: string | null;
  /** 'error': the generation failed (a device step failed); the others as in the API. */
  finishReason: FinishReason | 'error';
  promptTokens: number;
  completionTokens: number;
  cachedPromptTokens: number;
  /** Seconds from arrival to first scheduled; null when unknown or never scheduled. */
  queueTimeSeconds: number | null;
  /** Seconds from arrival to the first output token; null when none was produced. */
  ttftSeconds: number | null;
  /** Seconds from arrival to the end. */
  e2eSeconds: number;
  numPreemptions: number | null;
}

// vLLM's buckets, with finer steps at the low end where a fast GPU's decode and queue times fall.
const TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560];
const ITL_BUCKETS = [0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80];
const LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680];
const TOKEN_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000];

const MODEL_LABEL = 'model_name';

/** Metric name pairs: ours, then vLLM's (null: vLLM has no equivalent). */
export const METRIC_NAMES = {
  running: ['updraft_num_requests_running', 'vllm:num_requests_running'],
  waiting: ['updraft_num_requests_waiting', 'vllm:num_requests_waiting'],
  kvUsage: ['updraft_kv_cache_usage_ratio', 'vllm:kv_cache_usage_perc'],
  prefixQueries: ['updraft_prefix_cache_queries_total', 'vllm:prefix_cache_queries_total'],
  prefixHits: ['updraft_prefix_cache_hits_total', 'vllm:prefix_cache_hits_total'],
  preemptions: ['updraft_num_preemptions_total', 'vllm:num_preemptions_total'],
  promptTokens: ['updraft_prompt_tokens_total', 'vllm:prompt_tokens_total'],
  generationTokens: ['updraft_generation_tokens_total', 'vllm:generation_tokens_total'],
  success: ['updraft_request_success_total', 'vllm:request_success_total'],
  ttft: ['updraft_time_to_first_token_seconds', 'vllm:time_to_first_token_seconds'],
  itl: ['updraft_inter_token_latency_seconds', 'vllm:inter_token_latency_seconds'],
  e2e: ['updraft_e2e_request_latency_seconds', 'vllm:e2e_request_latency_seconds'],
  queue: ['updraft_request_queue_time_seconds', 'vllm:request_queue_time_seconds'],
  requestPromptTokens: ['updraft_request_prompt_tokens', 'vllm:request_prompt_tokens'],
  requestGenerationTokens: ['updraft_request_generation_tokens', 'vllm:request_generation_tokens'],
  errors: ['updraft_request_errors_total', null],
  rejected: ['updraft_requests_rejected_total', null],
  engineSteps: ['updraft_engine_steps_total', null],
  engineDevice: ['updraft_engine_device_seconds_total', null],
  engineHostCritical: ['updraft_engine_host_critical_seconds_total', null],
  engineDeviceIdle: ['updraft_engine_device_idle_seconds_total', null],
  cacheConfig: ['updraft_cache_config_info', 'vllm:cache_config_info'],
} as const satisfies Record<string, readonly [string, string | null]>;

/** Older endpoint pickers (Inference Extension < v1) read vLLM's previous name for KV usage. */
export const LEGACY_KV_USAGE_NAME = 'vllm:gpu_cache_usage_perc';

export interface ServerMetricsOptions {
  /** prom-client's process and Node.js metrics (default true). */
  processMetrics?: boolean;
}

export class ServerMetrics {
  readonly registry = new Registry();
  readonly #labels: Record<string, string>;
  readonly #processMetrics: boolean;
  #processMetricsStarted = false;

  readonly #promptTokens: Counter[];
  readonly #generationTokens: Counter[];
  readonly #success: Counter[];
  readonly #errors: Counter;
  readonly #rejected: Counter;
  readonly #ttft: Histogram[];
  readonly #itl: Histogram[];
  readonly #e2e: Histogram[];
  readonly #queue: Histogram[];
  readonly #requestPromptTokens: Histogram[];
  readonly #requestGenerationTokens: Histogram[];

  constructor(source: MetricsSource, options: ServerMetricsOptions = {}) {
    this.#labels = { [MODEL_LABEL]: source.model.id };
    this.#processMetrics = options.processMetrics ?? true;
    const registers = [this.registry];
    const labelNames = [MODEL_LABEL];
    const labels = this.#labels;

    // Scheduler state, read once per scrape: the collectors of one scrape run in the same tick and
    // share one stats() call; the copy is dropped before the next tick.
    let scrape: ServiceStats | null = null;
    const stats = (): ServiceStats => {
      if (scrape === null) {
        scrape = source.stats();
        queueMicrotask(() => (scrape = null));
      }
      return scrape;
    };
    const gauge = (names: readonly (string | null)[], help: string, read: (s: ServiceStats) => number) => {
      for (const name of names) {
        if (name === null) continue;
        new Gauge({
          name,
          help,
          labelNames,
          registers,
          collect() {
            this.set(labels, read(stats()));
          },
        });
      }
    };
    // Counters the engine keeps cumulatively: the Prometheus counter follows by the difference.
    const engineCounter = (names: readonly (string | null)[], help: string, read: (s: ServiceStats) => number) => {
      for (const name of names) {
        if (name === null) continue;
        let last = 0;
        const counter = new Counter({
          name,
          help,
          labelNames,
          registers,
          collect() {
            const value = read(stats());
            if (value > last) counter.inc(labels, value - last);
            last = Math.max(last, value);
          },
        });
        counter.inc(labels, 0);
      }
    };
    new Gauge({ name: 'updraft_info', help: 'Always 1; the served model in model_name.', labelNames, registers }).set(labels, 1);
    const kvCache = source.model.kvCache;
    if (kvCache !== undefined) {
      // vLLM's label names (its CacheConfig fields as strings), plus the storage dtype `auto` resolved to.
      const cacheLabels = {
        ...labels,
        block_size: String(kvCache.blockSize),
        cache_dtype: kvCache.cacheDtype,
        kv_cache_storage_dtype: kvCache.storageDtype,
        num_gpu_blocks: String(kvCache.numBlocks),
        enable_prefix_caching: String(kvCache.enablePrefixCaching),
      };
      for (const name of METRIC_NAMES.cacheConfig) {
        new Gauge({ name, help: 'Always 1; the KV cache set-up in its labels.', labelNames: Object.keys(cacheLabels), registers }).set(cacheLabels, 1);
      }
    }
    gauge(METRIC_NAMES.running, 'Requests in the running batch.', (s) => s.numRunning);
    gauge(METRIC_NAMES.waiting, 'Requests waiting to be scheduled.', (s) => s.numWaiting);
    gauge([...METRIC_NAMES.kvUsage, LEGACY_KV_USAGE_NAME], 'Fraction of KV cache blocks in use (1 = 100 percent).', (s) => s.kvCacheUsage);
    engineCounter(METRIC_NAMES.prefixQueries, 'Prefix cache queries, in prompt tokens looked up.', (s) => s.prefixCacheQueries);
    engineCounter(METRIC_NAMES.prefixHits, 'Prefix cache hits, in prompt tokens served from the cache.', (s) => s.prefixCacheHits);
    engineCounter(METRIC_NAMES.preemptions, 'Requests preempted (their KV blocks taken back, recomputed later).', (s) => s.numPreemptions);
    // Where a step's time goes; rates of these over a window give ms per step (bench/gpu/serve.sh reads them).
    engineCounter(METRIC_NAMES.engineSteps, 'Model steps run by the engine loop.', (s) => s.engine?.numSteps ?? 0);
    engineCounter(METRIC_NAMES.engineDevice, 'Seconds the engine loop awaited device steps.', (s) => (s.engine?.deviceTimeMs ?? 0) / 1000);
    engineCounter(METRIC_NAMES.engineHostCritical, "Host seconds between a step's result and the next launch (update, schedule, prepare).", (s) => (s.engine?.criticalHostTimeMs ?? 0) / 1000);
    engineCounter(METRIC_NAMES.engineDeviceIdle, 'Seconds the device sat idle waiting for the host (no step queued).', (s) => (s.engine?.exposedHostTimeMs ?? 0) / 1000);

    const counters = (names: readonly (string | null)[], help: string, extraLabels: string[] = []): Counter[] =>
      names.filter((n): n is string => n !== null).map((name) => {
        const counter = new Counter({ name, help, labelNames: [...labelNames, ...extraLabels], registers });
        if (extraLabels.length === 0) counter.inc(labels, 0);
        return counter;
      });
    const histograms = (names: readonly (string | null)[], help: string, buckets: number[]): Histogram[] =>
      names.filter((n): n is string => n !== null).map((name) => {
        const histogram = new Histogram({ name, help, labelNames, buckets, registers });
        histogram.zero(labels); // series exist (at 0) before the first request
        return histogram;
      });

    this.#promptTokens = counters(METRIC_NAMES.promptTokens, 'Prompt tokens processed (cached ones included).');
    this.#generationTokens = counters(METRIC_NAMES.generationTokens, 'Tokens generated.');
    this.#success = counters(METRIC_NAMES.success, 'Finished requests by finish reason (stop, length, abort).', ['finished_reason']);
    for (const counter of this.#success) for (const reason of ['stop', 'length', 'abort']) counter.inc({ ...labels, finished_reason: reason }, 0);
    this.#errors = counters(METRIC_NAMES.errors, 'Requests that failed while generating (a failed device step).')[0]!;
    this.#rejected = counters(METRIC_NAMES.rejected, 'Requests refused before generating: overloaded (429) or invalid for this model (400).', ['reason'])[0]!;
    this.#ttft = histograms(METRIC_NAMES.ttft, 'Time from arrival to the first generated token, seconds.', TTFT_BUCKETS);
    this.#itl = histograms(METRIC_NAMES.itl, 'Time between consecutive generated tokens, seconds.', ITL_BUCKETS);
    this.#e2e = histograms(METRIC_NAMES.e2e, 'Time from arrival to the last token, seconds.', LATENCY_BUCKETS);
    this.#queue = histograms(METRIC_NAMES.queue, 'Time waiting before first being scheduled, seconds.', LATENCY_BUCKETS);
    this.#requestPromptTokens = histograms(METRIC_NAMES.requestPromptTokens, 'Prompt tokens per request.', TOKEN_BUCKETS);
    this.#requestGenerationTokens = histograms(METRIC_NAMES.requestGenerationTokens, 'Generated tokens per request.', TOKEN_BUCKETS);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text for GET /metrics. */
  async scrape(): Promise<string> {
    if (this.#processMetrics && !this.#processMetricsStarted) {
      this.#processMetricsStarted = true;
      collectDefaultMetrics({ register: this.registry });
    }
    return this.registry.metrics();
  }

  /** A request's prompt has been computed (its first token exists). */
  promptProcessed(promptTokens: number, ttftSeconds: number): void {
    for (const c of this.#promptTokens) c.inc(this.#labels, promptTokens);
    for (const h of this.#ttft) h.observe(this.#labels, ttftSeconds);
  }

  /** `count` tokens generated; `intervalSeconds` since the previous token, per token (null: the first ones). */
  tokensGenerated(count: number, intervalSeconds: number | null): void {
    if (count <= 0) return;
    for (const c of this.#generationTokens) c.inc(this.#labels, count);
    if (intervalSeconds === null) return;
    for (const h of this.#itl) for (let i = 0; i < count; i++) h.observe(this.#labels, intervalSeconds);
  }

  requestFinished(request: FinishedRequest): void {
    if (request.finishReason === 'error') {
      this.#errors.inc(this.#labels);
    } else {
      for (const c of this.#success) c.inc({ ...this.#labels, finished_reason: request.finishReason });
    }
    for (const h of this.#e2e) h.observe(this.#labels, request.e2eSeconds);
    if (request.queueTimeSeconds !== null) for (const h of this.#queue) h.observe(this.#labels, request.queueTimeSeconds);
    for (const h of this.#requestPromptTokens) h.observe(this.#labels, request.promptTokens);
    for (const h of this.#requestGenerationTokens) h.observe(this.#labels, request.completionTokens);
  }

  requestRejected(reason: string): void {
    this.#rejected.inc({ ...this.#labels, reason });
  }
}
