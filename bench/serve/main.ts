/**
 * `updraft bench serve`: builds the dataset, checks the server answers, sends the requests on the
 * arrival schedule (at most --max-concurrency in flight), and reports as `vllm bench serve` does.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { TextTokenizer } from '../../src/tokenizer/index.ts';
import { arrivalTimes } from './arrivals.ts';
import { BenchArgsError, benchServeHelp, parseBenchServeArgs, type BenchServeOptions } from './args.ts';
import { BenchClient, type RequestOutput } from './client.ts';
import { sampleRequests, type SampleRequest } from './datasets.ts';
import { calculateMetrics, formatTable, resultJson, formatDate, type BenchmarkMetrics, type RunDescription } from './metrics.ts';
import { ProgressBar, type ProgressStream } from './progress.ts';
import { Rng } from './random.ts';

export interface BenchIo {
  /** Report lines (stdout). */
  out(line: string): void;
  /** The progress bar's stream (stderr). */
  progress: ProgressStream;
}

const defaultIo: BenchIo = { out: (line) => console.log(line), progress: process.stderr };

export interface BenchServeResult {
  result: Record<string, unknown>;
  metrics: BenchmarkMetrics;
  outputs: RequestOutput[];
  /** Where the JSON was written, when it was. */
  resultPath: string | null;
}

