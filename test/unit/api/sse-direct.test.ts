/**
 * Under startServer, SSE is written straight to Node's ServerResponse (src/api/direct-response.ts),
 * not through web streams. What that path must keep: backpressure (a client that does not read stops
 * the generation from being pulled), disconnects while waiting on a full socket, the headers
 * middlewares add after the handler returned (CORS's Vary), and a response a middleware replaced.
 */
import net from 'node:net';
import { Hono } from 'hono';
import { afterEach, describe, expect, it } from 'vitest';
import type { ApiEnv } from '../../../src/api/context.ts';
import { startServer, type RunningServer } from '../../../src/api/server.ts';
import { openAIEventStream } from '../../../src/api/sse.ts';
import { rawRequest, startTestServer, type TestServer } from './harness.ts';

const WORDS = 2000;
/** 2000 outputs of 8 KiB each: 16 MiB, far more than loopback socket buffers hold. */
const LONG_REPLY = Array.from({ length: WORDS }, (_, i) => ` ${String(i).padStart(4, '0')}${'x'.repeat(8 * 1024)}`).join('');

let t: TestServer | null = null;
let server: RunningServer | null = null;
afterEach(async () => {
  await t?.close();
  await server?.close();
  t = null;
  server = null;
});

/** A streaming completion over a raw socket that reads only when told to. */
function pausedStream(url: string, body: object): { socket: net.Socket; resume: () => Promise<string> } {
  const { port, hostname, host } = new URL(url);
  const socket = net.connect(Number(port), hostname);
  const json = JSON.stringify(body);
  socket.write(`POST /v1/completions HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(json)}\r\n\r\n${json}`);
  socket.on('error', () => {});
  socket.pause();
  return {
    socket,
    resume: () =>
      new Promise((resolve) => {
        const chunks: Buffer[] = [];
        socket.on('data', (chunk: Buffer) => {
          chunks.push(chunk);
          // The chunked body's terminator follows [DONE].
          if (Buffer.concat(chunks.slice(-2)).toString('latin1').includes('data: [DONE]\n\n\r\n0\r\n\r\n')) {
            socket.destroy();
            resolve(Buffer.concat(chunks).toString('utf8'));
          }
        });
        socket.resume();
      }),
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('SSE written directly to the socket', () => {
  it('stops pulling outputs while the client does not read, and sends them all once it does', async () => {
    t = await startTestServer({ reply: LONG_REPLY });
    const client = pausedStream(t.url, { model: 'fake-model', prompt: 'x', max_tokens: WORDS, stream: true });
    const generation = await t.service.waitForGenerations(1);
    await sleep(300);
    // Without backpressure the whole reply (16 MiB) would have been pulled into memory by now.
    const pulledWhilePaused = generation.outputsYielded;
    expect(pulledWhilePaused).toBeGreaterThan(0);
    expect(pulledWhilePaused).toBeLessThan(WORDS / 2);

    const text = await client.resume();
    expect(generation.outputsYielded).toBe(WORDS);
    expect(generation.signalFired).toBe(false);
    for (const i of [0, 1, WORDS / 2, WORDS - 1]) expect(text).toContain(`" ${String(i).padStart(4, '0')}x`);
  });

  it('a client that leaves while the socket is full aborts the generation, and the writer lets go of it', async () => {
    t = await startTestServer({ reply: LONG_REPLY });
    const client = pausedStream(t.url, { model: 'fake-model', prompt: 'x', max_tokens: WORDS, stream: true });
    const generation = await t.service.waitForGenerations(1);
    await sleep(200);
    expect(generation.outputsYielded).toBeLessThan(WORDS);
    client.socket.destroy();
    await generation.aborted;
    // The writer was waiting for 'drain', which never comes: the close must wake it, or the generator
    // chain (and the engine request under it) would stay held.
    for (let i = 0; i < 100 && !generation.ended; i++) await sleep(10);
    expect(generation.ended).toBe(true);
  });

  it('sends the headers middlewares add on the way out (CORS Vary: Origin) and the request id', async () => {
    t = await startTestServer({ reply: 'A B' }, { corsOrigins: ['https://app.example'] });
    const response = await rawRequest(`${t.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: 'https://app.example', 'x-request-id': 'req-direct-1' },
      body: JSON.stringify({ model: 'fake-model', prompt: 'x', stream: true }),
    });
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toBe('text/event-stream');
    expect(response.headers['access-control-allow-origin']).toBe('https://app.example');
    expect(response.headers['vary']).toBe('Origin');
    expect(response.headers['x-request-id']).toBe('req-direct-1');
    expect(response.text.endsWith('data: [DONE]\n\n')).toBe(true);
  });

  it('sends the response a middleware put in place of the stream, and returns the events', async () => {
    let returned = false;
    async function* events(): AsyncGenerator<object> {
      try {
        yield { n: 1 };
        yield { n: 2 };
      } finally {
        returned = true;
      }
    }
    const app = new Hono<ApiEnv>();
    app.use(async (c, next) => {
      await next();
      c.res = new Response('replaced', { status: 418 });
    });
    app.get('/events', (c) => openAIEventStream(c, events(), { clientSignal: c.req.raw.signal, logger: { error: () => {} }, requestId: 'r' }));
    server = await startServer(app, { port: 0 });
    const response = await rawRequest(`${server.url}/events`);
    expect(response.status).toBe(418);
    expect(response.text).toBe('replaced');
    for (let i = 0; i < 50 && !returned; i++) await sleep(10);
    expect(returned).toBe(true);
  });

  it('without a server (app.request) streams through web streams, framed the same way', async () => {
    const app = new Hono<ApiEnv>();
    async function* events(): AsyncGenerator<object> {
      yield { n: 1 };
    }
    app.get('/events', (c) => openAIEventStream(c, events(), { clientSignal: c.req.raw.signal, logger: { error: () => {} }, requestId: 'r' }));
    const response = await app.request('/events');
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    expect(await response.text()).toBe('data: {"n":1}\n\ndata: [DONE]\n\n');
  });
});
