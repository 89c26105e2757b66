/**
 * Listening on a socket with @hono/node-server, and closing gracefully: stop accepting, let
 * in-flight requests (including long SSE streams) finish, and cut what is left after a grace period
 * (cutting a connection aborts its request, which frees its KV cache in the engine).
 */
import { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';

export interface ServerOptions {
  /** Default 127.0.0.1 (local only); use 0.0.0.0 to serve the network. */
  host?: string;
  /** Default 8000; 0 picks a free port (see the returned url). */
  port?: number;
  /** How long close() waits for in-flight requests before cutting their connections; default 10 s. */
  shutdownGraceMs?: number;
}

export interface RunningServer {
  /** Base URL, e.g. http://127.0.0.1:8000 (clients add /v1). */
  url: string;
  /** Stops accepting connections and resolves once every in-flight request has ended. */
  close(): Promise<void>;
}

/** Anything with a fetch handler, e.g. the Hono app from createApp. */
export interface FetchApp {
  fetch(request: Request): Response | Promise<Response>;
}

export function startServer(app: FetchApp, options: ServerOptions = {}): Promise<RunningServer> {
  const host = options.host ?? '127.0.0.1';
  const graceMs = options.shutdownGraceMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: (request) => app.fetch(request), hostname: host, port: options.port ?? 8000 });
    if (!(server instanceof Server)) throw new Error('expected @hono/node-server to create an HTTP/1.1 server');
    server.once('error', reject);
    server.once('listening', () => {
      server.off('error', reject);
      const { address, port } = server.address() as AddressInfo;
      resolve({ url: `http://${formatHost(address)}:${port}`, close: () => closeGracefully(server, graceMs) });
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

function formatHost(address: string): string {
  return address.includes(':') ? `[${address}]` : address;
}
