/**
 * Event-loop lag of the server under load, on the CPU, with no model: the real HTTP server (createApp +
 * startServer), LocalInferenceService, EngineCore, Scheduler and ModelRunner, over a device stand-in
 * that answers each step after --step-ms (a GPU step: the dummy 8B at batch 256 takes ~20 ms on an H200).
 * The clients run in a worker thread and talk HTTP over loopback, so the main thread does only what the
 * server does. perf_hooks.monitorEventLoopDelay (1 ms resolution) measures the main thread's lag.
 *
 * Two cases:
 *  - streams: --streams concurrent streaming completions (short prompt, --tokens tokens each, EOS ignored):
 *    the per-step output processing (detokenization, stop strings, SSE chunks) for every stream.
 *  - burst: --burst NxL: N completions with L-token prompts posted at once (max_tokens 1): tokenization.
 *
 *   node bench/loop-lag.ts [--streams 256] [--tokens 200] [--step-ms 20] [--burst 256x512,1000x1024]
 *                          [--tokenizer-workers N] [--tokenizer DIR]
 *
 * Each run also prints the main thread's busy time (event-loop utilization) and its CPU time (Linux
 * schedstat; per streamed token for the streams case), the steadier figure on a shared machine. Under
 * `node --cpu-prof` it prints the run's window on the profile's clock, to summarise that run alone.
 *
 * Results: bench/NOTES.md, "Event-loop lag".
 */
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { createApp } from '../src/api/app.ts';
import { startServer } from '../src/api/server.ts';
import { EngineCore, OUTPUT_SLICE_MS, OUTPUT_SLICE_REQUESTS } from '../src/engine/engine.ts';
import { LocalInferenceService } from '../src/engine/local-service.ts';
import { Scheduler } from '../src/engine/scheduler.ts';
import { KVCacheManager } from '../src/kv/kv-cache-manager.ts';
import type { Program } from '../src/device/device.ts';
import type { StepRequest, StepResult } from '../src/device/program.ts';
import { ModelRunner } from '../src/model/runner.ts';
import { DIM, OUTPUT } from '../src/model/step-io.ts';
import { tokenizerWorkerCount } from '../src/runtime.ts';
import { EncodePool, TextTokenizer } from '../src/tokenizer/index.ts';

const WORDS = 'the quick brown fox jumps over lazy dog while seven wizards quietly hex ninety jovial boxers and some more words here'.split(' ');

interface ClientJob {
  url: string;
  kind: 'streams' | 'burst';
  count: number;
  promptWords: number;
  maxTokens: number;
}

