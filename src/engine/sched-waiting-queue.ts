/**
 * Waiting requests in (priority, arrivalSeq) order — lower priority value first, then earlier arrival.
 * A preempted request re-enters at its own key, which puts it ahead of every equal-priority request that
 * arrived after it (the "front" of the queue in the FCFS case) without letting it jump a better priority.
 *
 * Also tracks how often each request was passed over for lack of KV blocks or token budget, which the
 * scheduler's anti-starvation rule reads (see Scheduler: maxWaitingSkips).
 */
import type { Request } from './request.ts';

export function comesBefore(a: Request, b: Request): boolean {
  return a.priority < b.priority || (a.priority === b.priority && a.arrivalSeq < b.arrivalSeq);
}

export class WaitingQueue {
  readonly #items: Request[] = [];
  readonly #skips = new Map<Request, number>();

  get length(): number {
    return this.#items.length;
  }

  add(request: Request): void {
    // Binary search for the first item that request comes before.
    let lo = 0;
    let hi = this.#items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (comesBefore(this.#items[mid]!, request)) lo = mid + 1;
      else hi = mid;
    }
    this.#items.splice(lo, 0, request);
  }

  remove(request: Request): boolean {
    const i = this.#items.indexOf(request);
    if (i < 0) return false;
    this.#items.splice(i, 1);
    this.#skips.delete(request);
    return true;
  }

  has(request: Request): boolean {
    return this.#items.includes(request);
  }

  /** A copy in queue order, safe to iterate while removing. */
  snapshot(): Request[] {
    return this.#items.slice();
  }

  /** Records one pass-over; returns the request's consecutive skip count. */
  recordSkip(request: Request): number {
    const n = (this.#skips.get(request) ?? 0) + 1;
    this.#skips.set(request, n);
    return n;
  }

  skipCount(request: Request): number {
    return this.#skips.get(request) ?? 0;
  }

  checkIntegrity(): void {
    for (let i = 1; i < this.#items.length; i++) {
      const a = this.#items[i - 1]!;
      const b = this.#items[i]!;
      if (!comesBefore(a, b)) throw new Error(`waiting queue out of order: ${a.requestId} before ${b.requestId}`);
    }
    const waiting = new Set(this.#items);
    if (waiting.size !== this.#items.length) throw new Error('waiting queue holds a request twice');
    for (const request of this.#skips.keys()) {
      if (!waiting.has(request)) throw new Error(`waiting queue: skip count kept for ${request.requestId}, not waiting`);
    }
  }
}
