import OpenAI, { AuthenticationError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './harness.ts';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ reply: 'ok' }, { apiKey: 'sk-secret' });
});
afterAll(() => t.close());

describe('apiKey option (vLLM --api-key)', () => {
  it('rejects /v1 requests with a wrong or missing key with a 401 in OpenAI shape', async () => {
    await expect(t.client.models.list()).rejects.toBeInstanceOf(AuthenticationError);
    const missing = await fetch(`${t.url}/v1/models`);
    expect(missing.status).toBe(401);
    expect(((await missing.json()) as { error: { code: string; type: string } }).error).toMatchObject({ code: 'invalid_api_key', type: 'invalid_request_error' });
    expect(t.service.generations).toHaveLength(0);
  });

  it('serves requests that carry the key as a bearer token', async () => {
    const client = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: 'sk-secret', maxRetries: 0 });
    const completion = await client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }] });
    expect(completion.choices[0]!.message.content).toBe('ok');
  });

  it('guards every route, /health and /version included, unless told otherwise', async () => {
    for (const path of ['/health', '/version', '/metrics', '/tokenize', '/no-such-route']) {
      const response = await fetch(`${t.url}${path}`);
      expect(response.status, path).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe('Bearer');
    }
    expect((await fetch(`${t.url}/health`, { headers: { authorization: 'Bearer sk-secret' } })).status).toBe(200);
  });
});

describe('several keys and --public-health', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ reply: 'ok' }, { apiKeys: ['key-one', 'key-two'], publicHealth: true });
  });
  afterAll(() => s.close());

  it('accepts each configured key and nothing else (not a prefix, not the other case, not empty)', async () => {
    const status = async (authorization?: string) =>
      (await fetch(`${s.url}/v1/models`, authorization === undefined ? {} : { headers: { authorization } })).status;
    expect(await status('Bearer key-one')).toBe(200);
    expect(await status('bearer key-two')).toBe(200);
    for (const bad of ['Bearer key-', 'Bearer key-one2', 'Bearer KEY-ONE', 'Bearer ', 'key-one', 'Basic a2V5LW9uZQ==', 'Bearer key-one,key-two']) {
      expect(await status(bad), bad).toBe(401);
    }
    expect(await status()).toBe(401);
  });

  it('serves /health, /metrics and /version without a key when publicHealth is set', async () => {
    expect((await fetch(`${s.url}/health`)).status).toBe(200);
    expect((await fetch(`${s.url}/version`)).status).toBe(200);
    expect((await fetch(`${s.url}/metrics`)).status).not.toBe(401);
    expect((await fetch(`${s.url}/v1/models`)).status).toBe(401);
  });
});
