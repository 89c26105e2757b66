/**
 * OpenAI-style server-sent events: each event is `data: <json>\n\n`, the stream ends with
 * `data: [DONE]\n\n`, and an error after the stream started is sent as `data: {"error": …}` followed
 * by `[DONE]` (what vLLM does; the OpenAI SDKs raise it as an APIError). The headers are
 * `content-type: text/event-stream`, `cache-control: no-cache` and `connection: keep-alive`.
 *
 * Under startServer the events are written straight to Node's ServerResponse (direct-response.ts):
 * at hundreds of concurrent streams the web-streams path (Hono's streamSSE, then @hono/node-server
 * reading the ReadableStream back) cost the main thread several promise hops and allocations per
 * chunk. Without a server slot (`app.request` in tests) the events go through streamSSE as before.
 */
import { AsyncResource } from 'node:async_hooks';
import type { ServerResponse } from 'node:http';
import type { Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import type { ApiEnv } from './context.ts';
import { outgoingHeaders } from './direct-response.ts';
import { toApiError, type ApiLogger } from './errors.ts';

export interface EventStreamOptions {
  /** The client's connection: once it closes, nothing more is written and the events stop being pulled. */
  clientSignal: AbortSignal;
  logger: ApiLogger;
  requestId: string;
}

const SSE_HEADERS = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' };

/** Where the events go: `event` gets one JSON payload; a returned promise means wait (backpressure). */
interface EventSink {
  event(json: string): Promise<void> | undefined;
  /** Writes `[DONE]` and ends the response. */
  done(): Promise<void> | undefined;
}

export function openAIEventStream(c: Context<ApiEnv>, events: AsyncIterable<object>, options: EventStreamOptions): Response {
  // c.env is undefined when the app is called without a server (app.request).
  const slot = (c.env as ApiEnv['Bindings'] | undefined)?.directResponse;
  if (slot === undefined) {
    return streamSSE(c, (stream) =>
      pumpEvents(events, options, {
        event: (json) => stream.writeSSE({ data: json }),
        done: () => stream.writeSSE({ data: '[DONE]' }),
      }),
    );
  }
  const iterator = events[Symbol.asyncIterator]();
  // Bound here so the writing runs in this request's async context (its x-request-id in log lines).
  const writer = AsyncResource.bind((response: Response): boolean => {
    if (response.body !== null) {
      // A middleware answered something else: the generation is not wanted. A generator that has not
      // started ignores return(), so start it, then return it: the chain's finally blocks abort it.
      iterator
        .next()
        .then(() => iterator.return?.())
        .catch(() => undefined);
      return false;
    }
    const { outgoing } = slot;
    outgoing.writeHead(response.status, outgoingHeaders(response.headers));
    pumpEvents({ [Symbol.asyncIterator]: () => iterator }, options, directSink(outgoing)).catch((error: unknown) => {
      options.logger.error('SSE stream failed', { requestId: options.requestId, error });
      outgoing.destroy();
    });
    return true;
  });
  slot.claim(writer);
  return c.body(null, 200, SSE_HEADERS);
}

/**
 * Pulls the events and writes them. Leaving the loop (the client went away) returns the generator
 * chain, which tells the service to stop too, so the engine frees the request's KV cache at once.
 */
async function pumpEvents(events: AsyncIterable<object>, options: EventStreamOptions, sink: EventSink): Promise<void> {
  const { clientSignal } = options;
  try {
    for await (const payload of events) {
      if (clientSignal.aborted) return;
      const wait = sink.event(JSON.stringify(payload));
      if (wait !== undefined) await wait;
    }
    if (!clientSignal.aborted) await sink.done();
  } catch (error) {
    if (clientSignal.aborted) return;
    await sink.event(JSON.stringify(toApiError(error, options).toBody()));
    await sink.done();
  }
}

function directSink(outgoing: ServerResponse): EventSink {
  return {
    // Node corks the socket until the next tick, so events written in one tick (the last text and the
    // finish chunk, or these and [DONE]) leave in one syscall.
    event: (json) => (outgoing.write(`data: ${json}\n\n`) ? undefined : drained(outgoing)),
    done: () => {
      outgoing.end('data: [DONE]\n\n');
      return undefined;
    },
  };
}

/** Resolves once the socket takes more data, or is gone (the client signal then tells the loop to stop). */
function drained(outgoing: ServerResponse): Promise<void> | undefined {
  if (outgoing.destroyed) return undefined;
  return new Promise((resolve) => {
    const done = () => {
      outgoing.off('drain', done);
      outgoing.off('close', done);
      resolve();
    };
    outgoing.on('drain', done);
    outgoing.on('close', done);
  });
}
