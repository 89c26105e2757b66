import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NotFoundError } from 'openai';
import { ServiceError } from '../../../src/engine/inference-service.ts';
import packageJson from '../../../package.json' with { type: 'json' };
import { startTestServer, type TestServer } from './harness.ts';

const MODEL = { id: 'Qwen/Qwen2.5-0.5B-Instruct', root: '/models/qwen', created: 1_712_345_678, maxModelLen: 32768 };

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ model: MODEL });
});
afterAll(() => t.close());

describe('GET /v1/models', () => {
  it('lists the served model with OpenAI fields and vLLM extras (OpenAI SDK)', async () => {
    const page = await t.client.models.list();
    expect(page.data).toEqual([
      { id: MODEL.id, object: 'model', created: MODEL.created, owned_by: 'updraft', root: MODEL.root, parent: null, max_model_len: MODEL.maxModelLen },
    ]);
    const raw = (await (await fetch(`${t.url}/v1/models`)).json()) as { object: string };
    expect(raw.object).toBe('list');
  });

  it('retrieves a model whose id contains a slash, encoded (SDK) or not (curl)', async () => {
    const model = await t.client.models.retrieve(MODEL.id);
    expect(model).toMatchObject({ id: MODEL.id, object: 'model', created: MODEL.created, owned_by: 'updraft' });
    const literal = await fetch(`${t.url}/v1/models/${MODEL.id}`);
    expect(literal.status).toBe(200);
    expect(((await literal.json()) as { id: string }).id).toBe(MODEL.id);
  });

  it('answers an unknown model with a 404 the SDK maps to NotFoundError', async () => {
    await expect(t.client.models.retrieve('gpt-4o')).rejects.toBeInstanceOf(NotFoundError);
    await expect(t.client.models.retrieve('gpt-4o')).rejects.toMatchObject({ status: 404, code: 'model_not_found', param: 'model' });
  });

  it('uses the served model name in completions and accepts requests that omit model (vLLM)', async () => {
    const completion = await t.client.completions.create({ model: MODEL.id, prompt: 'x' });
    expect(completion.model).toBe(MODEL.id);
    const response = await fetch(`${t.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'x' }) });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { model: string }).model).toBe(MODEL.id);
  });
});

describe('GET /health and /version', () => {
  it('health is 200 with an empty body while the service can serve', async () => {
    const response = await fetch(`${t.url}/health`);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('');
    expect((await fetch(`${t.url}/health`, { method: 'HEAD' })).status).toBe(200);
  });

  it("health is 503 in OpenAI's error shape when the service is unavailable", async () => {
    t.service.statsError = new ServiceError('unavailable', 'The engine is still loading.');
    try {
      const response = await fetch(`${t.url}/health`);
      expect(response.status).toBe(503);
      expect(((await response.json()) as { error: { message: string } }).error.message).toBe('The engine is still loading.');
    } finally {
      t.service.statsError = null;
    }
  });

  it("version reports package.json's version by default", async () => {
    expect(await (await fetch(`${t.url}/version`)).json()).toEqual({ version: packageJson.version });
  });

  it('version and system_fingerprint can be set by the caller', async () => {
    const custom = await startTestServer({}, { version: '9.9.9-test', systemFingerprint: 'fp_custom' });
    try {
      expect(await (await fetch(`${custom.url}/version`)).json()).toEqual({ version: '9.9.9-test' });
      const completion = await custom.client.completions.create({ model: 'fake-model', prompt: 'x' });
      expect(completion.system_fingerprint).toBe('fp_custom');
    } finally {
      await custom.close();
    }
  });
});
