/**
 * Offline benchmark: the engine without HTTP (nano-vllm's bench style). Two modes.
 *
 * Throughput (--num-prompts N), nano-vllm's bench.py: N requests of random token ids with input lengths
 * uniform in [--min-input-len, --max-input-len] and output lengths in [--min-output-len, --max-output-len]
 * (seeded), all submitted at once, greedy, EOS ignored; prints output tokens/s over the whole run.
 *
 *   node bench/offline.ts --num-prompts 256 [--max-input-len 1024] [--max-output-len 1024] [--min-input-len 100]
 *        [--min-output-len 100] [--seed 0] [--max-num-seqs 256] [--max-num-batched-tokens 8192]
 *        [--model DIR] [--device cpu] [--load-format dummy] [--kv-cache-dtype auto|fp8] [--threads N] [--json FILE]
 *
 * Per-batch decode (the default, without --num-prompts): for each batch size, B requests with random
 * prompts (fixed seed) decode --output-len tokens each, greedy, EOS ignored. Prints decode tokens/s and,
 * as ceilings measured in the same run, the step time the device's memory bandwidth (weights read once
 * per step) and its matmul FLOP rate would allow.
 *
 *   node bench/offline.ts [--model DIR] [--batch 1,16] [--prompt-len 32] [--output-len 128] [--device cpu]
 *        [--kv-cache-dtype auto|fp8] [--threads N] [--json FILE]
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultServeConfig, KV_CACHE_DTYPE_CHOICES } from '../src/config.ts';
import type { KvCacheDtypeOption, ServeConfig } from '../src/config.ts';
import { defaultSamplingParams } from '../src/sampling/params.ts';
import { startRuntime } from '../src/runtime.ts';
import type { Runtime } from '../src/runtime.ts';
import { measureCeilings } from './ceilings.ts';
import { Rng } from './serve/random.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: join(import.meta.dirname, '..', '..', 'shared', 'models', 'stories260K') },
    batch: { type: 'string', default: '1,16' },
    'prompt-len': { type: 'string', default: '32' },
    'output-len': { type: 'string', default: '128' },
    device: { type: 'string', default: 'cpu' },
    threads: { type: 'string', default: '0' },
    json: { type: 'string' },
    'load-format': { type: 'string', default: 'auto' },
    'kv-cache-dtype': { type: 'string', default: 'auto' },
    // Throughput mode (nano-vllm's bench.py defaults).
    'num-prompts': { type: 'string' },
    'min-input-len': { type: 'string', default: '100' },
    'max-input-len': { type: 'string', default: '1024' },
    'min-output-len': { type: 'string', default: '100' },
    'max-output-len': { type: 'string', default: '1024' },
    seed: { type: 'string', default: '0' },
    'max-num-seqs': { type: 'string', default: '256' },
    'max-num-batched-tokens': { type: 'string', default: '8192' },
  },
});
const loadFormat = values['load-format'] === 'dummy' ? 'dummy' : 'auto';
const kvCacheDtype: KvCacheDtypeOption = (() => {
  const choice = KV_CACHE_DTYPE_CHOICES.find((c) => c === values['kv-cache-dtype']);
  if (choice === undefined) throw new Error(`--kv-cache-dtype must be one of ${KV_CACHE_DTYPE_CHOICES.join(', ')}`);
  return choice;
})();
if (values['num-prompts'] !== undefined) {
  await throughputMode(Number(values['num-prompts']));
  process.exit(0);
}
const batches = values.batch.split(',').map(Number);
const promptLen = Number(values['prompt-len']);
const outputLen = Number(values['output-len']);

/** xorshift32: the same prompts on every run. */
function randomPrompt(length: number, vocab: number, seed: number): number[] {
  let x = seed | 1;
  return Array.from({ length }, () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return 3 + ((x >>> 0) % (vocab - 3));
  });
}

