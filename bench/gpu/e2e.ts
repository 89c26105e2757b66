/**
 * End-to-end speed of a dummy-weight model on the GPU: batch-1 decode and long-prompt prefill,
 * through the same runtime `updraft serve` uses (no HTTP), next to the floors the device allows.
 *
 *   node bench/gpu/e2e.ts --model DIR [--ceilings ceilings.json] [--json out.json]
 *
 * Floors: decode step ≥ weight bytes / copy bandwidth; prefill ≥ 2·params·tokens / cuBLAS bf16 rate.
 * Ceilings come from bench/gpu/ceilings.py in the same device run.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { defaultServeConfig } from '../../src/config.ts';
import { defaultSamplingParams } from '../../src/sampling/params.ts';
import { syntheticPrompt as prompt, timeRequest } from './requests.ts';
import { startRuntime } from '../../src/runtime.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    device: { type: 'string', default: 'cuda' },
    ceilings: { type: 'string' },
    json: { type: 'string' },
    'decode-prompt': { type: 'string', default: '128' },
    'decode-tokens': { type: 'string', default: '256' },
    'prefill-tokens': { type: 'string', default: '2048' },
  },
});
if (!values.model) throw new Error('--model DIR (a folder with config.json and a tokenizer) is required');
const ceilings = values.ceilings ? (JSON.parse(readFileSync(values.ceilings, 'utf-8')) as { copy_gbs: number; cublas_bf16_tflops: number }) : null;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const prefillTokens = Number(values['prefill-tokens']);
const config = {
  ...defaultServeConfig(),
  model: values.model,
  device: values.device,
  loadFormat: 'dummy' as const,
  maxModelLen: 4096,
  maxNumSeqs: 1024,
  maxNumBatchedTokens: Math.max(8192, prefillTokens),
};
const loadStart = performance.now();
const runtime = await startRuntime(config, { log: (m) => console.error(m) });
const loadMs = performance.now() - loadStart;
const weightBytes = runtime.model.memory.weight;
const numParams = weightBytes / 2;

// Warm-up: compiles nothing, but fills caches and captures the batch-1 decode graph.
await timeRequest(runtime, prompt(128, 1), 8);

const decodeRuns = [];
for (let r = 0; r < 3; r++) decodeRuns.push(await timeRequest(runtime, prompt(Number(values['decode-prompt']), 10 + r), Number(values['decode-tokens'])));
const decodeMs = median(decodeRuns.flatMap((run) => run.tokenMs));
const prefillRuns = [];
for (let r = 0; r < 5; r++) prefillRuns.push((await timeRequest(runtime, prompt(prefillTokens, 100 + r), 1)).ttftMs);
const prefillMs = median(prefillRuns);

/**
 * Steady decode with `batch` requests running (prompts of `promptLen` tokens): device time and host
 * critical path per step. The 512-token rows are the serving suite's c8 / c32 shape without HTTP, so
 * its TPOT can be split into engine time and the rest.
 */
