import { describe, expect, it } from 'vitest';
import type { RequestOutput } from '../../../bench/serve/client.ts';
import type { SampleRequest } from '../../../bench/serve/datasets.ts';
import { calculateMetrics, formatDate, formatTable, peakRates, resultJson, type RunDescription } from '../../../bench/serve/metrics.ts';

function output(o: Partial<RequestOutput>): RequestOutput {
  return { success: true, error: '', startTime: 0, ttft: 0, latency: 0, itl: [], usageOutputTokens: null, usagePromptTokens: null, textChunks: 0, generatedText: '', ...o };
}
const input = (promptLen: number, exact = true): SampleRequest => ({ prompt: 'x', promptLen, promptLenExact: exact, expectedOutputLen: 10 });

// Three requests: two complete (5 tokens from usage; 1 token counted from chunks) and one failed.
const inputs = [input(100), input(50, false), input(70)];
const outputs = [
  output({ startTime: 10, ttft: 0.1, latency: 0.5, itl: [0.1, 0.1, 0.1, 0.1], usageOutputTokens: 5, textChunks: 5, generatedText: 'abcde' }),
  output({ startTime: 10.2, ttft: 0.3, latency: 0.3, itl: [], usageOutputTokens: null, usagePromptTokens: 47, textChunks: 1, generatedText: 'a' }),
  output({ success: false, error: 'HTTP 500: boom', startTime: 10.3, latency: 0.01 }),
];

describe('serving metrics', () => {
  const metrics = calculateMetrics(inputs, outputs, 2, { percentiles: [50, 99], goodput: { ttft: 200, tpot: 150 } });

  it('counts completed and failed, tokens and throughputs', () => {
    expect(metrics.completed).toBe(2);
    expect(metrics.failed).toBe(1);
    // The dataset's length when exact; the server's usage when the dataset's was an estimate.
    expect(metrics.totalInput).toBe(147);
    expect(metrics.inputLens).toEqual([100, 47, 70]);
    expect(metrics.outputLens).toEqual([5, 1, 0]);
    expect(metrics.totalOutput).toBe(6);
    expect(metrics.requestThroughput).toBe(1);
    expect(metrics.outputThroughput).toBe(3);
    expect(metrics.totalTokenThroughput).toBe(76.5);
  });

  it('TTFT, TPOT = (e2e - ttft) / (tokens - 1) per request with > 1 token, ITL = every gap, E2EL', () => {
    expect(metrics.summaries.ttft.mean).toBeCloseTo(200, 9);
    expect(metrics.summaries.tpot.mean).toBeCloseTo(100, 9); // (0.5 - 0.1) / 4; the one-token request has none
    expect(metrics.summaries.tpot.percentiles).toEqual([[50, expect.closeTo(100, 9)], [99, expect.closeTo(100, 9)]]);
    expect(metrics.summaries.itl.mean).toBeCloseTo(100, 9);
    expect(metrics.summaries.e2el.median).toBeCloseTo(400, 9);
  });

  it('goodput: requests meeting every SLO per second (TPOT 0 for one-token requests)', () => {
    // ttft ≤ 200 ms: the first (100) passes, the second (300) fails.
    expect(metrics.requestGoodput).toBe(0.5);
    expect(calculateMetrics(inputs, outputs, 2, { percentiles: [], goodput: { e2el: 1000 } }).requestGoodput).toBe(1);
  });

  it('counts output tokens with the tokenizer when the server sends no usage', () => {
    const m = calculateMetrics(inputs, outputs, 2, { percentiles: [], goodput: null, countTokens: (text) => text.length * 2 });
    expect(m.outputLens).toEqual([5, 2, 0]);
  });

  it('peak output throughput and concurrency in one-second buckets', () => {
    const peak = peakRates([output({ startTime: 0, ttft: 0.5, latency: 2.5, itl: [0.2, 0.2, 0.2, 1] }), output({ startTime: 0.9, ttft: 0.05, latency: 0.2 })]);
    expect(peak).toEqual({ maxOutputTokensPerS: 4, maxConcurrentRequests: 2 });
    expect(peakRates([output({ success: false })])).toEqual({ maxOutputTokensPerS: 0, maxConcurrentRequests: 0 });
  });
});

