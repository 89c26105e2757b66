/**
 * Issue 8, security: API keys and tenants, on the real stack.
 * - keys come from --api-key (repeatable, comma-separated) or UPDRAFT_API_KEY (comma-separated);
 * - a missing or wrong key is a 401 in OpenAI's shape, on every route; /health and /metrics are
 *   exempt only with --public-health;
 * - a presented key is compared with crypto.timingSafeEqual over fixed-length SHA-256 digests, against
 *   every configured key whichever matches (so the time does not depend on the key);
 * - the prefix cache is salted per key: tenant A's prompt is a cache hit for A and not for B, and the
 *   salt the engine sees is derived from the key, never the key itself.
 */
import { timingSafeEqual } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cacheSaltForKey } from '../../src/api/auth.ts';
import { parseServeArgs } from '../../src/cli/args.ts';
import type { Request } from '../../src/engine/request.ts';
import type { StepRunner } from '../../src/model/runner.ts';
import { startTestServer, type TestServer } from './harness.ts';
import { isOpenAIError, storiesOrTiny } from './reliability-helpers.ts';

vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:crypto')>();
  return { ...actual, timingSafeEqual: vi.fn(actual.timingSafeEqual) };
});

const KEY_A = 'sk-tenant-a-0123456789';
const KEY_B = 'sk-tenant-b-9876543210-a-longer-one';
const model = await storiesOrTiny();
const seenSalts = new Set<string | null>();
const recordSalts = (runner: StepRunner): StepRunner => ({
  execute: (out) => {
    for (const s of out.scheduled) seenSalts.add((s.request as Request).cacheSalt);
    return runner.execute(out);
  },
});

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer(model.dir, { apiKeys: [KEY_A, KEY_B] }, { wrapRunner: recordSalts });
});
afterAll(async () => server?.close());

const DOCUMENT = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her dog. '.repeat(2);

async function complete(key: string | null, prompt: string): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (key !== null) headers['authorization'] = `Bearer ${key}`;
  return fetch(`${server.url}/v1/completions`, { method: 'POST', headers, body: JSON.stringify({ prompt, max_tokens: 4, temperature: 0 }) });
}

async function cachedTokens(key: string, prompt: string): Promise<number> {
  const response = await complete(key, prompt);
  expect(response.status).toBe(200);
  return ((await response.json()) as { usage: { prompt_tokens_details: { cached_tokens: number } } }).usage.prompt_tokens_details.cached_tokens;
}

describe('API keys', () => {
  it('come from --api-key (repeated or comma-separated) and from UPDRAFT_API_KEY (comma-separated)', () => {
    expect(parseServeArgs(['--api-key', 'a', '--api-key', 'b, c'], {}).config.apiKeys).toEqual(['a', 'b', 'c']);
    expect(parseServeArgs([], { UPDRAFT_API_KEY: 'x,y,,z' }).config.apiKeys).toEqual(['x', 'y', 'z']);
    expect(parseServeArgs(['--api-key', 'flag'], { UPDRAFT_API_KEY: 'env' }).config.apiKeys).toEqual(['flag']);
    expect(parseServeArgs([], {}).config.apiKeys).toEqual([]);
  });

  it('answer a missing or wrong key with a 401 in OpenAI shape, and serve each configured key', async () => {
    for (const key of [null, '', 'sk-wrong', KEY_A.slice(0, -1), `${KEY_A}x`, KEY_A.toUpperCase()]) {
      const response = await complete(key, 'Hello');
      expect(response.status, String(key)).toBe(401);
      const body: unknown = await response.json();
      expect(isOpenAIError(body)).toBe(true);
      expect(body).toMatchObject({ error: { code: 'invalid_api_key', type: 'invalid_request_error' } });
    }
    expect((await complete(KEY_A, 'Hello')).status).toBe(200);
    expect((await complete(KEY_B, 'Hello')).status).toBe(200);
  });

  it('guard /health, /metrics, /version and every other route unless --public-health', async () => {
    for (const path of ['/health', '/metrics', '/version', '/v1/models', '/tokenize']) {
      expect((await fetch(`${server.url}${path}`)).status, path).toBe(401);
    }
    expect((await fetch(`${server.url}/health`, { headers: { authorization: `Bearer ${KEY_B}` } })).status).toBe(200);
    const open = await startTestServer(model.dir, { apiKeys: [KEY_A], publicHealth: true });
    try {
      expect((await fetch(`${open.url}/health`)).status).toBe(200);
      expect((await fetch(`${open.url}/version`)).status).toBe(200);
      expect((await fetch(`${open.url}/metrics`)).status).not.toBe(401);
      expect((await fetch(`${open.url}/v1/models`)).status).toBe(401);
    } finally {
      await open.close();
    }
  });

  it('are compared in constant time: timingSafeEqual over 32-byte digests, against every key', async () => {
    const spy = vi.mocked(timingSafeEqual);
    for (const key of [KEY_A, KEY_B, 'sk-wrong', 'x'.repeat(5000)]) {
      spy.mockClear();
      await complete(key, 'Hi');
      // One comparison per configured key, whichever matched, each over two equal-length digests.
      expect(spy).toHaveBeenCalledTimes(2);
      for (const [a, b] of spy.mock.calls) {
        expect((a as Buffer).length).toBe(32);
        expect((b as Buffer).length).toBe(32);
        expect((a as Buffer).includes(Buffer.from(key))).toBe(false);
      }
    }
  });
});

describe('the prefix cache, salted per API key', () => {
  it("is a hit for the tenant who sent a prompt, not for another tenant", async () => {
    const prompt = `${DOCUMENT}What did Lily love?`;
    expect(await cachedTokens(KEY_A, prompt)).toBe(0);
    // The same tenant again: its blocks are reused...
    expect(await cachedTokens(KEY_A, prompt)).toBeGreaterThanOrEqual(16);
    // ...another tenant's identical prompt does not hit them (no timing side channel)...
    expect(await cachedTokens(KEY_B, prompt)).toBe(0);
    // ...and gets its own.
    expect(await cachedTokens(KEY_B, prompt)).toBeGreaterThanOrEqual(16);
  });

  it('uses salts derived from the keys, never the keys themselves', () => {
    expect(seenSalts.has(cacheSaltForKey(KEY_A))).toBe(true);
    expect(seenSalts.has(cacheSaltForKey(KEY_B))).toBe(true);
    for (const salt of seenSalts) {
      expect(salt).not.toBeNull();
      expect(salt).not.toContain(KEY_A);
      expect(salt).not.toContain(KEY_B);
    }
    expect(cacheSaltForKey(KEY_A)).not.toBe(cacheSaltForKey(KEY_B));
  });
});