/** Python's str() of a float: 16 → "16.0", inf → "inf". */
function pyFloat(value: number): string {
  if (value === Infinity) return 'inf';
  return Number.isInteger(value) ? value.toFixed(1) : String(value);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Counting semaphore whose waiters give up when the signal aborts. */
class Semaphore {
  #free: number;
  readonly #waiters: ((granted: boolean) => void)[] = [];
  constructor(count: number, signal: AbortSignal) {
    this.#free = count;
    signal.addEventListener('abort', () => {
      for (const wake of this.#waiters.splice(0)) wake(false);
    });
  }
  acquire(): Promise<boolean> {
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
  release(): void {
    const next = this.#waiters.shift();
    if (next) next(true);
    else this.#free++;
  }
}

/** A failure worth retrying while the server starts: no connection yet, or 503. */
function notReadyYet(output: RequestOutput): boolean {
  return /^request failed|^HTTP 503/.test(output.error);
}

async function modelFromServer(client: BenchClient, timeoutSec: number): Promise<string> {
  const deadline = performance.now() + timeoutSec * 1000;
  for (;;) {
    try {
      const body = (await client.getJson('/v1/models')) as { data?: { id?: unknown }[] };
      const id = body.data?.[0]?.id;
      if (typeof id !== 'string') throw new BenchArgsError('the server lists no model in /v1/models; pass --model');
      return id;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (!(code === 'ECONNREFUSED' || code === 'ECONNRESET') || performance.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

export async function benchServe(options: BenchServeOptions, io: BenchIo = defaultIo): Promise<BenchServeResult> {
  const url = new URL(options.baseUrl + options.endpoint);
  const headers: Record<string, string> = { ...options.headers };
  if (options.apiKey) headers['authorization'] = `Bearer ${options.apiKey}`;
  const extraBody = { temperature: options.temperature, ...options.extraBody };
  // The model name: given, or the server's first (asked with a client that has no model yet).
  let modelId = options.model;
  if (modelId === null) {
    const probe = new BenchClient({ url, backend: options.backend, model: '', ignoreEos: false, extraBody: {}, headers });
    try {
      modelId = await modelFromServer(probe, options.readyCheckTimeoutSec);
    } finally {
      probe.close();
    }
  }
  const client = new BenchClient({ url, backend: options.backend, model: options.servedModelName ?? modelId, ignoreEos: options.ignoreEos, extraBody, headers });
  try {
    const tokenizer = options.tokenizer === null ? null : await TextTokenizer.fromDirectory(options.tokenizer);
    const built = performance.now();
    const requests = sampleRequests({ ...options, name: options.datasetName, tokenizer });
    const inexact = requests.filter((r) => !r.promptLenExact).length;
    io.out(
      `updraft bench serve: ${options.backend} ${url.href}, model ${modelId}; dataset ${options.datasetName}, ${requests.length} ${options.promptFormat} prompts ` +
        `(${((performance.now() - built) / 1000).toFixed(1)} s to build${inexact > 0 ? `; ${inexact} of approximate length: pass --tokenizer for exact lengths` : ''})`,
    );

    const first = requests[0]!;
    if (options.readyCheckTimeoutSec > 0) {
      io.out('Starting initial single prompt test run...');
      const deadline = performance.now() + options.readyCheckTimeoutSec * 1000;
      const never = new AbortController().signal;
      for (let attempt = 0; ; attempt++) {
        const test = await client.send(first);
        if (test.success) break;
        if (!notReadyYet(test) || performance.now() > deadline) {
          throw new Error(`Initial test run failed - check the benchmark arguments. Error: ${test.error}`);
        }
        if (attempt === 0) io.out(`The server is not ready (${test.error}); retrying for up to ${options.readyCheckTimeoutSec} s...`);
        await sleep(1000, never);
      }
      io.out('Initial test run completed.');
    }
    if (options.numWarmups > 0) {
      io.out(`Warming up with ${options.numWarmups} requests...`);
      const limit = options.maxConcurrency ?? options.numWarmups;
      for (let done = 0; done < options.numWarmups; done += limit) {
        await Promise.all(Array.from({ length: Math.min(limit, options.numWarmups - done) }, () => client.send(first)));
      }
      io.out('Warmup run completed.');
    }

    io.out('Starting main benchmark run...');
    io.out(`Traffic request rate: ${pyFloat(options.requestRate)}`);
    io.out(`Burstiness factor: ${pyFloat(options.burstiness)} (${options.burstiness === 1 ? 'Poisson process' : 'Gamma distribution'})`);
    io.out(`Maximum request concurrency: ${options.maxConcurrency ?? 'None'}`);

    const arrivals = arrivalTimes(requests.length, options.requestRate, options.burstiness, new Rng(options.seed).fork(3));
    const stop = new AbortController();
    let timeLimitReached = false;
    const timer =
      options.timeLimit > 0
        ? setTimeout(() => {
            timeLimitReached = true;
            stop.abort(new Error(`--time-limit of ${options.timeLimit} s reached`));
          }, options.timeLimit * 1000)
        : null;
    const semaphore = new Semaphore(options.maxConcurrency ?? Number.MAX_SAFE_INTEGER, stop.signal);
    const progress = new ProgressBar(requests.length, { stream: io.progress, enabled: options.progress });
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();

    const runOne = async (request: SampleRequest): Promise<RequestOutput | null> => {
      if (!(await semaphore.acquire())) return null; // never sent: the time limit came first
      try {
        const output = await client.send(request, stop.signal);
        progress.tick(!output.success);
        return output;
      } finally {
        semaphore.release();
      }
    };
    const signalServer = () => {
      if (options.lagReportPid === null) return;
      try {
        process.kill(options.lagReportPid, 'SIGUSR2');
      } catch (error) {
        io.out(`could not signal --lag-report-pid ${options.lagReportPid}: ${(error as Error).message}`);
      }
    };
    signalServer();
    const start = performance.now();
    const tasks: Promise<RequestOutput | null>[] = [];
    for (let i = 0; i < requests.length; i++) {
      const wait = start + arrivals[i]! * 1000 - performance.now();
      if (wait > 0) await sleep(wait, stop.signal);
      if (stop.signal.aborted) break;
      tasks.push(runOne(requests[i]!));
    }
    const settled = await Promise.all(tasks);
    const durationS = (performance.now() - start) / 1000;
    signalServer();
    if (timer) clearTimeout(timer);
    loopDelay.disable();
    progress.close();

    const sentInputs: SampleRequest[] = [];
    const outputs: RequestOutput[] = [];
    settled.forEach((output, i) => {
      if (output === null) return;
      sentInputs.push(requests[i]!);
      outputs.push(output);
    });
    const notSent = requests.length - outputs.length;
    if (timeLimitReached) {
      const aborted = outputs.filter((o) => o.error.startsWith('aborted')).length;
      io.out(`Time limit of ${options.timeLimit} s reached: ${notSent} requests not sent, ${aborted} aborted in flight (counted as failed).`);
    }
    const failed = outputs.filter((o) => !o.success);
    if (failed.length > 0) io.out(`===== failed outputs[0] = ${failed[0]!.error} =====`);

    const countTokens = tokenizer ? (text: string) => tokenizer.encode(text, { addSpecialTokens: false }).length : null;
    const metrics = calculateMetrics(sentInputs, outputs, durationS, { percentiles: options.percentiles, goodput: options.goodput, countTokens });
    const lagMs = (ns: number) => Math.max(0, ns / 1e6 - 10);
    const run: RunDescription = {
      date: new Date(),
      backend: options.backend,
      label: options.label,
      modelId,
      tokenizerId: options.tokenizer ?? modelId,
      numPrompts: options.numPrompts,
      metadata: options.metadata,
      requestRate: options.requestRate,
      burstiness: options.burstiness,
      maxConcurrency: options.maxConcurrency,
      durationS,
      percentileMetrics: options.percentileMetrics,
      goodput: options.goodput,
      perRequest: true,
      saveDetailed: options.saveDetailed,
      extra: {
        dataset_name: options.datasetName,
        prompt_format: options.promptFormat,
        ignore_eos: options.ignoreEos,
        ...(options.goodput ? { goodput_slos_ms: options.goodput } : {}),
        time_limit_s: options.timeLimit > 0 ? options.timeLimit : null,
        time_limit_reached: timeLimitReached,
        not_sent: notSent,
        // The client's own event-loop delay: when it is large, the client (not the server) limited the timings.
        client_event_loop_delay_ms: { mean: lagMs(loopDelay.mean), p99: lagMs(loopDelay.percentile(99)), max: lagMs(loopDelay.max) },
      },
    };
    io.out(formatTable(run, metrics));
    const result = resultJson(run, metrics, outputs);

    let resultPath: string | null = null;
    if (options.saveResult) {
      const label = options.label ?? options.backend;
      const concurrency = options.maxConcurrency !== null ? `-concurrency${options.maxConcurrency}` : '';
      let name = options.resultFilename ?? `${label}-${pyFloat(options.requestRate)}qps${concurrency}-${basename(modelId)}-${formatDate(run.date)}.json`;
      if (options.resultDir !== null) {
        mkdirSync(options.resultDir, { recursive: true });
        name = join(options.resultDir, name);
      }
      writeFileSync(name, JSON.stringify(result));
      resultPath = name;
    }
    return { result, metrics, outputs, resultPath };
  } finally {
    client.close();
  }
}

/** The `updraft bench serve ARGS` command; returns the exit code. */
export async function benchServeMain(argv: string[]): Promise<number> {
  let options: BenchServeOptions;
  try {
    const parsed = parseBenchServeArgs(argv);
    if (parsed.help) {
      console.log(benchServeHelp());
      return 0;
    }
    options = parsed.options;
  } catch (error) {
    if (error instanceof BenchArgsError || error instanceof RangeError) {
      console.error(`updraft bench serve: ${error.message}\n(see updraft bench serve --help)`);
      return 2;
    }
    throw error;
  }
  try {
    const { metrics } = await benchServe(options);
    return metrics.completed > 0 ? 0 : 1;
  } catch (error) {
    console.error(`updraft bench serve: ${(error as Error).message}`);
    return 1;
  }
}

export const BENCH_USAGE = `Usage: updraft bench <benchmark> [options]

Benchmarks:
  serve    Drive an OpenAI-compatible server over HTTP/SSE and report vLLM-style serving metrics
           (updraft bench serve --help for its options)`;

/** `updraft bench ...`. */
export async function benchMain(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'serve') return benchServeMain(rest);
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    console.log(BENCH_USAGE);
    return sub === undefined ? 1 : 0;
  }
  console.error(`updraft bench: unknown benchmark "${sub}"\n\n${BENCH_USAGE}`);
  return 2;
}
