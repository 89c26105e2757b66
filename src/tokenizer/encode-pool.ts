/**
 * Prompt tokenization off the main thread: a few worker_threads, each holding its own copy of the
 * tokenizer (loaded once from the same files as the main thread's), encode prompts while the event loop
 * keeps streaming tokens. A 512-token prompt costs ~1.8 ms of main-thread time with the Llama 3
 * tokenizer; a burst of a thousand of them would otherwise stall every stream for seconds.
 *
 * Texts shorter than `inlineBelowChars` are encoded on the main thread, where that is cheaper than the
 * round trip to a worker (bench/NOTES.md, "Event-loop lag": posting costs about what encoding ~250
 * characters does). Results are the ids TextTokenizer.encode gives, since the workers run exactly it.
 *
 * Jobs wait in one FIFO queue and go to whichever worker is free, one at a time per worker, so a job
 * whose client went away before it started is dropped without ever being encoded (its AbortSignal), and
 * one aborted while encoding is rejected when the worker answers. close() ends the workers; encode()
 * then falls back to the main thread.
 */
import { Worker } from 'node:worker_threads';
import type { EncodeOptions, TextTokenizer } from './tokenizer.ts';
import type { TokenizerFiles } from './tokenizer-files.ts';

/** What a worker is started with: the model folder to read the tokenizer files from, or the files. */
export interface EncodeWorkerData {
  source: string | TokenizerFiles;
}

export interface WorkerRequest {
  id: number;
  text: string;
  addSpecialTokens: boolean;
}

export type WorkerReply = { id: number; ids: Int32Array } | { id: number; error: string };

export interface EncodePoolOptions {
  /** The folder TextTokenizer.fromDirectory loaded `tokenizer` from, or the files it was built from. */
  source: string | TokenizerFiles;
  /** The main thread's tokenizer: short texts, and everything when no worker is left. */
  tokenizer: TextTokenizer;
  /** Worker threads; 0 = every text is encoded on the main thread. */
  size: number;
  /** Texts shorter than this (UTF-16 code units) are encoded on the main thread; default DEFAULT_INLINE_BELOW_CHARS. */
  inlineBelowChars?: number;
}

export interface PoolEncodeOptions extends EncodeOptions {
  /** Aborting drops the job if it has not started and rejects the promise with the signal's reason. */
  signal?: AbortSignal;
}

/** Below this many characters the main thread encodes (measured: bench/NOTES.md "Event-loop lag"). */
export const DEFAULT_INLINE_BELOW_CHARS = 256;

interface Job {
  request: WorkerRequest;
  resolve: (ids: number[]) => void;
  reject: (error: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | null;
  /** True once posted to a worker. */
  started: boolean;
}

interface PoolWorker {
  worker: Worker;
  job: Job | null;
}

export class EncodePool {
  readonly #tokenizer: TextTokenizer;
  readonly #inlineBelowChars: number;
  #workers: PoolWorker[] = [];
  readonly #queue: Job[] = [];
  #nextId = 0;
  #closed = false;