interface Result {
  batch: number;
  decodeTokensPerSecond: number;
  msPerStep: number;
  hostMsPerStep: number;
  floorMsPerStep: number;
  ratioToFloor: number;
}

async function runBatch(runtime: Runtime, batch: number): Promise<Result> {
  const vocab = runtime.model.config.vocabSize;
  const engine = runtime.engine;
  const streams = Array.from({ length: batch }, (_, i) =>
    engine.addRequest({
      requestId: `bench-${batch}-${i}-${Date.now()}`,
      promptTokenIds: randomPrompt(promptLen, vocab, 1000 + i),
      params: defaultSamplingParams({ temperature: 0, ignoreEos: true, maxTokens: outputLen }),
    }),
  );
  // Decode time: from the moment every request has its first token to the end.
  let firstTokens = 0;
  let decodeStart = 0;
  let stepsAtDecodeStart = { steps: 0, host: 0 };
  // host = the critical path between steps (output processing overlaps the next step).
  await Promise.all(
    streams.map(async (stream) => {
      let first = true;
      for await (const output of stream) {
        if (first && output.tokenIds.length > 0) {
          first = false;
          if (++firstTokens === batch) {
            decodeStart = performance.now();
            stepsAtDecodeStart = { steps: engine.numSteps, host: engine.criticalHostTimeMs };
          }
        }
      }
    }),
  );
  const elapsedMs = performance.now() - decodeStart;
  const steps = engine.numSteps - stepsAtDecodeStart.steps;
  const msPerStep = elapsedMs / steps;
  return {
    batch,
    decodeTokensPerSecond: (batch * (outputLen - 1)) / (elapsedMs / 1000),
    msPerStep,
    hostMsPerStep: (engine.criticalHostTimeMs - stepsAtDecodeStart.host) / steps,
    floorMsPerStep: 0,
    ratioToFloor: 0,
  };
}

const config: ServeConfig = {
  ...defaultServeConfig(),
  model: values.model,
  device: values.device,
  numThreads: Number(values.threads),
  loadFormat,
  kvCacheDtype,
  maxNumSeqs: Math.max(...batches),
  maxModelLen: Math.min(promptLen + outputLen, 100_000),
};
const runtime = await startRuntime(config);
const weightBytes = runtime.model.memory.weight;
const numParams = weightBytes / (runtime.model.config.checkpointDtype === 'f32' ? 4 : 2);
const ceilings = measureCeilings(values.device, Number(values.threads));
console.log(`model ${values.model}: ${(weightBytes / 1e6).toFixed(2)} MB of weights on ${runtime.model.deviceInfo.name}`);
console.log(`ceilings measured now: memory bandwidth ${ceilings.bandwidthGBs.toFixed(1)} GB/s, matmul ${ceilings.matmulGflops.toFixed(1)} GFLOP/s`);

await runBatch(runtime, 1); // warm-up
const results: Result[] = [];
for (const batch of batches) {
  const r = await runBatch(runtime, batch);
  const bandwidthFloorMs = (weightBytes / (ceilings.bandwidthGBs * 1e9)) * 1000;
  const flopFloorMs = ((2 * numParams * batch) / (ceilings.matmulGflops * 1e9)) * 1000;
  r.floorMsPerStep = Math.max(bandwidthFloorMs, flopFloorMs);
  r.ratioToFloor = r.floorMsPerStep / r.msPerStep;
  results.push(r);
}
await runtime.close();

console.log('\n batch | decode tok/s | ms/step | host ms/step | floor ms/step | floor/actual');
for (const r of results) {
  console.log(
    ` ${String(r.batch).padStart(5)} | ${r.decodeTokensPerSecond.toFixed(1).padStart(12)} | ${r.msPerStep.toFixed(3).padStart(7)} | ${r.hostMsPerStep
      .toFixed(3)
      .padStart(12)} | ${r.floorMsPerStep.toFixed(4).padStart(13)} | ${(r.ratioToFloor * 100).toFixed(1).padStart(11)}%`,
  );
}
if (values.json) writeFileSync(values.json, JSON.stringify({ model: values.model, ceilings, results }, null, 2));

