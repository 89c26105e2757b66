/**
 * Host cost of one engine step with many running requests, in microseconds, with a device stand-in
 * that answers at once: the critical path (updateFromOutput + schedule + input preparation, between
 * one step's result and the next step's launch) and all host work (plus detokenization, stop strings
 * and stream pushes, which run while the next step is on the device). Compare with the GPU step time
 * of the 8B model (bench/gpu/e2e.ts): the goal is a critical path ≤ 5% of it. With async scheduling
 * (the default) the next step is already queued on the device while this host work runs, so on a real
 * device it is hidden whenever the step takes longer; bench/gpu/e2e.ts reports what the device waited.
 *
 *   node bench/host-overhead.ts [--running 256,1024] [--steps 200]
 */
import { parseArgs } from 'node:util';
import { EngineCore } from '../src/engine/engine.ts';
import { Scheduler } from '../src/engine/scheduler.ts';
import { KVCacheManager } from '../src/kv/kv-cache-manager.ts';
import type { Program } from '../src/device/device.ts';
import type { StepRequest, StepResult } from '../src/device/program.ts';
import { ModelRunner } from '../src/model/runner.ts';
import { DIM, OUTPUT } from '../src/model/step-io.ts';
import { defaultSamplingParams } from '../src/sampling/params.ts';
import { TextTokenizer } from '../src/tokenizer/index.ts';
import { TOK512_DIR } from '../test/fixtures/tiny-models.ts';

const { values } = parseArgs({ options: { running: { type: 'string', default: '256,1024' }, steps: { type: 'string', default: '200' } } });

/** Returns sampled ids at once (on the next macrotask, as a native completion arrives): what is left of a step is host work. */
class InstantProgram implements Program {
  async step(request: StepRequest): Promise<StepResult> {
    await new Promise((resolve) => setImmediate(resolve));
    const n = request.dims[DIM.numSeqs]!;
    const ids = new Int32Array(n);
    for (let i = 0; i < n; i++) ids[i] = 300 + ((i * 7) % 200);
    return { [OUTPUT.sampledIds]: ids, [OUTPUT.sampledLogprobs]: new Float32Array(n), [OUTPUT.topIds]: new Int32Array(0), [OUTPUT.topLogprobs]: new Float32Array(0) };
  }
  memoryUsage() {
    return { weight: 0, state: 0, activation: 0, input: 0, output: 0, total: 0 };
  }
  dispose() {}
}

const tokenizer = await TextTokenizer.fromDirectory(TOK512_DIR);
const numSteps = Number(values.steps);
console.log('running | critical path µs/step (update + schedule + prepare) | all host µs/step (+ detokenize, stops, streams) | critical µs per request');
for (const numRunning of values.running.split(',').map(Number)) {
  const blockSize = 16;
  const maxModelLen = 4096;
  const kv = new KVCacheManager({ numBlocks: numRunning * 80 + 1, blockSize, enablePrefixCaching: true });
  const scheduler = new Scheduler({ maxNumSeqs: numRunning, maxNumBatchedTokens: Math.max(8192, numRunning), maxModelLen, enableChunkedPrefill: true, eosTokenIds: [2] }, kv);
  const limits = { blockSize, maxNumTokens: Math.max(8192, numRunning), maxNumSeqs: numRunning, maxBlocksPerSeq: maxModelLen / blockSize };
  const runner = new ModelRunner(new InstantProgram(), limits, { useGraphs: true });
  const engine = new EngineCore(scheduler, runner, tokenizer);
  const streams = [];
  for (let i = 0; i < numRunning; i++) {
    const prompt = Array.from({ length: 200 }, (_, j) => 3 + ((i * 31 + j * 17) % 500));
    streams.push(engine.addRequest({ requestId: `r${i}`, promptTokenIds: prompt, params: defaultSamplingParams({ temperature: 0.7, maxTokens: numSteps + 100, ignoreEos: true, stop: ['\n\n'] }) }));
  }
  // Drain outputs as an HTTP handler would.
  for (const stream of streams) void (async () => { for await (const _ of stream) void _; })();
  // Let the prompts prefill, then measure decode steps only.
  while (engine.numSteps < Math.ceil((numRunning * 200) / 8192) + 5) await new Promise((r) => setImmediate(r));
  const hostBefore = engine.hostTimeMs;
  const criticalBefore = engine.criticalHostTimeMs;
  const stepsBefore = engine.numSteps;
  while (engine.numSteps < stepsBefore + numSteps) await new Promise((r) => setImmediate(r));
  const steps = engine.numSteps - stepsBefore;
  const criticalUs = ((engine.criticalHostTimeMs - criticalBefore) / steps) * 1000;
  const hostUs = ((engine.hostTimeMs - hostBefore) / steps) * 1000;
  console.log(
    `${String(numRunning).padStart(7)} | ${criticalUs.toFixed(0).padStart(51)} | ${hostUs.toFixed(0).padStart(50)} | ${(criticalUs / numRunning).toFixed(2).padStart(24)}`,
  );
  await engine.stop();
}
