/**
 * From per-request outputs to the numbers `vllm bench serve` reports, with its definitions: TPOT per
 * request = (latency − TTFT) / (output tokens − 1) for requests with more than one token; ITL = every
 * gap between text chunks; goodput = completed requests meeting every SLO (a one-token request counts
 * TPOT 0) per second; peak output throughput = the busiest one-second bucket of token arrivals. Then the
 * result JSON with vLLM's keys and the table in vLLM's layout.
 */
import type { RequestOutput } from './client.ts';
import type { SampleRequest } from './datasets.ts';
import { summarize, type Summary } from './stats.ts';

export const METRIC_NAMES = ['ttft', 'tpot', 'itl', 'e2el'] as const;
export type MetricName = (typeof METRIC_NAMES)[number];
export const GOODPUT_NAMES = ['ttft', 'tpot', 'e2el'] as const;
export type GoodputName = (typeof GOODPUT_NAMES)[number];
/** SLOs in milliseconds. */
export type GoodputSlos = Partial<Record<GoodputName, number>>;

export interface BenchmarkMetrics {
  completed: number;
  failed: number;
  totalInput: number;
  totalOutput: number;
  requestThroughput: number;
  requestGoodput: number;
  outputThroughput: number;
  totalTokenThroughput: number;
  /** Milliseconds. */
  summaries: Record<MetricName, Summary>;
  maxOutputTokensPerS: number;
  maxConcurrentRequests: number;
  /** Per request, in order: the prompt tokens counted and the output tokens (0 for failures). */
  inputLens: number[];
  outputLens: number[];
}

export interface MetricsOptions {
  percentiles: readonly number[];
  goodput: GoodputSlos | null;
  /** Counts the tokens of a generated text when the server sent no usage (a tokenizer); else text chunks are counted. */
  countTokens?: ((text: string) => number) | null;
}

/** Output tokens of one request: the server's usage, else the tokenizer's count of the text, else its text chunks. */
export function outputTokensOf(output: RequestOutput, countTokens?: ((text: string) => number) | null): number {
  if (output.usageOutputTokens !== null) return output.usageOutputTokens;
  if (countTokens) return countTokens(output.generatedText);
  return output.textChunks;
}

/** Prompt tokens of one request: the dataset's when exact, else the server's usage when sent. */
export function inputTokensOf(input: SampleRequest, output: RequestOutput): number {
  if (!input.promptLenExact && output.usagePromptTokens !== null) return output.usagePromptTokens;
  return input.promptLen;
}

const toMs = (seconds: number[]) => seconds.map((s) => s * 1000);

export function calculateMetrics(inputs: readonly SampleRequest[], outputs: readonly RequestOutput[], durationS: number, options: MetricsOptions): BenchmarkMetrics {
  const inputLens: number[] = [];
  const outputLens: number[] = [];
  const ttfts: number[] = [];
  const tpots: number[] = [];
  const allTpots: number[] = [];
  const itls: number[] = [];
  const e2els: number[] = [];
  let totalInput = 0;
  let completed = 0;
  for (let i = 0; i < outputs.length; i++) {
    const output = outputs[i]!;
    const inputLen = inputTokensOf(inputs[i]!, output);
    inputLens.push(inputLen);
    if (!output.success) {
      outputLens.push(0);
      continue;
    }
    const outputLen = outputTokensOf(output, options.countTokens);
    outputLens.push(outputLen);
    totalInput += inputLen;
    let tpot = 0;
    if (outputLen > 1) {
      tpot = (output.latency - output.ttft) / (outputLen - 1);
      tpots.push(tpot);
    }
    allTpots.push(tpot);
    for (const gap of output.itl) itls.push(gap);
    ttfts.push(output.ttft);
    e2els.push(output.latency);
    completed++;
  }

  let good = 0;
  const slos = options.goodput;
  if (slos) {
    for (let i = 0; i < ttfts.length; i++) {
      const ok =
        (slos.ttft === undefined || ttfts[i]! * 1000 <= slos.ttft) &&
        (slos.tpot === undefined || allTpots[i]! * 1000 <= slos.tpot) &&
        (slos.e2el === undefined || e2els[i]! * 1000 <= slos.e2el);
      if (ok) good++;
    }
  }

  const totalOutput = outputLens.reduce((a, b) => a + b, 0);
  const peak = peakRates(outputs);
  const p = options.percentiles;
  return {
    completed,
    failed: outputs.length - completed,
    totalInput,
    totalOutput,
    requestThroughput: completed / durationS,
    requestGoodput: good / durationS,
    outputThroughput: totalOutput / durationS,
    totalTokenThroughput: (totalInput + totalOutput) / durationS,
    summaries: {
      ttft: summarize(toMs(ttfts), p),
      tpot: summarize(toMs(tpots), p),
      itl: summarize(toMs(itls), p),
      e2el: summarize(toMs(e2els), p),
    },
    maxOutputTokensPerS: peak.maxOutputTokensPerS,
    maxConcurrentRequests: peak.maxConcurrentRequests,
    inputLens,
    outputLens,
  };
}

