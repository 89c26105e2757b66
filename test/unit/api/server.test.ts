import { afterEach, describe, expect, it } from 'vitest';
import { createApp } from '../../../src/api/app.ts';
import { startServer, type RunningServer } from '../../../src/api/server.ts';
import { FakeInferenceService } from '../../helpers/fake-service.ts';
import { rawRequest } from './harness.ts';

const silent = { error: () => {} };
const started: RunningServer[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((server) => server.close()));
});

async function start(service = new FakeInferenceService(), options: { port?: number; shutdownGraceMs?: number } = {}) {
  const server = await startServer(createApp(service, { logger: silent }), { port: 0, ...options });
  started.push(server);
  return { server, service };
}

const streamBody = JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], stream: true });

describe('startServer', () => {
  it('listens on 127.0.0.1 by default and reports the bound port in url', async () => {
    const { server } = await start();
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(server.url).not.toMatch(/:0$/);
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
  });

  it('rejects when the port is taken', async () => {
    const { server } = await start();
    const port = Number(new URL(server.url).port);
    await expect(startServer(createApp(new FakeInferenceService(), { logger: silent }), { port })).rejects.toMatchObject({ code: 'EADDRINUSE' });
  });

  it('close() lets an in-flight stream finish, then stops accepting connections', async () => {
    const service = new FakeInferenceService({ reply: 'a b c d e', tokenDelayMs: 30 });
    const { server } = await start(service, { shutdownGraceMs: 5000 });
    const inFlight = rawRequest(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: streamBody });
    await service.waitForGenerations(1);
    const closed = server.close();
    const response = await inFlight;
    const finishedAt = Date.now();
    expect(response.text.endsWith('data: [DONE]\n\n')).toBe(true);
    expect(service.generations[0]!.signalFired).toBe(false);
    await closed;
    // The connection, kept alive by the client, is closed once idle rather than after its idle timeout.
    expect(Date.now() - finishedAt).toBeLessThan(1000);
    await expect(fetch(`${server.url}/health`)).rejects.toThrow();
  });

  it('close() cuts requests still running after the grace period, which aborts their generation', async () => {
    const service = new FakeInferenceService();
    service.stallAfterOutputs = 1;
    const { server } = await start(service, { shutdownGraceMs: 100 });
    const inFlight = rawRequest(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: streamBody }).catch(
      (error: unknown) => error,
    );
    const generation = await service.waitForGenerations(1);
    await server.close();
    await generation.aborted;
    expect(generation.signalFired).toBe(true);
    await inFlight;
  });

  it('close() does not wait for idle keep-alive connections', async () => {
    const { server } = await start();
    await fetch(`${server.url}/health`); // leaves a pooled keep-alive connection behind
    const startedAt = Date.now();
    await server.close();
    expect(Date.now() - startedAt).toBeLessThan(1000);
  });
});