const run: RunDescription = {
  date: new Date(2025, 0, 2, 3, 4, 5),
  backend: 'openai',
  label: null,
  modelId: 'm',
  tokenizerId: 'tok',
  numPrompts: 3,
  metadata: { run: 'c1' },
  requestRate: Infinity,
  burstiness: 1,
  maxConcurrency: 8,
  durationS: 2,
  percentileMetrics: ['ttft', 'tpot', 'itl', 'e2el'],
  goodput: { ttft: 200 },
  perRequest: true,
  saveDetailed: false,
  extra: { dataset_name: 'random' },
};

describe('result JSON and table', () => {
  const metrics = calculateMetrics(inputs, outputs, 2, { percentiles: [90, 99, 99.9], goodput: { ttft: 200 } });

  it('has the keys vllm bench serve writes, in its order, then ours', () => {
    const json = resultJson(run, metrics, outputs);
    const keys = Object.keys(json);
    const vllm = [
      'date', 'endpoint_type', 'backend', 'label', 'model_id', 'tokenizer_id', 'num_prompts', 'run', 'request_rate', 'burstiness', 'max_concurrency',
      'duration', 'completed', 'failed', 'total_input_tokens', 'total_output_tokens', 'request_throughput', 'request_goodput', 'output_throughput',
      'total_token_throughput', 'input_lens', 'output_lens', 'ttfts', 'itls', 'errors', 'max_output_tokens_per_s', 'max_concurrent_requests',
    ];
    for (const m of ['ttft', 'tpot', 'itl', 'e2el']) vllm.push(`mean_${m}_ms`, `median_${m}_ms`, `std_${m}_ms`, `p90_${m}_ms`, `p99_${m}_ms`, `p99.9_${m}_ms`);
    expect(keys).toEqual([...vllm, 'dataset_name']);
    expect(json['date']).toBe('20250102-030405');
    expect(formatDate(run.date)).toBe('20250102-030405');
    expect(json['request_rate']).toBe('inf');
    expect(json['errors']).toEqual(['', '', 'HTTP 500: boom']);
    expect(json['ttfts']).toEqual([0.1, 0.3, 0]);
    expect(json['itls']).toEqual([[0.1, 0.1, 0.1, 0.1], [], []]);
    expect(json['request_goodput']).toBe(0.5);
    expect(json['median_ttft_ms']).toBeCloseTo(200, 9);
    expect(resultJson({ ...run, goodput: null, saveDetailed: true }, metrics, outputs)).toMatchObject({ request_goodput: null, generated_texts: ['abcde', 'a', ''] });
    expect(Object.keys(resultJson({ ...run, perRequest: false }, metrics, outputs))).not.toContain('itls');
  });

  it('prints the table in vLLM\'s layout', () => {
    const lines = formatTable(run, metrics).split('\n');
    expect(lines[0]).toBe('============ Serving Benchmark Result ============');
    expect(lines[1]).toBe('Successful requests:                     2         ');
    expect(lines).toContain('Maximum request concurrency:             8         ');
    expect(lines.some((l) => l.startsWith('Request rate configured'))).toBe(false); // inf: not printed
    expect(lines).toContain('Request goodput (req/s):                 0.50      ');
    expect(lines).toContain('Output token throughput (tok/s):         3.00      ');
    expect(lines).toContain('-----Time per Output Token (excl. 1st token)------');
    expect(lines).toContain('---------------Time to First Token----------------');
    expect(lines).toContain('P99.9 TTFT (ms):                         299.80    ');
    expect(lines).toContain('----------------End-to-end Latency----------------');
    expect(lines[lines.length - 1]).toBe('='.repeat(50));
    for (const line of lines) expect(line.length).toBe(line.includes(':') ? 51 : 50);
    const rated = formatTable({ ...run, requestRate: 16, maxConcurrency: null, goodput: null }, metrics);
    expect(rated).toContain('Request rate configured (RPS):           16.00     ');
    expect(rated).not.toContain('Maximum request concurrency');
    expect(rated).not.toContain('goodput');
  });
});
