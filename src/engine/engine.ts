/**
 * EngineCore: the continuous-batching loop.
 *
 *   schedule() → runner.execute() (one async device call) → updateFromOutput() → outputs to streams
 *
 * Requests join and leave between any two steps. The loop runs while there is work and sleeps
 * otherwise; the device step is awaited, so the event loop keeps serving HTTP and SSE meanwhile.
 * Aborting a request (client gone) frees its KV blocks at once; a step that fails on the device fails
 * only the requests in it, and the loop carries on.
 */
import type { GenerateOutput } from './inference-service.ts';
import { OutputStream } from './output-stream.ts';
import { RequestOutputState } from './output-processor.ts';
import { Request, RequestStatus } from './request.ts';
import type { NewRequest } from './request.ts';
import type { Scheduler } from './scheduler.ts';
import type { SchedulerOutput } from './scheduler-output.ts';
import type { SampledToken, StepRunner } from '../model/runner.ts';
import type { TokenDecoder } from '../tokenizer/index.ts';

export interface EngineOptions {
  /** Run the scheduler/KV integrity check after every step (tests, debug). */
  checkIntegrity?: boolean;
  /** Called with errors of failed steps (logging). */
  onStepError?: (error: Error) => void;
}

interface Tracked {
  state: RequestOutputState;
  stream: OutputStream;
}

export class EngineCore {
  readonly scheduler: Scheduler;
  readonly #runner: StepRunner;
  readonly #decoder: TokenDecoder;
  readonly #options: EngineOptions;
  readonly #tracked = new Map<string, Tracked>();
  #loop: Promise<void> | null = null;
  #stopped = false;
  /** Steps run so far (stats, tests). */
  numSteps = 0;
  /** Requests preempted (and later recomputed) so far. */
  numPreemptions = 0;
  /** Milliseconds spent awaiting device steps, and on the host between them (schedule, prepare, outputs). */
  deviceTimeMs = 0;
  hostTimeMs = 0;

  constructor(scheduler: Scheduler, runner: StepRunner, decoder: TokenDecoder, options: EngineOptions = {}) {
    this.scheduler = scheduler;
    this.#runner = runner;
    this.#decoder = decoder;
    this.#options = options;
  }

  /**
   * Queues a request and returns its output stream. Throws (RangeError) when the scheduler can never
   * run it; the caller validates first to answer with a client error.
   */
  addRequest(init: NewRequest, signal?: AbortSignal): AsyncIterable<GenerateOutput> {
    if (this.#stopped) throw new Error('the engine is stopped');
    if (this.#tracked.has(init.requestId)) throw new Error(`request id ${init.requestId} is already in use`);
    const request = new Request(init);
    const stream = new OutputStream();
    if (signal?.aborted) {
      stream.push({ text: '', tokenIds: [], finishReason: 'abort', stopReason: null, usage: { promptTokens: request.numPromptTokens, completionTokens: 0, cachedPromptTokens: 0 } });
      return stream;
    }
    this.scheduler.addRequest(request);
    this.#tracked.set(request.requestId, { state: new RequestOutputState(request, this.#decoder), stream });
    signal?.addEventListener('abort', () => this.abort(request.requestId), { once: true });
    this.#ensureLoop();
    return stream;
  }

  /** Ends a request now, wherever it is; its blocks are freed before this returns. */
  abort(requestId: string): void {
    const tracked = this.#tracked.get(requestId);
    if (tracked === undefined) return;
    this.scheduler.abortRequest(requestId);
    this.#tracked.delete(requestId);
    tracked.stream.push(tracked.state.finalOutput());
  }

  get numTrackedRequests(): number {
    return this.#tracked.size;
  }

  /** Resolves when no request is left (tests, graceful shutdown). */
  async idle(): Promise<void> {
    while (this.#loop !== null) await this.#loop;
  }

  /** Aborts everything and stops accepting requests. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const requestId of [...this.#tracked.keys()]) this.abort(requestId);
    await this.idle();
  }

  #ensureLoop(): void {
    if (this.#loop !== null) return;
    this.#loop = this.#run().finally(() => {
      this.#loop = null;
      // A request may have arrived between the last check and the loop's end.
      if (this.scheduler.hasUnfinishedRequests() && !this.#stopped) this.#ensureLoop();
    });
  }

  async #run(): Promise<void> {
    while (this.scheduler.hasUnfinishedRequests()) {
      const scheduleStart = performance.now();
      const out = this.scheduler.schedule();
      this.hostTimeMs += performance.now() - scheduleStart;
      this.numPreemptions += out.preemptedRequestIds.length;
      if (out.scheduled.length === 0) {
        // Nothing can run this step (e.g. every waiting request needs blocks held by none): should not
        // happen for accepted requests; yield so aborts and new arrivals can change the situation.
        this.scheduler.updateFromOutput(out, []);
        await new Promise((resolve) => setTimeout(resolve, 1));
        continue;
      }
      let sampled: (SampledToken | null)[];
      const stepStart = performance.now();
      try {
        sampled = await this.#runner.execute(out);
      } catch (error) {
        this.#failStep(out, error as Error);
        continue;
      }
      const stepEnd = performance.now();
      this.numSteps++;
      this.#applyStep(out, sampled);
      if (this.#options.checkIntegrity) this.scheduler.checkIntegrity();
      // runner.execute's own host work (building inputs) counts as device time: it is small and overlappable.
      this.deviceTimeMs += stepEnd - stepStart;
      this.hostTimeMs += performance.now() - stepEnd;
    }
    // Idle: every block must be back on the free list (or cached) now.
    if (this.#options.checkIntegrity) this.scheduler.checkIntegrity();
  }

  #applyStep(out: SchedulerOutput, sampled: (SampledToken | null)[]): void {
    const ids = sampled.map((s) => (s === null ? -1 : s.tokenId));
    const updates = this.scheduler.updateFromOutput(out, ids);
    const byRequest = new Map<string, SampledToken | null>();
    out.scheduled.forEach((s, i) => byRequest.set(s.requestId, sampled[i] ?? null));
    for (const update of updates) {
      const requestId = update.request.requestId;
      const tracked = this.#tracked.get(requestId);
      if (tracked === undefined) continue;
      const { output, stopString } = tracked.state.onTokens(update.newTokenIds, [byRequest.get(requestId) ?? null]);
      if (stopString !== null) this.scheduler.finishRequest(requestId, RequestStatus.FINISHED_STOPPED, stopString);
      if (output.finishReason !== null) this.#tracked.delete(requestId);
      tracked.stream.push(output);
    }
  }

  /** A failed device step: the requests in it end with the error; everyone else carries on. */
  #failStep(out: SchedulerOutput, error: Error): void {
    this.#options.onStepError?.(error);
    for (const s of out.scheduled) {
      // Aborted first, so updateFromOutput below treats the whole step as ended mid-flight.
      this.scheduler.abortRequest(s.requestId);
      const tracked = this.#tracked.get(s.requestId);
      if (tracked === undefined) continue;
      this.#tracked.delete(s.requestId);
      tracked.stream.fail(new Error(`the model step failed: ${error.message}`));
    }
    this.scheduler.updateFromOutput(out, []);
  }
}
