/**
 * A client that goes away must abort its generation (freeing its KV cache in the real engine).
 * These tests use raw TCP sockets so the client side closes exactly when we say.
 */
import net from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { FakeGeneration } from '../../helpers/fake-service.ts';
import { startTestServer, type TestServer } from './harness.ts';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ reply: 'one two three four five six' });
});
afterAll(() => t.close());
beforeEach(() => {
  t.service.stallAfterOutputs = null;
  t.service.tokenDelayMs = 0;
  t.service.generations.length = 0;
  t.loggedErrors.length = 0;
});

/** Opens a socket and sends a POST; `body` may be sent with content-length or chunked. */
function openRequest(path: string, body: object, options: { chunked?: boolean } = {}): { socket: net.Socket; received: () => string; waitFor: (text: string) => Promise<void> } {
  const url = new URL(t.url);
  const socket = net.connect(Number(url.port), url.hostname);
  const json = JSON.stringify(body);
  const head = [`POST ${path} HTTP/1.1`, `Host: ${url.host}`, 'Content-Type: application/json'];
  if (options.chunked) {
    head.push('Transfer-Encoding: chunked');
    socket.write(`${head.join('\r\n')}\r\n\r\n${Buffer.byteLength(json).toString(16)}\r\n${json}\r\n0\r\n\r\n`);
  } else {
    head.push(`Content-Length: ${Buffer.byteLength(json)}`);
    socket.write(`${head.join('\r\n')}\r\n\r\n${json}`);
  }
  let text = '';
  const listeners: Array<() => void> = [];
  socket.on('data', (chunk: Buffer) => {
    text += chunk.toString();
    for (const listener of listeners) listener();
  });
  socket.on('error', () => {});
  return {
    socket,
    received: () => text,
    waitFor: (needle) =>
      new Promise((resolve) => {
        const check = () => text.includes(needle) && resolve();
        listeners.push(check);
        check();
      }),
  };
}

/** Fails the test (instead of hanging) if the abort never reaches the service. */
async function expectAborted(generation: FakeGeneration): Promise<void> {
  const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 3000));
  expect(await Promise.race([generation.aborted.then(() => 'aborted' as const), timeout])).toBe('aborted');
  expect(generation.request.signal!.aborted).toBe(true);
}

describe('client disconnect', () => {
  it('mid-stream aborts the generation, and the stream was flushed event by event until then', async () => {
    // The service produces two words, then waits until the request is aborted.
    t.service.stallAfterOutputs = 2;
    const client = openRequest('/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], stream: true });
    // Both words arrive while the generation is still running: each event is flushed as it happens.
    await client.waitFor('" two"');
    const generation = t.service.generations[0]!;
    expect(generation.signalFired).toBe(false);
    expect(client.received()).not.toContain('[DONE]');

    client.socket.destroy();
    await expectAborted(generation);
  });

  it('mid-stream on /v1/completions aborts too', async () => {
    t.service.stallAfterOutputs = 1;
    const client = openRequest('/v1/completions', { prompt: 'x', stream: true });
    await client.waitFor('"one"');
    client.socket.destroy();
    await expectAborted(t.service.generations[0]!);
  });

  it('before a non-streaming response aborts the generation', async () => {
    t.service.stallAfterOutputs = 1;
    const client = openRequest('/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }] });
    const generation = await t.service.waitForGenerations(1);
    expect(generation.signalFired).toBe(false);
    client.socket.destroy();
    await expectAborted(generation);
    expect(client.received()).toBe('');
  });

  it('before the first streamed output (no headers sent yet) aborts the generation', async () => {
    t.service.stallAfterOutputs = 0;
    const client = openRequest('/v1/completions', { prompt: 'x', stream: true });
    const generation = await t.service.waitForGenerations(1);
    client.socket.destroy();
    await expectAborted(generation);
  });

  it('aborts when the body came chunked (the request object is re-wrapped by the body limit)', async () => {
    t.service.stallAfterOutputs = 1;
    const client = openRequest('/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], stream: true }, { chunked: true });
    await client.waitFor('"one"');
    client.socket.destroy();
    await expectAborted(t.service.generations[0]!);
  });

  it('does not abort a request whose client stayed until the end', async () => {
    const client = openRequest('/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], stream: true });
    await client.waitFor('data: [DONE]');
    const generation = t.service.generations[0]!;
    client.socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(generation.signalFired).toBe(false);
  });

  it('while still sending the body is not mistaken for a server bug', async () => {
    const url = new URL(t.url);
    const socket = net.connect(Number(url.port), url.hostname);
    socket.on('error', () => {});
    socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"messages": [`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(t.loggedErrors).toEqual([]);
    expect(t.service.generations).toHaveLength(0);
  });

  it('keeps serving after clients vanish', async () => {
    t.service.stallAfterOutputs = 1;
    const client = openRequest('/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], stream: true });
    await client.waitFor('"one"');
    client.socket.destroy();
    await expectAborted(t.service.generations[0]!);
    t.service.stallAfterOutputs = null;
    const completion = await t.client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }] });
    expect(completion.choices[0]!.message.content).toBe('one two three four five six');
  });
});
