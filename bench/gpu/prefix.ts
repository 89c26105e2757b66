/**
 * Shared-prefix (RAG) benchmark: N requests share a long document prefix and differ in a short
 * question; time to first token with the prefix cache on vs off, same model, same run.
 *
 *   node bench/gpu/prefix.ts --model DIR [--requests 64] [--prefix 4096] [--question 64] [--json out.json]
 *
 * The document is sent once first (as the first user of a RAG service would), then all questions
 * at once. Goal (issue 4): median TTFT with the cache at least 5x lower than without.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { defaultServeConfig } from '../../src/config.ts';
import { defaultSamplingParams } from '../../src/sampling/params.ts';
import { startRuntime } from '../../src/runtime.ts';
import type { Runtime } from '../../src/runtime.ts';
import { syntheticPrompt as tokens } from './requests.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    device: { type: 'string', default: 'cuda' },
    requests: { type: 'string', default: '64' },
    prefix: { type: 'string', default: '4096' },
    question: { type: 'string', default: '64' },
    json: { type: 'string' },
  },
});
if (!values.model) throw new Error('--model DIR is required');
const numRequests = Number(values.requests);
const prefixLen = Number(values.prefix);
const questionLen = Number(values.question);

const document = tokens(prefixLen, 7);

async function ttft(runtime: Runtime, promptTokenIds: number[], id: string): Promise<number> {
  const start = performance.now();
  let first = 0;
  for await (const output of runtime.engine.addRequest({ requestId: id, promptTokenIds, params: defaultSamplingParams({ temperature: 0, maxTokens: 8, ignoreEos: true }) })) {
    if (first === 0 && output.tokenIds.length > 0) first = performance.now() - start;
  }
  return first;
}

const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

async function measure(enablePrefixCaching: boolean) {
  const runtime = await startRuntime({
    ...defaultServeConfig(),
    model: values.model!,
    device: values.device,
    loadFormat: 'dummy',
    maxModelLen: prefixLen + questionLen + 64,
    maxNumSeqs: numRequests,
    maxNumBatchedTokens: 8192,
    enablePrefixCaching,
  });
  await ttft(runtime, [...document, ...tokens(questionLen, 1)], 'warm');
  const times = await Promise.all(Array.from({ length: numRequests }, (_, i) => ttft(runtime, [...document, ...tokens(questionLen, 100 + i)], `q${i}`)));
  const stats = runtime.service.stats();
  await runtime.close();
  return { enablePrefixCaching, medianTtftMs: percentile(times, 0.5), p90TtftMs: percentile(times, 0.9), prefixCacheHits: stats.prefixCacheHits };
}

const on = await measure(true);
const off = await measure(false);
const result = { requests: numRequests, prefixTokens: prefixLen, questionTokens: questionLen, cacheOn: on, cacheOff: off, speedup: off.medianTtftMs / on.medianTtftMs };
console.log(`${numRequests} requests sharing a ${prefixLen}-token prefix (+${questionLen} own tokens):`);
console.log(`  cache on : median TTFT ${on.medianTtftMs.toFixed(1)} ms, p90 ${on.p90TtftMs.toFixed(1)} ms, ${on.prefixCacheHits} cached tokens`);
console.log(`  cache off: median TTFT ${off.medianTtftMs.toFixed(1)} ms, p90 ${off.p90TtftMs.toFixed(1)} ms`);
console.log(`  speedup ${result.speedup.toFixed(1)}x (goal ≥ 5x)`);
if (values.json) writeFileSync(values.json, JSON.stringify(result, null, 2));
