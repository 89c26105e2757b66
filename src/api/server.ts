/**
 * Listening on a socket with @hono/node-server, and closing gracefully: stop accepting, let
 * in-flight requests (including long SSE streams) finish, and cut what is left after a grace period
 * (cutting a connection aborts its request, which frees its KV cache in the engine).
 */
import { Server, ServerResponse, STATUS_CODES } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { serve, type Http2Bindings, type HttpBindings } from '@hono/node-server';
import type { ApiBindings } from './context.ts';
import { DirectResponseSlot } from './direct-response.ts';
import { ApiError, type ApiErrorStatus } from './errors.ts';

export interface ServerOptions {
  /** Default 127.0.0.1 (local only); use 0.0.0.0 to serve the network. */
  host?: string;
  /** Default 8000; 0 picks a free port (see the returned url). */
  port?: number;
  /** How long close() waits for in-flight requests before cutting their connections; default 10 s. */
  shutdownGraceMs?: number;
  /**
   * Milliseconds a client has to send a request's headers (Node's headersTimeout; the JSON routes
   * time the body themselves, request-body.ts); default 30 s. Slow clients get a 408 and lose the
   * connection. Responses (long streams) are not limited.
   */
  readTimeoutMs?: number;
}

export interface RunningServer {
  /** Base URL, e.g. http://127.0.0.1:8000 (clients add /v1). */
  url: string;
  /**
   * Stops accepting connections (new ones are refused; a new request on a kept-alive connection gets a
   * 503 and the connection closes) and resolves once every in-flight request has ended.
   */
  close(): Promise<void>;
}

/** Anything with a fetch handler, e.g. the Hono app from createApp (which reads `env.directResponse`). */
export interface FetchApp {
  fetch(request: Request, env: ApiBindings): Response | Promise<Response>;
}

export function startServer(app: FetchApp, options: ServerOptions = {}): Promise<RunningServer> {
  const host = options.host ?? '127.0.0.1';
  const graceMs = options.shutdownGraceMs ?? 10_000;
  const readTimeoutMs = options.readTimeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const serverOptions = {
      headersTimeout: readTimeoutMs,
      // A backstop only: the body is timed by the JSON routes, which answer in OpenAI's shape first.
      requestTimeout: readTimeoutMs + 5_000,
      // How often Node looks for connections past those timeouts (its default, 30 s, would add up to that).
      connectionsCheckingInterval: Math.min(1_000, Math.max(50, Math.floor(readTimeoutMs / 4))),
    };
    let draining = false;
    const fetch = async (request: Request, env: HttpBindings | Http2Bindings): Promise<Response> => {
      if (draining) return shuttingDown();
      if (!(env.outgoing instanceof ServerResponse)) return app.fetch(request, {});
      // A streaming handler claims the slot and writes the body to env.outgoing itself (sse.ts).
      const slot = new DirectResponseSlot(env.outgoing);
      return slot.finish(await app.fetch(request, { directResponse: slot }));
    };
    const server = serve({ fetch, hostname: host, port: options.port ?? 8000, serverOptions });
    if (!(server instanceof Server)) throw new Error('expected @hono/node-server to create an HTTP/1.1 server');
    server.on('clientError', answerClientError);
    server.once('error', reject);
    server.once('listening', () => {
      server.off('error', reject);
      const { address, port } = server.address() as AddressInfo;
      const close = () => {
        draining = true;
        return closeGracefully(server, graceMs);
      };
      resolve({ url: `http://${formatHost(address)}:${port}`, close });
    });
  });
}

function closeGracefully(server: Server, graceMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!server.listening) return resolve();
    const forceTimer = setTimeout(() => server.closeAllConnections(), graceMs);
    // Keep-alive connections hold close() open until their idle timeout: close each one as soon as
    // its last response is done (the ones in flight now become idle later, hence the polling).
    const idleSweep = setInterval(() => server.closeIdleConnections(), 50);
    forceTimer.unref();
    idleSweep.unref();
    server.close((error) => {
      clearTimeout(forceTimer);
      clearInterval(idleSweep);
      if (error) reject(error);
      else resolve();
    });
    server.closeIdleConnections();
  });
}

/** What a request that arrives while the server drains gets (OpenAI's shape; the connection closes). */
function shuttingDown(): Response {
  const error = new ApiError(503, 'The server is shutting down; retry shortly.', { code: 'shutting_down' });
  return new Response(JSON.stringify(error.toBody()), {
    status: 503,
    headers: { 'content-type': 'application/json', connection: 'close', 'retry-after': '1' },
  });
}

/**
 * Requests Node's HTTP parser refuses before the app sees them (malformed framing, headers over 16 KiB,
 * the headers or request timeouts) get OpenAI's error shape too, then the connection is closed.
 */
function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  let status: ApiErrorStatus = 400;
  let apiError: ApiError;
  if (error.code === 'HPE_HEADER_OVERFLOW') {
    status = 431;
    apiError = new ApiError(status, 'The request headers are too large.', { code: 'request_header_fields_too_large' });
  } else if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    status = 408;
    apiError = new ApiError(status, 'The request did not arrive in time.', { code: 'request_timeout' });
  } else {
    apiError = new ApiError(status, 'The request is not valid HTTP/1.1.', { code: 'malformed_request' });
  }
  const body = JSON.stringify(apiError.toBody());
  const head = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`,
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
  ];
  (socket as Socket).end(`${head.join('\r\n')}\r\n\r\n${body}`);
}

function formatHost(address: string): string {
  return address.includes(':') ? `[${address}]` : address;
}
