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

  it('leaves /health and /version open for probes', async () => {
    expect((await fetch(`${t.url}/health`)).status).toBe(200);
    expect((await fetch(`${t.url}/version`)).status).toBe(200);
  });
});
