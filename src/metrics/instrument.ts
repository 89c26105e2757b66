/**
 * Wraps an InferenceService so that every generation is timed as the HTTP layer sees it: arrival
 * (generate() called), first token, each later token, finish. Those timestamps feed the Prometheus
 * histograms and counters (ServerMetrics) and one log line per finished generation, with the HTTP
 * request id, token counts, queue / TTFT / end-to-end times and the finish reason; never the prompt
 * or the output text.
 *
 * The queue time (arrival to first scheduled) comes from the engine, on the final output's `timing`.
 * Everything else the wrapper forwards untouched (a Proxy), so the API sees the same service.
 */
import type { GenerateOutput, GenerateRequest, InferenceService, Usage } from '../engine/inference-service.ts';
import { ServiceError } from '../engine/inference-service.ts';
import type { Logger } from '../logging/logger.ts';
import { currentRequestContext } from '../logging/request-context.ts';
import type { FinishedRequest, ServerMetrics } from './server-metrics.ts';

export interface InstrumentOptions {
  metrics?: ServerMetrics | null;
  /** Gets one info line per finished generation. */
  log?: Logger | null;
  /** Milliseconds, monotonic (tests inject a clock). */
  now?: () => number;
}

export function instrumentService(service: InferenceService, options: InstrumentOptions): InferenceService {
  const metrics = options.metrics ?? null;
  const log = options.log ?? null;
  const now = options.now ?? (() => performance.now());
  if (metrics === null && log === null) return service;

  const generate = (request: GenerateRequest): AsyncIterable<GenerateOutput> => {
    const arrival = now();
    let outputs: AsyncIterable<GenerateOutput>;
    try {
      // Called synchronously: errors thrown up front (overload, impossible requests) reach the caller as before.
      outputs = service.generate(request);
    } catch (error) {
      if (error instanceof ServiceError && (error.kind === 'overloaded' || error.kind === 'invalid_request')) {
        metrics?.requestRejected(error.kind === 'overloaded' ? 'overloaded' : 'invalid_request');
      }
      throw error;
    }
    const context = currentRequestContext();
    return timed(outputs, {
      arrival,
      now,
      engineRequestId: request.requestId,
      requestId: context?.requestId ?? null,
      onFinished: (finished) => {
        metrics?.requestFinished(finished);
        if (log !== null) logFinished(log, finished, context?.path);
      },
      metrics,
    });
  };

  return new Proxy(service, {
    get(target, property) {
      if (property === 'generate') return generate;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

interface TimedOptions {
  arrival: number;
  now: () => number;
  engineRequestId: string;
  requestId: string | null;
  metrics: ServerMetrics | null;
  onFinished: (finished: FinishedRequest) => void;
}

async function* timed(outputs: AsyncIterable<GenerateOutput>, o: TimedOptions): AsyncGenerator<GenerateOutput> {
  let firstTokenAt: number | null = null;
  let lastTokenAt: number | null = null;
  let usage: Usage | null = null;
  let ended = false;
  const end = (finishReason: FinishedRequest['finishReason'], output: GenerateOutput | null) => {
    ended = true;
    const at = o.now();
    const u = output?.usage ?? usage;
    o.onFinished({
      engineRequestId: o.engineRequestId,
      requestId: o.requestId,
      finishReason,
      promptTokens: u?.promptTokens ?? 0,
      completionTokens: u?.completionTokens ?? 0,
      cachedPromptTokens: u?.cachedPromptTokens ?? 0,
      queueTimeSeconds: output?.timing?.queueTimeMs != null ? output.timing.queueTimeMs / 1000 : null,
      ttftSeconds: firstTokenAt === null ? null : (firstTokenAt - o.arrival) / 1000,
      e2eSeconds: ((lastTokenAt ?? at) - o.arrival) / 1000,
      numPreemptions: output?.timing?.numPreemptions ?? null,
    });
  };
  try {
    for await (const output of outputs) {
      usage = output.usage;
      const count = output.tokenIds.length;
      if (count > 0) {
        const at = o.now();
        if (firstTokenAt === null) {
          firstTokenAt = at;
          o.metrics?.promptProcessed(output.usage.promptTokens, (at - o.arrival) / 1000);
          // Tokens that arrived together with the first one have no interval of their own.
          o.metrics?.tokensGenerated(count, null);
        } else {
          o.metrics?.tokensGenerated(count, (at - lastTokenAt!) / 1000 / count);
        }
        lastTokenAt = at;
      }
      if (output.finishReason !== null) end(output.finishReason, output);
      yield output;
    }
  } catch (error) {
    if (!ended) end('error', null);
    throw error;
  } finally {
    // The consumer stopped early (client gone): the service aborts the request; count it as such.
    if (!ended) end('abort', null);
  }
}

function logFinished(log: Logger, r: FinishedRequest, path: string | undefined): void {
  const ms = (seconds: number | null) => (seconds === null ? null : Math.round(seconds * 10_000) / 10);
  const decodeSeconds = r.ttftSeconds === null || r.completionTokens < 2 ? null : (r.e2eSeconds - r.ttftSeconds) / (r.completionTokens - 1);
  log.info(
    {
      requestId: r.requestId,
      engineRequestId: r.engineRequestId,
      ...(path ? { path } : {}),
      finishReason: r.finishReason,
      promptTokens: r.promptTokens,
      cachedPromptTokens: r.cachedPromptTokens,
      completionTokens: r.completionTokens,
      queueMs: ms(r.queueTimeSeconds),
      ttftMs: ms(r.ttftSeconds),
      tpotMs: ms(decodeSeconds),
      e2eMs: ms(r.e2eSeconds),
      ...(r.numPreemptions ? { preemptions: r.numPreemptions } : {}),
    },
    'request finished',
  );
}