/** The busiest one-second bucket of text-chunk arrivals, and the most requests in flight in any one-second bucket. */
export function peakRates(outputs: readonly RequestOutput[]): { maxOutputTokensPerS: number; maxConcurrentRequests: number } {
  const ok = outputs.filter((o) => o.success);
  if (ok.length === 0) return { maxOutputTokensPerS: 0, maxConcurrentRequests: 0 };
  const start = Math.min(...ok.map((o) => o.startTime));
  const end = Math.max(...ok.map((o) => o.startTime + o.latency));
  const buckets = Math.ceil(end - start) + 1;
  const tokens = new Float64Array(buckets);
  const concurrent = new Float64Array(buckets);
  for (const o of ok) {
    let t = o.startTime + o.ttft;
    const times = [t];
    for (const gap of o.itl) times.push((t += gap));
    for (const time of times) {
      const b = Math.floor(time - start);
      if (b >= 0 && b < buckets) tokens[b]!++;
    }
    const first = Math.floor(o.startTime - start);
    const last = Math.min(buckets - 1, Math.floor(o.startTime + o.latency - start));
    for (let b = first; b <= last; b++) concurrent[b]!++;
  }
  return { maxOutputTokensPerS: Math.max(...tokens), maxConcurrentRequests: Math.max(...concurrent) };
}

/** "99" for 99, "99.9" for 99.9: the key vLLM writes (p99_ttft_ms, p99.9_ttft_ms). */
export function percentileWord(p: number): string {
  return String(p);
}

export interface RunDescription {
  date: Date;
  backend: string;
  label: string | null;
  modelId: string;
  tokenizerId: string;
  numPrompts: number;
  metadata: Record<string, string>;
  requestRate: number;
  burstiness: number;
  maxConcurrency: number | null;
  durationS: number;
  percentileMetrics: readonly MetricName[];
  goodput: GoodputSlos | null;
  /** Per-request arrays (input_lens, output_lens, ttfts, itls, errors) in the JSON. */
  perRequest: boolean;
  /** generated_texts too. */
  saveDetailed: boolean;
  /** Keys after vLLM's (Updraft's additions). */
  extra: Record<string, unknown>;
}

