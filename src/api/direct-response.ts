/**
 * Lets a handler write its response body straight to Node's ServerResponse (no web streams in
 * between), while the status and headers still come from the Response the app returns, after every
 * middleware has run (x-request-id, CORS's `Vary: Origin`, anything added on the way out).
 *
 * startServer puts a DirectResponseSlot in each request's Hono env (`c.env.directResponse`). A handler
 * that wants to write directly claims it and returns a body-less Response; startServer then calls
 * `finish` with the app's final Response, which starts the claimed writer with it and tells
 * @hono/node-server that the response is already being sent. Apps run without startServer (tests'
 * `app.request`) have no slot and take their usual path.
 */
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';

/**
 * Starts writing the body with the app's final response (status and headers to send); returns false to
 * decline, when that response is not the one the writer answered (a middleware replaced it), which is
 * then sent as it is.
 */
export type DirectWriter = (response: Response) => boolean;

export class DirectResponseSlot {
  readonly outgoing: ServerResponse;
  #writer: DirectWriter | null = null;

  constructor(outgoing: ServerResponse) {
    this.outgoing = outgoing;
  }

  /** Called by a handler that will write the body itself once the app's response is final. */
  claim(writer: DirectWriter): void {
    if (this.#writer !== null) throw new Error('the response was already claimed by another writer');
    this.#writer = writer;
  }

  /** Called by the server with the app's response: what to hand @hono/node-server. */
  finish(response: Response): Response {
    const writer = this.#writer;
    this.#writer = null;
    if (writer === null || !writer(response)) return response;
    return RESPONSE_ALREADY_SENT;
  }
}

/** A Response's headers as Node's writeHead takes them (set-cookie stays a list, as @hono/node-server does). */
export function outgoingHeaders(headers: Headers): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of headers) {
    if (name === 'set-cookie') out[name] = headers.getSetCookie();
    else out[name] = value;
  }
  return out;
}
