/**
 * Tensor parallelism on the GPUs of one machine: batch-1 decode latency and batched decode
 * throughput of a dummy-weight model at TP=1 and TP=2 (or --sizes), through the same runtime
 * `updraft serve` uses (no HTTP).
 *
 *   node bench/gpu/tensor-parallel.ts --model DIR [--sizes 1,2] [--json out.json]
 *
 * Needs as many CUDA devices as the largest size and NCCL (libnccl.so.2); refuses to start otherwise.
 * Runs in `bash scripts/device/gpu-run.sh tp` on the device tool's nvidia-h200-x2 (bench/NOTES.md runs 34-37).
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { defaultServeConfig } from '../../src/config.ts';
import { openDevice } from '../../src/device/device.ts';
import { syntheticPrompt as prompt, timeRequest } from './requests.ts';
import { startRuntime } from '../../src/runtime.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    device: { type: 'string', default: 'cuda' },
    sizes: { type: 'string', default: '1,2' },
    json: { type: 'string' },
    'decode-prompt': { type: 'string', default: '128' },
    'decode-tokens': { type: 'string', default: '256' },
    'batch-requests': { type: 'string', default: '64' },
    'batch-tokens': { type: 'string', default: '128' },
  },
});
if (!values.model) throw new Error('--model DIR (a folder with config.json and a tokenizer) is required');
const sizes = values.sizes.split(',').map(Number);
const needed = Math.max(...sizes);

/** How many devices of the backend open here (stops at the first that does not). */
function countDevices(backend: string, upTo: number): { count: number; reason: string } {
  for (let index = 0; index < upTo; index++) {
    try {
      openDevice(backend, { deviceIndex: index }).close();
    } catch (error) {
      return { count: index, reason: error instanceof Error ? error.message : String(error) };
    }
  }
  return { count: upTo, reason: '' };
}
const found = countDevices(values.device, needed);
if (found.count < needed) {
  console.error(
    `tensor-parallel bench: TP=${needed} needs ${needed} ${values.device} devices, this machine has ${found.count} ` +
      `(${found.reason}). Run it on a machine with ${needed} or more GPUs (the device tool's nvidia-h200-x2).`,
  );
  process.exit(2);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Result {
  tensorParallelSize: number;
  loadMs: number;
  weightBytesPerRank: number;
  kvCacheTokens: number;
  decodeMedianMs: number;
  batchRequests: number;
  batchTokensPerSecond: number;
}

const results: Result[] = [];
for (const size of sizes) {
  const loadStart = performance.now();
  const runtime = await startRuntime(
    { ...defaultServeConfig(), model: values.model, device: values.device, loadFormat: 'dummy', tensorParallelSize: size, maxModelLen: 4096, maxNumSeqs: 256, maxNumBatchedTokens: 8192 },
    { log: (m) => console.error(m) },
  );
  const loadMs = performance.now() - loadStart;
  try {
    await timeRequest(runtime, prompt(32, 7), 16); // warm-up: captures the batch-1 decode graph
    const decode = await timeRequest(runtime, prompt(Number(values['decode-prompt']), 1), Number(values['decode-tokens']));
    const batchRequests = Number(values['batch-requests']);
    const batchTokens = Number(values['batch-tokens']);
    const start = performance.now();
    await Promise.all(Array.from({ length: batchRequests }, (_, i) => timeRequest(runtime, prompt(128, 100 + i), batchTokens)));
    const seconds = (performance.now() - start) / 1000;
    const result: Result = {
      tensorParallelSize: size,
      loadMs: Math.round(loadMs),
      weightBytesPerRank: runtime.model.memory.weight,
      kvCacheTokens: (runtime.model.numKvBlocks - 1) * runtime.model.blockSize,
      decodeMedianMs: median(decode.tokenMs),
      batchRequests,
      batchTokensPerSecond: (batchRequests * batchTokens) / seconds,
    };
    results.push(result);
    console.log(
      `TP=${size}: batch-1 decode ${result.decodeMedianMs.toFixed(2)} ms/token, ${batchRequests} requests ` +
        `${result.batchTokensPerSecond.toFixed(0)} tokens/s, ${(result.weightBytesPerRank / 2 ** 30).toFixed(2)} GiB of weights per GPU`,
    );
  } finally {
    await runtime.close();
  }
}
if (values.json) writeFileSync(values.json, JSON.stringify({ model: values.model, results }, null, 1));
