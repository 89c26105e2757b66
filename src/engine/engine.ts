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
import type { GenerateOutput, RequestTiming } from './inference-service.ts';
import { OutputStream } from './output-stream.ts';
import { RequestOutputState } from './output-processor.ts';
import { Request, RequestStatus } from './request.ts';
import type { NewRequest } from './request.ts';
import type { Scheduler } from './scheduler.ts';
import type { RequestUpdate, SchedulerOutput } from './scheduler-output.ts';
import type { SampledToken, StepRunner } from '../model/runner.ts';
import type { TokenDecoder } from '../tokenizer/index.ts';

export interface EngineOptions {
  /** Run the scheduler/KV integrity check after every step (tests, debug). */
  checkIntegrity?: boolean;
  /** Called with errors of failed steps (logging). */
  onStepError?: (error: Error) => void;
  /** Called when the loop itself failed and restarted (logging); see #recover. */
  onLoopError?: (error: Error) => void;
}

interface InFlightStep {
  out: SchedulerOutput;
  result: Promise<(SampledToken | null)[]>;
  launchedAt: number;
}

/** One step's outputs, turned into text a slice at a time (#emitOutputs). */
interface PendingOutputs {
  updates: RequestUpdate[];
  sampledByRequest: Map<string, SampledToken | null>;
  /** Index of the next update to process. */
  next: number;
}

/**
 * A slice of output processing ends after this many requests or this much time, whichever comes first,
 * and the rest waits for a setImmediate: the work each output triggers downstream (SSE chunks built and
 * written by the handler, as microtasks right after the slice) is not in the clock, hence the count.
 */
export const OUTPUT_SLICE_REQUESTS = 32;
export const OUTPUT_SLICE_MS = 1;

interface Tracked {
  state: RequestOutputState;
  stream: OutputStream;
  /** performance.now() when added, and when first scheduled (queue time for metrics). */
  addedAt: number;
  firstScheduledAt: number | null;
}