interface ClientResult {
  /** Milliseconds from posting to the first byte of each response body / first SSE event. */
  firstMs: number[];
  totalMs: number;
  errors: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      streams: { type: 'string', default: '256' },
      tokens: { type: 'string', default: '200' },
      'step-ms': { type: 'string', default: '20' },
      burst: { type: 'string', default: '256x512,1000x1024' },
      'tokenizer-workers': { type: 'string' },
      tokenizer: { type: 'string', default: '/work/shared/tokenizers/llama3.2' },
    },
  });
  const stepMs = Number(values['step-ms']);
  const tokenizer = await TextTokenizer.fromDirectory(values.tokenizer);
  const maxNumSeqs = 1024;
  const maxModelLen = 2048;
  const blockSize = 16;
  const kv = new KVCacheManager({ numBlocks: 1024 * 80, blockSize, enablePrefixCaching: true });
  const scheduler = new Scheduler({ maxNumSeqs, maxNumBatchedTokens: 8192, maxModelLen, enableChunkedPrefill: true, eosTokenIds: tokenizer.eosTokenIds, maxStepsInFlight: 2 }, kv);
  const limits = { blockSize, maxNumTokens: 8192, maxNumSeqs, maxBlocksPerSeq: maxModelLen / blockSize };
  const runner = new ModelRunner(new TimedProgram(stepMs), limits, { useGraphs: true });
  const engine = new EngineCore(scheduler, runner, tokenizer);
  const card = { id: 'bench', root: values.tokenizer, created: 0, maxModelLen, vocabSize: tokenizer.vocabSize };
  // --tokenizer-workers as the server reads it (default min(4, cores - 1)); 0 = the main thread, as before the pool.
  const workers = tokenizerWorkerCount(values['tokenizer-workers'] === undefined ? null : Number(values['tokenizer-workers']));
  const encodePool = workers === 0 ? null : await EncodePool.start({ source: values.tokenizer, tokenizer, size: workers });
  const service = new LocalInferenceService(card, engine, tokenizer, { maxQueuedRequests: 100_000, encodePool });
  const app = createApp(service, { metrics: false, logger: { error: () => {} } });
  const server = await startServer(app, { port: 0 });

  const h = monitorEventLoopDelay({ resolution: 1 });
  const run = async (job: Omit<ClientJob, 'url'>): Promise<void> => {
    h.reset();
    h.enable();
    const stepsBefore = engine.numSteps;
    const deviceBefore = engine.deviceTimeMs;
    // The main thread's busy time (the clients run on their own thread): what the server's work costs.
    const eluBefore = performance.eventLoopUtilization();
    const cpuBefore = mainThreadCpuMs();
    const startUs = process.hrtime.bigint() / 1000n;
    const result = await new Promise<ClientResult>((resolve, reject) => {
      const worker = new Worker(new URL(import.meta.url), { workerData: { ...job, url: server.url } });
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    h.disable();
    const busyMs = performance.eventLoopUtilization(eluBefore).active;
    const cpuMs = mainThreadCpuMs() - cpuBefore;
    // Under --cpu-prof: the run's span on the profile's clock (both monotonic µs), to summarise this run alone.
    const window = process.execArgv.some((a) => a.startsWith('--cpu-prof')) ? ` | profile window ${startUs}..${process.hrtime.bigint() / 1000n} µs` : '';
    const ms = (ns: number) => (ns / 1e6).toFixed(1);
    const first = [...result.firstMs].sort((a, b) => a - b);
    const pct = (p: number) => (first.length === 0 ? NaN : first[Math.min(first.length - 1, Math.floor((p / 100) * first.length))]!);
    const steps = engine.numSteps - stepsBefore;
    console.log(
      `${job.kind.padEnd(7)} ${String(job.count).padStart(5)} x ${String(job.promptWords).padStart(4)} words, ${job.maxTokens} tokens | ` +
        `loop lag p50 ${ms(h.percentile(50))} p99 ${ms(h.percentile(99))} max ${ms(h.max)} ms | ` +
        `first byte p50 ${pct(50).toFixed(0)} p99 ${pct(99).toFixed(0)} ms | wall ${result.totalMs.toFixed(0)} ms | ` +
        `${steps} steps, ${(((engine.deviceTimeMs - deviceBefore) / Math.max(1, steps))).toFixed(1)} ms/step | ` +
        `main busy ${busyMs.toFixed(0)} ms, cpu ${cpuMs.toFixed(0)} ms${job.kind === 'streams' ? ` (${((cpuMs * 1000) / (job.count * job.maxTokens)).toFixed(1)} µs/token)` : ''} | errors ${result.errors}${window}`,
    );
  };

  // Warm-up: JIT the tokenizer, the routes and the engine.
  await run({ kind: 'streams', count: 16, promptWords: 64, maxTokens: 16 });
  await run({ kind: 'burst', count: 64, promptWords: 400, maxTokens: 1 });
  console.log(`step ${stepMs} ms; tokenizer ${values.tokenizer}; tokenizer workers ${workers}; output slices of ${OUTPUT_SLICE_REQUESTS} requests / ${OUTPUT_SLICE_MS} ms`);
  await run({ kind: 'streams', count: Number(values.streams), promptWords: 20, maxTokens: Number(values.tokens) });
  for (const burst of values.burst.split(',').filter((b) => b !== '')) {
    const [count, tokens] = burst.split('x').map(Number) as [number, number];
    // ~1.07 tokens per word with the llama3 tokenizer on these words.
    await run({ kind: 'burst', count, promptWords: Math.round(tokens / 1.07), maxTokens: 1 });
  }
  await server.close();
  await engine.stop();
  await service.close();
}

/**
 * CPU time of the main thread alone (Linux: the scheduler's run time of this thread, in ns). Busy time
 * (event-loop utilization) also counts time the thread waited for a core, which on a shared 2-core
 * machine is noise; this does not. NaN elsewhere.
 */
function mainThreadCpuMs(): number {
  try {
    return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
  } catch {
    return Number.NaN;
  }
}

/** Answers each step after stepMs, as a device would (the result arrives as a macrotask). */
class TimedProgram implements Program {
  readonly #stepMs: number;
  constructor(stepMs: number) {
    this.#stepMs = stepMs;
  }
  async step(request: StepRequest): Promise<StepResult> {
    await new Promise((resolve) => setTimeout(resolve, this.#stepMs));
    const n = request.dims[DIM.numSeqs]!;
    const ids = new Int32Array(n);
    for (let i = 0; i < n; i++) ids[i] = 300 + ((i * 7 + request.dims[DIM.numTokens]!) % 2000);
    return { [OUTPUT.sampledIds]: ids, [OUTPUT.sampledLogprobs]: new Float32Array(n), [OUTPUT.topIds]: new Int32Array(0), [OUTPUT.topLogprobs]: new Float32Array(0) };
  }
  memoryUsage() {
    return { weight: 0, state: 0, activation: 0, input: 0, output: 0, total: 0 };
  }
  dispose() {}
}

async function client(): Promise<void> {
  const job = workerData as ClientJob;
  const t0 = performance.now();
  const firstMs: number[] = [];
  let errors = 0;
  const one = async (i: number): Promise<void> => {
    const prompt = Array.from({ length: job.promptWords }, (_, j) => WORDS[(i * 7 + j * 13) % WORDS.length]).join(' ');
    const start = performance.now();
    const response = await fetch(`${job.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'bench', prompt, max_tokens: job.maxTokens, ignore_eos: true, stream: job.kind === 'streams', temperature: 0 }),
    });
    if (!response.ok || response.body === null) {
      errors++;
      await response.text().catch(() => '');
      return;
    }
    let first = true;
    for await (const chunk of response.body) {
      void chunk;
      if (first) firstMs.push(performance.now() - start);
      first = false;
    }
  };
  await Promise.all(Array.from({ length: job.count }, (_, i) => one(i).catch(() => void errors++)));
  const result: ClientResult = { firstMs, totalMs: performance.now() - t0, errors };
  parentPort!.postMessage(result);
}


if (isMainThread) await main();
else await client();
