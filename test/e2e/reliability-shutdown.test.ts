/**
 * Issue 8, graceful shutdown of the real CLI (`node bin/updraft.js serve` as a child process):
 * SIGTERM stops accepting (new connections are refused), lets in-flight streams finish, then exits 0;
 * with a short --shutdown-timeout a long stream is ended by the server (an SSE error event, not a
 * silent cut) and the process still exits 0. The launcher that re-runs itself on Node 24 from an old
 * system Node passes SIGTERM on, so `node bin/updraft.js` on Node 20 shuts down the same way.
 */
import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyModelDir } from '../fixtures/tiny-models.ts';
import { rawExchange, rawPost, spawnServe, sseData, waitFor, type CliServer } from './reliability-helpers.ts';

// A 2048-token context, so one stream lasts long enough to be caught mid-way.
const modelDir = await tinyModelDir('tiny-llama3');

function connectionRefused(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

const streamRequest = (maxTokens: number) => rawPost('/v1/completions', { prompt: 'Once upon a time', max_tokens: maxTokens, ignore_eos: true, stream: true });

/** A system Node older than 22.12 (the launcher's re-run path), if this machine has one. */
function oldSystemNode(): string | null {
  for (const candidate of ['/usr/bin/node', '/usr/local/bin/node']) {
    const result = spawnSync(candidate, ['-p', 'process.versions.node'], { encoding: 'utf8' });
    if (result.status !== 0) continue;
    const [major, minor] = result.stdout.trim().split('.').map(Number);
    if (major! < 22 || (major === 22 && minor! < 12)) return candidate;
  }
  return null;
}

const oldNode = oldSystemNode();

// The servers start together (loading is most of each test's time), each is stopped by its test.
let patient: CliServer;
let hasty: CliServer;
let launched: CliServer | null = null;
beforeAll(async () => {
  [patient, hasty, launched] = await Promise.all([
    spawnServe([modelDir, '--shutdown-timeout', '60']),
    spawnServe([modelDir, '--shutdown-timeout', '0.3']),
    oldNode === null ? null : spawnServe([modelDir, '--shutdown-timeout', '60'], {}, { node: oldNode }),
  ]);
}, 120_000);
afterAll(() => {
  for (const server of [patient, hasty, launched]) server?.kill();
});

describe('SIGTERM', () => {
  it('stops accepting, lets the in-flight stream complete, then exits 0', async () => {
    const server = patient;
    {
      const stream = await rawExchange(server.url, streamRequest(1000));
      await stream.waitFor(/"text":"[^"]+"/);
      server.child.kill('SIGTERM');
      await waitFor(() => /no longer accepting/.test(server.output()), 10_000, 'the shutdown to begin');
      // New connections are refused while the stream is still running.
      expect(await connectionRefused(server.url)).toBe(true);
      expect(stream.received()).not.toContain('[DONE]');
      await stream.waitFor(/data: \[DONE\]/, 60_000);
      const events = sseData(stream.received());
      expect(events.some((data) => data.includes('"finish_reason":"length"'))).toBe(true);
      expect(events.some((data) => data.includes('"error"'))).toBe(false);
      const exit = await server.exited;
      expect(exit, server.output()).toEqual({ code: 0, signal: null });
      expect(server.output()).toMatch(/stopped/);
    }
  });

  it('with a short --shutdown-timeout, ends a long stream with an error event and still exits 0', async () => {
    const server = hasty;
    {
      const stream = await rawExchange(server.url, streamRequest(2000));
      await stream.waitFor(/"text":"[^"]+"/);
      const signalledAt = Date.now();
      server.child.kill('SIGTERM');
      const exit = await server.exited;
      expect(exit, server.output()).toEqual({ code: 0, signal: null });
      expect(Date.now() - signalledAt).toBeLessThan(10_000);
      await stream.closed;
      const events = sseData(stream.received());
      // Cut before its 2000 tokens, and told so.
      expect(events.some((data) => data.includes('"finish_reason":"length"'))).toBe(false);
      const error = events.find((data) => data.startsWith('{"error"'));
      expect(error, stream.received().slice(-500)).toBeDefined();
      expect(JSON.parse(error!)).toMatchObject({ error: { code: 'request_aborted' } });
      expect(server.output()).toMatch(/shutdown timeout/);
    }
  });
});

describe.skipIf(oldNode === null)(`the launcher on an old system Node (${oldNode ?? 'none here'})`, () => {
  it('passes SIGTERM on to the server, which drains and exits 0', async () => {
    const server = launched!;
    {
      const stream = await rawExchange(server.url, streamRequest(300));
      await stream.waitFor(/"text":"[^"]+"/);
      server.child.kill('SIGTERM');
      await stream.waitFor(/data: \[DONE\]/, 60_000);
      expect(sseData(stream.received()).some((data) => data.includes('"finish_reason":"length"'))).toBe(true);
      expect(await server.exited, server.output()).toEqual({ code: 0, signal: null });
      // The real server (the launcher's child) is gone too.
      expect(await connectionRefused(server.url)).toBe(true);
    }
  });
});
