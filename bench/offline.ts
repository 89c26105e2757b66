/**
 * Offline decode benchmark: the engine without HTTP (nano-vllm's bench style).
 *
 *   node bench/offline.ts [--model DIR] [--batch 1,16] [--prompt-len 32] [--output-len 128] [--device cpu] [--threads N] [--json FILE]
 *
 * For each batch size, B requests with random prompts (fixed seed) decode --output-len tokens each,
 * greedy, EOS ignored. Prints decode tokens/s and, as ceilings measured in the same run, the step time
 * the device's memory bandwidth (weights read once per step) and its matmul FLOP rate would allow.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultServeConfig } from '../src/config.ts';
import { defaultSamplingParams } from '../src/sampling/params.ts';
import { startRuntime } from '../src/runtime.ts';
import type { Runtime } from '../src/runtime.ts';
import { measureCeilings } from './ceilings.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: join(import.meta.dirname, '..', '..', 'shared', 'models', 'stories260K') },
    batch: { type: 'string', default: '1,16' },
    'prompt-len': { type: 'string', default: '32' },
    'output-len': { type: 'string', default: '128' },
    device: { type: 'string', default: 'cpu' },
    threads: { type: 'string', default: '0' },
    json: { type: 'string' },
  },
});
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

const config = {
  ...defaultServeConfig(),
  model: values.model,
  device: values.device,
  numThreads: Number(values.threads),
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