export class EngineCore {
  readonly scheduler: Scheduler;
  readonly #runner: StepRunner;
  readonly #decoder: TokenDecoder;
  readonly #options: EngineOptions;
  readonly #tracked = new Map<string, Tracked>();
  #loop: Promise<void> | null = null;
  /** Steps whose outputs are not all processed yet, oldest first (normally at most one). */
  readonly #pendingOutputs: PendingOutputs[] = [];
  #sliceScheduled = false;
  #lastResultAt = 0;
  #stopped = false;
  /** Set when a loop failure could not be recovered from: the engine then refuses new requests. */
  #broken: Error | null = null;
  /** Times the loop failed and was restarted (tests, logs). */
  numLoopFailures = 0;
  /** Steps run so far (stats, tests). */
  numSteps = 0;
  /** Requests preempted (and later recomputed) so far. */
  numPreemptions = 0;
  /** Milliseconds awaiting device steps. */
  deviceTimeMs = 0;
  /** Host milliseconds on the critical path: from a step's result to the next step's launch (update, schedule, prepare). */
  criticalHostTimeMs = 0;
  /** All host milliseconds of the loop, overlapped with a device step or not. */
  hostTimeMs = 0;
  /**
   * Host milliseconds the device sat idle between a step's end and the next step's launch. With async
   * scheduling the next step is usually queued already, and this stays near 0.
   */
  exposedHostTimeMs = 0;

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
    if (this.#broken !== null) throw new Error(`the engine failed and could not recover: ${this.#broken.message}`);
    if (this.#tracked.has(init.requestId)) throw new Error(`request id ${init.requestId} is already in use`);
    const request = new Request(init);
    const stream = new OutputStream();
    if (signal?.aborted) {
      stream.push({ text: '', tokenIds: [], finishReason: 'abort', stopReason: null, usage: { promptTokens: request.numPromptTokens, completionTokens: 0, cachedPromptTokens: 0 } });
      return stream;
    }
    this.scheduler.addRequest(request);
    this.#tracked.set(request.requestId, { state: new RequestOutputState(request, this.#decoder), stream, addedAt: performance.now(), firstScheduledAt: null });
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
    tracked.stream.push({ ...tracked.state.finalOutput(), timing: timingOf(tracked) });
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

  /**
   * The loop. Output processing (detokenization, stop strings, pushing to streams) of step N runs
   * while step N+1 is on the device: the critical path between two steps is only
   * updateFromOutput + schedule + input preparation. A request that a stop string ends in step N's
   * output has already been scheduled into step N+1; that step's token for it is discarded
   * (updateFromOutput skips finished requests), as in vLLM.
   */
  async #run(): Promise<void> {
    const inFlight: InFlightStep[] = [];
    let current: InFlightStep | undefined;
    try {
      await this.#steps(inFlight, (step) => (current = step));
    } catch (error) {
      await this.#recover(current === undefined ? inFlight : [current, ...inFlight], error as Error);
    }
  }

  async #steps(inFlight: InFlightStep[], setCurrent: (step: InFlightStep | undefined) => void): Promise<void> {
    // The loop starts from idle: the time since the last burst's final result was no work, not host
    // overhead, so it must not count as the device waiting on the host.
    this.#lastResultAt = 0;
    for (;;) {
      setCurrent(undefined);
      const launchStart = performance.now();
      this.#fill(inFlight);
      this.hostTimeMs += performance.now() - launchStart;
      const step = inFlight.shift();
      setCurrent(step);
      if (step === undefined) {
        if (!this.scheduler.hasUnfinishedRequests()) break;
        // Nothing can run (should not happen for accepted requests); let aborts and arrivals change that.
        await new Promise((resolve) => setTimeout(resolve, 1));
        continue;
      }
      let sampled: (SampledToken | null)[];
      try {
        sampled = await step.result;
      } catch (error) {
        this.#flushOutputs();
        this.#failStep(step.out, error as Error);
        continue;
      }
      const resultAt = performance.now();
      // The previous step's text, stop strings included, is complete before this step's tokens are applied
      // (normally it was, in slices, while this step ran; what is left is on the critical path).
      this.#flushOutputs();
      // With two steps queued, the second one's device time starts when the first one's ends.
      this.deviceTimeMs += resultAt - Math.max(step.launchedAt, this.#lastResultAt);
      this.#lastResultAt = resultAt;
      this.numSteps++;
      const ids = sampled.map((s) => (s === null ? -1 : s.tokenId));
      const updates = this.scheduler.updateFromOutput(step.out, ids);
      if (this.#options.checkIntegrity) this.scheduler.checkIntegrity();
      // Keep the device busy before turning this step's tokens into text.
      this.#fill(inFlight);
      const outputsStart = performance.now();
      this.criticalHostTimeMs += outputsStart - resultAt;
      this.#emitOutputs(step.out, sampled, updates);
      this.hostTimeMs += performance.now() - resultAt;
    }
    // Every output reaches its stream before the loop ends (idle() and stop() wait for it).
    while (this.#pendingOutputs.length > 0) await new Promise((resolve) => setImmediate(resolve));
    // Idle: every block must be back on the free list (or cached) now.
    if (this.#options.checkIntegrity) this.scheduler.checkIntegrity();
  }

  /**
   * Launches steps until the scheduler's limit of steps in flight is reached (1: one at a time; 2:
   * async scheduling, the next step scheduled and queued while the current one runs) or nothing more
   * can be scheduled.
   */
  #fill(inFlight: InFlightStep[]): void {
    while (inFlight.length < this.scheduler.config.maxStepsInFlight && this.scheduler.hasUnfinishedRequests()) {
      const deviceIdle = inFlight.length === 0;
      const step = this.#launch();
      if (step === null) return;
      if (deviceIdle && this.#lastResultAt > 0) this.exposedHostTimeMs += step.launchedAt - this.#lastResultAt;
      inFlight.push(step);
    }
  }

  /** Schedules the next step and starts it on the device; null when nothing could be scheduled. */
  #launch(): InFlightStep | null {
    const out = this.scheduler.schedule();
    this.numPreemptions += out.preemptedRequestIds.length;
    if (out.scheduled.length === 0) return null;
    const now = performance.now();
    for (const s of out.scheduled) {
      if (!s.isAdmission) continue;
      const tracked = this.#tracked.get(s.requestId);
      if (tracked !== undefined && tracked.firstScheduledAt === null) tracked.firstScheduledAt = now;
    }
    // execute() builds the inputs and issues the native call before its first await.
    const result = this.#runner.execute(out);
    return { out, result, launchedAt: performance.now() };
  }

  /**
   * Text for every request that got tokens in a step; ends requests whose stop string matched. Runs in
   * slices (OUTPUT_SLICE_REQUESTS / OUTPUT_SLICE_MS), yielding to the event loop with setImmediate in
   * between, so that hundreds of streams do not hold it for milliseconds at once. It runs after the
   * next step was launched, and the device does not wait for it: the loop only needs it finished
   * before applying the next step's results (#flushOutputs). Requests keep their token order: steps
   * are processed oldest first, each in scheduling order.
   */
  #emitOutputs(out: SchedulerOutput, sampled: (SampledToken | null)[], updates: RequestUpdate[]): void {
    if (updates.length === 0) return;
    const sampledByRequest = new Map<string, SampledToken | null>();
    out.scheduled.forEach((s, i) => sampledByRequest.set(s.requestId, sampled[i] ?? null));
    this.#pendingOutputs.push({ updates, sampledByRequest, next: 0 });
    this.#processSlice();
  }

  /** Processes one slice of the pending outputs; schedules the next slice when some are left. */
  #processSlice(): void {
    const start = performance.now();
    let processed = 0;
    while (this.#pendingOutputs.length > 0) {
      if (processed >= OUTPUT_SLICE_REQUESTS || (processed % 8 === 0 && processed > 0 && performance.now() - start >= OUTPUT_SLICE_MS)) {
        this.#scheduleSlice();
        break;
      }
      this.#processNextOutput();
      processed++;
    }
  }

  #scheduleSlice(): void {
    if (this.#sliceScheduled) return;
    this.#sliceScheduled = true;
    setImmediate(() => {
      this.#sliceScheduled = false;
      const start = performance.now();
      this.#processSlice();
      this.hostTimeMs += performance.now() - start;
    });
  }

  /** Everything pending, now. */
  #flushOutputs(): void {
    while (this.#pendingOutputs.length > 0) this.#processNextOutput();
  }

  #processNextOutput(): void {
    const pending = this.#pendingOutputs[0]!;
    const update = pending.updates[pending.next++]!;
    if (pending.next >= pending.updates.length) this.#pendingOutputs.shift();
    const requestId = update.request.requestId;
    const tracked = this.#tracked.get(requestId);
    if (tracked === undefined) return;
    const { output, stopString } = tracked.state.onTokens(update.newTokenIds, [pending.sampledByRequest.get(requestId) ?? null]);
    if (stopString !== null) this.scheduler.finishRequest(requestId, RequestStatus.FINISHED_STOPPED, stopString);
    if (output.finishReason !== null) {
      this.#tracked.delete(requestId);
      output.timing = timingOf(tracked);
    }
    tracked.stream.push(output);
  }