  /** Starts `size` workers and resolves once each has loaded the tokenizer (rejects if one cannot). */
  static async start(options: EncodePoolOptions): Promise<EncodePool> {
    const pool = new EncodePool(options.tokenizer, options.inlineBelowChars ?? DEFAULT_INLINE_BELOW_CHARS);
    try {
      await Promise.all(Array.from({ length: Math.max(0, options.size) }, () => pool.#startWorker(options.source)));
    } catch (error) {
      await pool.close();
      throw error;
    }
    return pool;
  }

  private constructor(tokenizer: TextTokenizer, inlineBelowChars: number) {
    this.#tokenizer = tokenizer;
    this.#inlineBelowChars = inlineBelowChars;
  }

  /** Workers running (0 after close, or when every one has died). */
  get size(): number {
    return this.#workers.length;
  }

  /** Jobs waiting for a worker (tests: aborted jobs must not stay here). */
  get numQueued(): number {
    return this.#queue.length;
  }

  /** Jobs a worker is encoding now. */
  get numRunning(): number {
    return this.#workers.filter((w) => w.job !== null).length;
  }

  encode(text: string, options: PoolEncodeOptions = {}): Promise<number[]> {
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    const addSpecialTokens = options.addSpecialTokens ?? true;
    if (this.#workers.length === 0 || text.length < this.#inlineBelowChars) {
      try {
        return Promise.resolve(this.#tokenizer.encode(text, { addSpecialTokens }));
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return new Promise<number[]>((resolve, reject) => {
      const job: Job = { request: { id: this.#nextId++, text, addSpecialTokens }, resolve, reject, signal, onAbort: null, started: false };
      if (signal !== undefined) {
        job.onAbort = () => {
          const at = this.#queue.indexOf(job);
          if (at >= 0) this.#queue.splice(at, 1);
          // A started job is dropped when its worker answers; the caller hears now.
          this.#settle(job);
          reject(abortReason(signal));
        };
        signal.addEventListener('abort', job.onAbort, { once: true });
      }
      this.#queue.push(job);
      this.#dispatch();
    });
  }

  /** Ends the workers. Queued and running jobs are encoded on the main thread instead, so no caller is left hanging. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const workers = this.#workers;
    this.#workers = [];
    const orphans = workers.flatMap((w) => (w.job === null ? [] : [w.job]));
    for (const w of workers) w.job = null;
    this.#runInline([...orphans, ...this.#queue.splice(0)]);
    await Promise.all(workers.map((w) => w.worker.terminate()));
  }

  #startWorker(source: string | TokenizerFiles): Promise<void> {
    const data: EncodeWorkerData = { source };
    const worker = new Worker(new URL('./encode-worker.ts', import.meta.url), { workerData: data });
    const entry: PoolWorker = { worker, job: null };
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      worker.on('message', (message: WorkerReply | { ready: boolean; error?: string }) => {
        if ('ready' in message) {
          if (!message.ready) {
            reject(new Error(`tokenizer worker could not load the tokenizer: ${message.error}`));
            return;
          }
          ready = true;
          if (this.#closed) {
            void worker.terminate();
          } else {
            this.#workers.push(entry);
            // Idle workers must not keep the process alive (close() ends them on shutdown).
            worker.unref();
            this.#dispatch();
          }
          resolve();
          return;
        }
        this.#onReply(entry, message);
      });
      const onGone = (error: Error) => {
        if (!ready) {
          reject(error);
          return;
        }
        this.#onWorkerGone(entry, error);
      };
      worker.on('error', onGone);
      worker.on('exit', (code) => {
        if (!this.#closed) onGone(new Error(`tokenizer worker exited with code ${code}`));
      });
    });
  }

  #dispatch(): void {
    for (const w of this.#workers) {
      if (w.job !== null) continue;
      const job = this.#queue.shift();
      if (job === undefined) return;
      job.started = true;
      w.job = job;
      w.worker.ref();
      w.worker.postMessage(job.request);
    }
  }

  #onReply(w: PoolWorker, reply: WorkerReply): void {
    const job = w.job;
    w.job = null;
    w.worker.unref();
    // An aborted job was rejected when its signal fired: its ids are dropped here.
    if (job !== null && job.request.id === reply.id && job.signal?.aborted !== true) {
      this.#settle(job);
      if ('ids' in reply) job.resolve(Array.from(reply.ids));
      else job.reject(new Error(reply.error));
    }
    this.#dispatch();
  }

  /** A worker died (it should not): its job and, if none is left, the queue run on the main thread. */
  #onWorkerGone(w: PoolWorker, _error: Error): void {
    const at = this.#workers.indexOf(w);
    if (at < 0) return;
    this.#workers.splice(at, 1);
    const job = w.job;
    w.job = null;
    if (job !== null) this.#runInline([job]);
    if (this.#workers.length === 0) this.#runInline(this.#queue.splice(0));
  }

  #runInline(jobs: Job[]): void {
    for (const job of jobs) {
      if (job.signal?.aborted) continue;
      this.#settle(job);
      try {
        job.resolve(this.#tokenizer.encode(job.request.text, { addSpecialTokens: job.request.addSpecialTokens }));
      } catch (error) {
        job.reject(error);
      }
    }
  }

  /** The job needs no abort listener any more. */
  #settle(job: Job): void {
    if (job.onAbort !== null) job.signal?.removeEventListener('abort', job.onAbort);
    job.onAbort = null;
  }
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The operation was aborted.', 'AbortError');
}
