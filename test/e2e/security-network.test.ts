/**
 * Issue 8, security on the network side: CORS is off unless --cors-origins names the origins (then
 * only those get Access-Control-Allow-Origin, preflights included, also with an API key set), and the
 * server binds to 127.0.0.1 unless told otherwise.
 */
import { networkInterfaces } from 'node:os';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseServeArgs } from '../../src/cli/args.ts';
import { defaultServeConfig } from '../../src/config.ts';
import { startTestServer, type TestServer } from './harness.ts';
import { spawnServe, storiesOrTiny } from './reliability-helpers.ts';

const model = await storiesOrTiny();
const APP = 'https://app.example.com';
const EVIL = 'https://evil.example.net';

function preflight(url: string, origin: string): Promise<Response> {
  return fetch(`${url}/v1/chat/completions`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
  });
}

function chat(url: string, origin: string, extra: Record<string, unknown> = {}, key?: string): Promise<Response> {
  const headers: Record<string, string> = { origin, 'content-type': 'application/json' };
  if (key !== undefined) headers['authorization'] = `Bearer ${key}`;
  return fetch(`${url}/v1/chat/completions`, { method: 'POST', headers, body: JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }], max_tokens: 4, ...extra }) });
}

const corsHeaders = (response: Response) => [...response.headers.keys()].filter((name) => name.startsWith('access-control-'));

describe('CORS', () => {
  let plain: TestServer;
  let allowed: TestServer;
  beforeAll(async () => {
    plain = await startTestServer(model.dir);
    allowed = await startTestServer(model.dir, { corsOrigins: [APP], apiKeys: ['sk-cors'] });
  });
  afterAll(async () => {
    await plain?.close();
    await allowed?.close();
  });

  it('is off by default: no Access-Control-* header on any answer, preflights included', async () => {
    expect(defaultServeConfig().corsOrigins).toEqual([]);
    for (const response of [await preflight(plain.url, APP), await chat(plain.url, APP), await chat(plain.url, APP, { stream: true }), await fetch(`${plain.url}/health`, { headers: { origin: APP } })]) {
      expect(corsHeaders(response)).toEqual([]);
      await response.arrayBuffer();
    }
  });

  it('with --cors-origins, allows exactly those origins (preflight without a key, answers, streams, errors)', async () => {
    const pre = await preflight(allowed.url, APP);
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe(APP);
    expect(pre.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('authorization');
    expect(pre.headers.get('access-control-allow-methods')).toContain('POST');

    const ok = await chat(allowed.url, APP, {}, 'sk-cors');
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe(APP);
    const stream = await chat(allowed.url, APP, { stream: true }, 'sk-cors');
    expect(stream.headers.get('access-control-allow-origin')).toBe(APP);
    expect(await stream.text()).toContain('[DONE]');
    // A browser can read why it was refused.
    const unauthorized = await chat(allowed.url, APP);
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.headers.get('access-control-allow-origin')).toBe(APP);

    for (const response of [await preflight(allowed.url, EVIL), await chat(allowed.url, EVIL, {}, 'sk-cors')]) {
      expect(response.headers.get('access-control-allow-origin')).toBeNull();
      await response.arrayBuffer();
    }
  });

  it('rejects malformed origins at startup', () => {
    expect(parseServeArgs(['--cors-origins', 'https://a.example,http://b.example:8080'], {}).config.corsOrigins).toEqual(['https://a.example', 'http://b.example:8080']);
    expect(() => parseServeArgs(['--cors-origins', 'https://a.example/path'], {})).toThrow(/--cors-origins/);
    expect(() => parseServeArgs(['--cors-origins', 'a.example'], {})).toThrow(/--cors-origins/);
  });
});

describe('the listening address', () => {
  it('is 127.0.0.1 unless --host says otherwise', async () => {
    expect(defaultServeConfig().host).toBe('127.0.0.1');
    expect(parseServeArgs([], {}).config.host).toBe('127.0.0.1');
    expect(parseServeArgs(['--host', '0.0.0.0'], {}).config.host).toBe('0.0.0.0');

    const server = await spawnServe([model.dir]);
    try {
      const { hostname, port } = new URL(server.url);
      expect(hostname).toBe('127.0.0.1');
      // Not reachable on the machine's other addresses.
      const others = Object.values(networkInterfaces())
        .flat()
        .filter((a) => a !== undefined && a.family === 'IPv4' && !a.internal)
        .map((a) => a!.address);
      for (const address of others) {
        const refused = await new Promise<boolean>((resolve) => {
          const socket = connect(Number(port), address);
          socket.once('connect', () => {
            socket.destroy();
            resolve(false);
          });
          socket.once('error', () => resolve(true));
        });
        expect(refused, address).toBe(true);
      }
      expect((await fetch(`${server.url}/health`)).status).toBe(200);
    } finally {
      server.kill();
    }
  });
});