/** vLLM's result-file date: local time as %Y%m%d-%H%M%S. */
export function formatDate(date: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}${two(date.getMonth() + 1)}${two(date.getDate())}-${two(date.getHours())}${two(date.getMinutes())}${two(date.getSeconds())}`;
}

/** The result JSON, keys in vLLM's order (`vllm bench serve --save-result`). */
export function resultJson(run: RunDescription, metrics: BenchmarkMetrics, outputs: readonly RequestOutput[]): Record<string, unknown> {
  const result: Record<string, unknown> = {
    date: formatDate(run.date),
    endpoint_type: run.backend,
    backend: run.backend,
    label: run.label,
    model_id: run.modelId,
    tokenizer_id: run.tokenizerId,
    num_prompts: run.numPrompts,
    ...run.metadata,
    request_rate: run.requestRate === Infinity ? 'inf' : run.requestRate,
    burstiness: run.burstiness === Infinity ? 'inf' : run.burstiness,
    max_concurrency: run.maxConcurrency,
    duration: run.durationS,
    completed: metrics.completed,
    failed: metrics.failed,
    total_input_tokens: metrics.totalInput,
    total_output_tokens: metrics.totalOutput,
    request_throughput: metrics.requestThroughput,
    request_goodput: run.goodput ? metrics.requestGoodput : null,
    output_throughput: metrics.outputThroughput,
    total_token_throughput: metrics.totalTokenThroughput,
  };
  if (run.perRequest) {
    result['input_lens'] = metrics.inputLens;
    result['output_lens'] = metrics.outputLens;
    result['ttfts'] = outputs.map((o) => o.ttft);
    result['itls'] = outputs.map((o) => o.itl);
    if (run.saveDetailed) result['generated_texts'] = outputs.map((o) => o.generatedText);
    result['errors'] = outputs.map((o) => o.error);
  }
  result['max_output_tokens_per_s'] = metrics.maxOutputTokensPerS;
  result['max_concurrent_requests'] = metrics.maxConcurrentRequests;
  for (const name of run.percentileMetrics) {
    const s = metrics.summaries[name];
    result[`mean_${name}_ms`] = s.mean;
    result[`median_${name}_ms`] = s.median;
    result[`std_${name}_ms`] = s.std;
    for (const [p, value] of s.percentiles) result[`p${percentileWord(p)}_${name}_ms`] = value;
  }
  return { ...result, ...run.extra };
}

const HEADERS: Record<MetricName, [string, string]> = {
  ttft: ['TTFT', 'Time to First Token'],
  tpot: ['TPOT', 'Time per Output Token (excl. 1st token)'],
  itl: ['ITL', 'Inter-token Latency'],
  e2el: ['E2EL', 'End-to-end Latency'],
};

/** Python's "{s:{c}^{n}}": centered, the extra fill character on the right. */
function center(text: string, width: number, fill: string): string {
  const pad = Math.max(0, width - text.length);
  const left = Math.floor(pad / 2);
  return fill.repeat(left) + text + fill.repeat(pad - left);
}

/** "{:<40} {:<10}" and "{:<40} {:<10.2f}". */
function row(label: string, value: number, decimals: boolean): string {
  return `${label.padEnd(40)} ${(decimals ? value.toFixed(2) : String(value)).padEnd(10)}`;
}

/** The table `vllm bench serve` prints, line for line. */
export function formatTable(run: RunDescription, metrics: BenchmarkMetrics): string {
  const lines = [center(' Serving Benchmark Result ', 50, '=')];
  lines.push(row('Successful requests:', metrics.completed, false));
  lines.push(row('Failed requests:', metrics.failed, false));
  if (run.maxConcurrency !== null) lines.push(row('Maximum request concurrency:', run.maxConcurrency, false));
  if (run.requestRate !== Infinity) lines.push(row('Request rate configured (RPS):', run.requestRate, true));
  lines.push(row('Benchmark duration (s):', run.durationS, true));
  lines.push(row('Total input tokens:', metrics.totalInput, false));
  lines.push(row('Total generated tokens:', metrics.totalOutput, false));
  lines.push(row('Request throughput (req/s):', metrics.requestThroughput, true));
  if (run.goodput) lines.push(row('Request goodput (req/s):', metrics.requestGoodput, true));
  lines.push(row('Output token throughput (tok/s):', metrics.outputThroughput, true));
  lines.push(row('Peak output token throughput (tok/s):', metrics.maxOutputTokensPerS, true));
  lines.push(row('Peak concurrent requests:', metrics.maxConcurrentRequests, true));
  lines.push(row('Total Token throughput (tok/s):', metrics.totalTokenThroughput, true));
  for (const name of METRIC_NAMES) {
    if (!run.percentileMetrics.includes(name)) continue;
    const [short, header] = HEADERS[name];
    const s = metrics.summaries[name];
    lines.push(center(header, 50, '-'));
    lines.push(row(`Mean ${short} (ms):`, s.mean, true));
    lines.push(row(`Median ${short} (ms):`, s.median, true));
    for (const [p, value] of s.percentiles) lines.push(row(`P${percentileWord(p)} ${short} (ms):`, value, true));
  }
  lines.push('='.repeat(50));
  return lines.join('\n');
}