/** nano-vllm's bench.py: N random prompts of random lengths, all at once; output tokens per second. */
async function throughputMode(numPrompts: number): Promise<void> {
  const int = (name: keyof typeof values) => {
    const value = Number(values[name]);
    if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer`);
    return value;
  };
  const [minIn, maxIn, minOut, maxOut] = [int('min-input-len'), int('max-input-len'), int('min-output-len'), int('max-output-len')];
  if (!(numPrompts >= 1) || minIn > maxIn || minOut > maxOut) throw new Error('need --num-prompts >= 1 and min <= max lengths');
  const runtime = await startRuntime({
    ...defaultServeConfig(),
    model: values.model,
    device: values.device,
    numThreads: Number(values.threads),
    loadFormat,
    kvCacheDtype,
    maxNumSeqs: int('max-num-seqs'),
    maxNumBatchedTokens: int('max-num-batched-tokens'),
    maxModelLen: maxIn + maxOut,
  });
  const engine = runtime.engine;
  const rng = new Rng(Number(values.seed));
  const vocab = Math.min(runtime.model.config.vocabSize, 10_000);
  const requests = Array.from({ length: numPrompts }, () => ({ input: rng.int(minIn, maxIn), output: rng.int(minOut, maxOut) })).map((r) => ({
    promptTokenIds: Array.from({ length: r.input }, () => rng.int(0, vocab - 1)),
    maxTokens: r.output,
  }));
  const run = async (batch: typeof requests, tag: string) => {
    const streams = batch.map((r, i) =>
      engine.addRequest({ requestId: `${tag}-${i}`, promptTokenIds: r.promptTokenIds, params: defaultSamplingParams({ temperature: 0, ignoreEos: true, maxTokens: r.maxTokens }) }),
    );
    let outputTokens = 0;
    await Promise.all(
      streams.map(async (stream) => {
        for await (const output of stream) outputTokens += output.tokenIds.length;
      }),
    );
    return outputTokens;
  };
  await run([{ promptTokenIds: [1, 2, 3, 4], maxTokens: 8 }], 'warmup');
  const before = { steps: engine.numSteps, critical: engine.criticalHostTimeMs, exposed: engine.exposedHostTimeMs };
  const start = performance.now();
  const outputTokens = await run(requests, 'bench');
  const seconds = (performance.now() - start) / 1000;
  const steps = engine.numSteps - before.steps;
  const inputTokens = requests.reduce((sum, r) => sum + r.promptTokenIds.length, 0);
  await runtime.close();
  const result = {
    model: values.model,
    device: runtime.model.deviceInfo.name,
    numPrompts,
    inputTokens,
    outputTokens,
    seconds,
    outputTokensPerSecond: outputTokens / seconds,
    totalTokensPerSecond: (inputTokens + outputTokens) / seconds,
    steps,
    hostCriticalMsPerStep: (engine.criticalHostTimeMs - before.critical) / steps,
    deviceIdleMsPerStep: (engine.exposedHostTimeMs - before.exposed) / steps,
  };
  console.log(
    `${numPrompts} prompts (input ${minIn}-${maxIn}, output ${minOut}-${maxOut}, seed ${values.seed}) on ${result.device}: ` +
      `Total: ${outputTokens}tok, Time: ${seconds.toFixed(2)}s, Throughput: ${result.outputTokensPerSecond.toFixed(2)}tok/s ` +
      `(input + output ${result.totalTokensPerSecond.toFixed(0)} tok/s; ${steps} steps, host critical path ${result.hostCriticalMsPerStep.toFixed(3)} ms/step, ` +
      `device idle ${result.deviceIdleMsPerStep.toFixed(3)} ms/step)`,
  );
  if (values.json) writeFileSync(values.json, JSON.stringify(result, null, 2));
}