  /**
   * The loop itself threw (a bug, or a device result the scheduler refuses). Every request the engine
   * holds fails (its client gets a 500, or an SSE error event mid-stream), the steps in flight are
   * drained, the prefix cache is dropped (its blocks may hold what a faulty step wrote), and the next
   * request starts a fresh loop. If the state cannot be restored, the engine refuses new requests.
   */
  async #recover(steps: InFlightStep[], error: Error): Promise<void> {
    this.numLoopFailures++;
    this.#options.onLoopError?.(error);
    // The requests those outputs belong to fail below.
    this.#pendingOutputs.length = 0;
    try {
      const failure = new Error(`the engine loop failed: ${error.message}`);
      for (const [requestId, tracked] of [...this.#tracked]) {
        this.scheduler.abortRequest(requestId);
        this.#tracked.delete(requestId);
        tracked.stream.fail(failure);
      }
      for (const requestId of [...this.scheduler.kv.requestIds()]) this.scheduler.abortRequest(requestId);
      for (const step of steps) {
        // The device finishes what it was given before its blocks can go to anyone else.
        await step.result.catch(() => null);
        try {
          this.scheduler.updateFromOutput(step.out, []);
        } catch {
          // Already applied (or never entered the scheduler): nothing to drain.
        }
      }
      if (this.scheduler.numStepsInFlight !== 0) throw new Error(`${this.scheduler.numStepsInFlight} step(s) still in flight`);
      this.scheduler.kv.pool.resetPrefixCache();
      this.scheduler.checkIntegrity();
    } catch (recoveryError) {
      this.#broken = recoveryError as Error;
      this.#options.onLoopError?.(recoveryError as Error);
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

function timingOf(tracked: Tracked): RequestTiming {
  return {
    queueTimeMs: tracked.firstScheduledAt === null ? null : tracked.firstScheduledAt - tracked.addedAt,
    numPreemptions: tracked.state.request.numPreemptions,
  };
}
