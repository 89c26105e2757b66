/**
 * OpenAI-style server-sent events: each event is `data: <json>\n\n`, the stream ends with
 * `data: [DONE]\n\n`, and an error after the stream started is sent as `data: {"error": …}` followed
 * by `[DONE]` (what vLLM does; the OpenAI SDKs raise it as an APIError).
 *
 * Built on Hono's streamSSE, which sets `content-type: text/event-stream`, `cache-control: no-cache`
 * and `connection: keep-alive`; @hono/node-server writes each event to the socket as it comes.
 */
import type { Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import { toApiError, type ApiLogger } from './errors.ts';

export interface EventStreamOptions {
  /** The client's connection: once it closes, nothing more is written and the events stop being pulled. */
  clientSignal: AbortSignal;
  logger: ApiLogger;
  requestId: string;
}

export function openAIEventStream(c: Context, events: AsyncIterable<object>, options: EventStreamOptions): Response {
  const { clientSignal } = options;
  return streamSSE(c, async (stream) => {
    const send = (payload: object | '[DONE]') => stream.writeSSE({ data: payload === '[DONE]' ? payload : JSON.stringify(payload) });
    try {
      for await (const payload of events) {
        // Leaving the loop returns the generator chain, which tells the service to stop too.
        if (clientSignal.aborted) return;
        await send(payload);
      }
      if (!clientSignal.aborted) await send('[DONE]');
    } catch (error) {
      if (clientSignal.aborted) return;
      await send(toApiError(error, options).toBody());
      await send('[DONE]');
    }
  });
}
