/**
 * The per-request channel from the engine loop to the consumer (an HTTP handler).
 *
 * The engine pushes one GenerateOutput per step without ever waiting; a consumer that is behind
 * (slow client, SSE backpressure) receives the pending outputs merged into one, so memory stays
 * bounded by the text itself and nothing is lost.
 */
import type { GenerateOutput } from './inference-service.ts';

export class OutputStream implements AsyncIterable<GenerateOutput> {
  private pending: GenerateOutput | null = null;
  private failure: Error | null = null;
  private finished = false;
  private waiter: (() => void) | null = null;

  /** Called by the engine loop; never blocks. */
  push(output: GenerateOutput): void {
    if (this.finished) return;
    this.pending = this.pending === null ? output : mergeOutputs(this.pending, output);
    if (output.finishReason !== null) this.finished = true;
    this.wake();
  }

  /** Ends the stream with an error (e.g. a failed device step); the consumer's iterator throws. */
  fail(error: Error): void {
    if (this.finished) return;
    this.failure = error;
    this.finished = true;
    this.wake();
  }

  get isFinished(): boolean {
    return this.finished;
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<GenerateOutput> {
    for (;;) {
      if (this.pending !== null) {
        const output = this.pending;
        this.pending = null;
        yield output;
        if (output.finishReason !== null) return;
        continue;
      }
      if (this.failure !== null) throw this.failure;
      if (this.finished) return;
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }
}

/** `later` happened after `earlier`: concatenate the increments, keep the latest totals. */
export function mergeOutputs(earlier: GenerateOutput, later: GenerateOutput): GenerateOutput {
  const logprobs =
    earlier.logprobs || later.logprobs ? [...(earlier.logprobs ?? []), ...(later.logprobs ?? [])] : undefined;
  return {
    text: earlier.text + later.text,
    tokenIds: [...earlier.tokenIds, ...later.tokenIds],
    ...(logprobs ? { logprobs } : {}),
    finishReason: later.finishReason,
    stopReason: later.stopReason ?? null,
    usage: later.usage,
    ...(later.timing ? { timing: later.timing } : {}),
  };
}
