/**
 * Prefix caching on the real stack: requests sharing a long prefix reuse its KV blocks (hits in the
 * stats) and produce exactly the outputs they produce with the cache off; tenants with different
 * cache salts never share blocks; a full waiting queue answers 429 with Retry-After.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultSamplingParams } from '../../src/sampling/params.ts';
import type { GenerateOutput } from '../../src/engine/inference-service.ts';
import { tinyModelDir } from '../fixtures/tiny-models.ts';
import { startTestServer } from './harness.ts';
import type { TestServer } from './harness.ts';

const modelDir = await tinyModelDir('tiny-llama');
const DOCUMENT = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park. '.repeat(2);
const QUESTIONS = ['Who was Lily?', 'Where did she play?', 'What did she love?', 'Was it a sunny day?', 'Tell me more.'];

async function complete(server: TestServer, prompt: string): Promise<{ text: string; cached: number }> {
  const response = await fetch(`${server.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt, max_tokens: 24, temperature: 0, ignore_eos: true }),
  });
  const body = (await response.json()) as { choices: { text: string }[]; usage: { prompt_tokens_details: { cached_tokens: number } } };
  expect(response.status, JSON.stringify(body)).toBe(200);
  return { text: body.choices[0]!.text, cached: body.usage.prompt_tokens_details.cached_tokens };
}

/** The document once, then every question at once (the RAG pattern). */
async function ragWorkload(server: TestServer) {
  const first = await complete(server, DOCUMENT + QUESTIONS[0]);
  const rest = await Promise.all(QUESTIONS.slice(1).map((q) => complete(server, DOCUMENT + q)));
  return [first, ...rest];
}

describe('prefix caching', () => {
  let cached: TestServer;
  let uncached: TestServer;
  beforeAll(async () => {
    cached = await startTestServer(modelDir, { enablePrefixCaching: true });
    uncached = await startTestServer(modelDir, { enablePrefixCaching: false });
  });
  afterAll(async () => {
    await cached?.close();
    await uncached?.close();
  });

  it('reuses the shared prefix and changes no output', async () => {
    const withCache = await ragWorkload(cached);
    const withoutCache = await ragWorkload(uncached);
    expect(withCache.map((r) => r.text)).toEqual(withoutCache.map((r) => r.text));
    expect(withoutCache.every((r) => r.cached === 0)).toBe(true);
    expect(withCache[0]!.cached).toBe(0);
    for (const r of withCache.slice(1)) expect(r.cached).toBeGreaterThanOrEqual(16);
    const stats = cached.runtime.service.stats();
    expect(stats.prefixCacheHits).toBe(withCache.reduce((sum, r) => sum + r.cached, 0));
    expect(uncached.runtime.service.stats().prefixCacheHits).toBe(0);
  });

  it('does not share blocks across cache salts (tenants)', async () => {
    const service = cached.runtime.service;
    const promptTokenIds = await service.encode(DOCUMENT + 'A question from tenant one.');
    const run = async (requestId: string, cacheSalt: string) => {
      let last: GenerateOutput | null = null;
      for await (const output of service.generate({ requestId, promptTokenIds, cacheSalt, params: defaultSamplingParams({ temperature: 0, maxTokens: 4 }) })) last = output;
      return last!;
    };
    expect((await run('t1-a', 'tenant-1')).usage.cachedPromptTokens).toBe(0);
    expect((await run('t2-a', 'tenant-2')).usage.cachedPromptTokens).toBe(0);
    expect((await run('t1-b', 'tenant-1')).usage.cachedPromptTokens).toBeGreaterThan(0);
  });
});

describe('admission', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(modelDir, { maxNumSeqs: 1, maxNumBatchedTokens: 256, maxQueuedRequests: 2 });
  });
  afterAll(async () => server?.close());

  it('answers 429 with Retry-After when the waiting queue is full, and serves the admitted ones', async () => {
    const send = () =>
      fetch(`${server.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: 'Once upon a time', max_tokens: 48, ignore_eos: true }),
      });
    const responses = await Promise.all(Array.from({ length: 8 }, send));
    const refused = responses.filter((r) => r.status === 429);
    const served = responses.filter((r) => r.status === 200);
    expect(refused.length).toBeGreaterThan(0);
    expect(served.length).toBeGreaterThanOrEqual(3);
    expect(refused.length + served.length).toBe(8);
    for (const r of refused) {
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(((await r.json()) as { error: { type: string } }).error.type).toBeDefined();
    }
    for (const r of served) expect(((await r.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens).toBe(48);
  });
});