async function batchedDecode(batch: number, promptLen = 128, maxTokens = 64) {
  const engine = runtime.engine;
  const streams = Array.from({ length: batch }, (_, i) =>
    engine.addRequest({ requestId: `batch-${batch}-${i}`, promptTokenIds: prompt(promptLen, 1000 + i), params: defaultSamplingParams({ temperature: 0, ignoreEos: true, maxTokens }) }),
  );
  let started = 0;
  let mark = { steps: 0, device: 0, critical: 0, exposed: 0, at: 0 };
  // Arrival times of the first request's tokens once all run: the median interval is comparable with
  // the batch-1 headline (a median) where wall / steps is a mean that slow steps pull up.
  const arrivals: number[] = [];
  await Promise.all(
    streams.map(async (stream, index) => {
      let first = true;
      for await (const output of stream) {
        if (index === 0 && mark.at > 0 && output.tokenIds.length > 0) arrivals.push(performance.now());
        if (first && output.tokenIds.length > 0) {
          first = false;
          if (++started === batch) {
            mark = { steps: engine.numSteps, device: engine.deviceTimeMs, critical: engine.criticalHostTimeMs, exposed: engine.exposedHostTimeMs, at: performance.now() };
          }
        }
      }
    }),
  );
  const steps = engine.numSteps - mark.steps;
  const wallMsPerStep = (performance.now() - mark.at) / steps;
  const intervals = arrivals.slice(1).map((t, i) => t - arrivals[i]!);
  return {
    batch,
    promptLen,
    msPerStep: wallMsPerStep,
    medianMsPerStep: intervals.length > 0 ? median(intervals) : null,
    maxMsPerStep: intervals.length > 0 ? Math.max(...intervals) : null,
    outputTokensPerSecond: (batch * 1000) / wallMsPerStep,
    deviceMsPerStep: (engine.deviceTimeMs - mark.device) / steps,
    hostCriticalMsPerStep: (engine.criticalHostTimeMs - mark.critical) / steps,
    hostExposedMsPerStep: (engine.exposedHostTimeMs - mark.exposed) / steps,
  };
}
const batched = [];
// The serving suite's c1/c8/c32 shape: 512-token prompts, 256 tokens out.
for (const batch of [1, 8, 32]) batched.push(await batchedDecode(batch, 512, 256));
for (const batch of [64, 256, 1024]) batched.push(await batchedDecode(batch));
await runtime.close();

const decodeFloorMs = ceilings ? (weightBytes / (ceilings.copy_gbs * 1e9)) * 1000 : null;
const prefillCeilingTokS = ceilings ? (ceilings.cublas_bf16_tflops * 1e12) / (2 * numParams) : null;
const result = {
  model: values.model,
  device: runtime.model.deviceInfo.name,
  weightGB: weightBytes / 1e9,
  loadSeconds: loadMs / 1000,
  decode: {
    msPerToken: decodeMs,
    tokensPerSecond: 1000 / decodeMs,
    floorMsPerToken: decodeFloorMs,
    ratioToFloor: decodeFloorMs === null ? null : decodeFloorMs / decodeMs,
  },
  batchedDecode: batched,
  prefill: {
    tokens: prefillTokens,
    ms: prefillMs,
    tokensPerSecond: (prefillTokens / prefillMs) * 1000,
    ceilingTokensPerSecond: prefillCeilingTokS,
    ratioToCeiling: prefillCeilingTokS === null ? null : (prefillTokens / prefillMs) * 1000 / prefillCeilingTokS,
  },
};
const pct = (x: number | null) => (x === null ? 'n/a' : `${(x * 100).toFixed(1)}%`);
console.log(`dummy ${values.model} on ${result.device}: ${result.weightGB.toFixed(2)} GB of weights, loaded in ${result.loadSeconds.toFixed(1)} s`);
console.log(
  `batch-1 decode: ${result.decode.msPerToken.toFixed(3)} ms/token = ${result.decode.tokensPerSecond.toFixed(1)} tok/s; floor ${decodeFloorMs?.toFixed(3) ?? 'n/a'} ms → ${pct(result.decode.ratioToFloor)} of the floor`,
);
console.log(
  `prefill ${prefillTokens} tokens: ${prefillMs.toFixed(1)} ms = ${result.prefill.tokensPerSecond.toFixed(0)} tok/s; ceiling ${prefillCeilingTokS?.toFixed(0) ?? 'n/a'} tok/s → ${pct(result.prefill.ratioToCeiling)}`,
);
for (const b of batched) {
  console.log(
    `decode at batch ${b.batch} (${b.promptLen}-token prompts): ${b.msPerStep.toFixed(2)} ms/step (median ${b.medianMsPerStep?.toFixed(2) ?? 'n/a'}, max ${b.maxMsPerStep?.toFixed(1) ?? 'n/a'}) = ${b.outputTokensPerSecond.toFixed(0)} output tok/s; host work between steps ${b.hostCriticalMsPerStep.toFixed(3)} ms (${((b.hostCriticalMsPerStep / b.msPerStep) * 100).toFixed(1)}% of the step), of which the device waited ${b.hostExposedMsPerStep.toFixed(3)} ms`,
  );
}
if (values.json) writeFileSync(values.json, JSON.stringify(result, null, 2));
