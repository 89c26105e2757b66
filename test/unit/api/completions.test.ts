import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Completion } from 'openai/resources/completions';
import { BOS_TOKEN_ID } from '../../helpers/fake-service.ts';
import { postJson, startTestServer, type TestServer } from './harness.ts';

const REPLY = 'one two three four';
const REPLY_WORDS = ['one', ' two', ' three', ' four'];

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ reply: REPLY });
});
afterAll(() => t.close());
beforeEach(() => {
  t.service.reply = REPLY;
  t.service.generations.length = 0;
  t.service.encodedTexts.length = 0;
});

describe('POST /v1/completions (non-streaming, OpenAI SDK)', () => {
  it('returns a text_completion with every field a client reads', async () => {
    const before = Math.floor(Date.now() / 1000);
    const completion = await t.client.completions.create({ model: 'fake-model', prompt: 'Count: zero', max_tokens: 50 });

    expect(completion.id).toMatch(/^cmpl-[0-9a-f]{32}$/);
    expect(completion.object).toBe('text_completion');
    expect(completion.created).toBeGreaterThanOrEqual(before);
    expect(completion.model).toBe('fake-model');
    expect(completion.system_fingerprint).toMatch(/^fp_[0-9a-f]{10}$/);
    expect(completion.choices).toHaveLength(1);
    const [choice] = completion.choices;
    expect(choice).toMatchObject({ index: 0, text: REPLY, finish_reason: 'stop', logprobs: null });

    // The prompt was tokenized by the service (with BOS) and sent as is.
    expect(t.service.encodedTexts).toEqual(['Count: zero']);
    const request = t.service.generations[0]!.request;
    expect(request.promptTokenIds[0]).toBe(BOS_TOKEN_ID);
    expect(request.promptTokenIds).toHaveLength(3);
    expect(request.requestId).toBe(completion.id);
    expect(completion.usage).toEqual({
      prompt_tokens: 3,
      completion_tokens: 4,
      total_tokens: 7,
      prompt_tokens_details: { cached_tokens: 0 },
    });
  });

  it('defaults max_tokens to 16 like OpenAI', async () => {
    await t.client.completions.create({ model: 'fake-model', prompt: 'hi' });
    expect(t.service.generations[0]!.request.params.maxTokens).toBe(16);
  });

  it('rejects max_tokens past the context window and fits the default into what is left', async () => {
    const small = await startTestServer({ model: { maxModelLen: 10 } });
    try {
      const tooMany = await postJson(`${small.url}/v1/completions`, { prompt: 'a b c', max_tokens: 7 });
      expect(tooMany.status).toBe(400);
      expect(((await tooMany.json()) as { error: { param: string; message: string } }).error).toMatchObject({
        param: 'max_tokens',
        message: "This model's maximum context length is 10 tokens. However, you requested 11 tokens (4 in the prompt, 7 in the completion). Please reduce the length of the prompt or completion.",
      });
      await small.client.completions.create({ model: 'fake-model', prompt: 'a b c', max_tokens: 6 });
      expect(small.service.generations[0]!.request.params.maxTokens).toBe(6);
      await small.client.completions.create({ model: 'fake-model', prompt: 'a b c' });
      expect(small.service.generations[1]!.request.params.maxTokens).toBe(10 - 4);
      const response = await postJson(`${small.url}/v1/completions`, { prompt: Array.from({ length: 10 }, (_, i) => i + 3) });
      expect(response.status).toBe(400);
      const body = (await response.json()) as { error: { message: string; param: string } };
      expect(body.error.param).toBe('prompt');
      expect(body.error.message).toBe(
        "This model's maximum context length is 10 tokens. However, your request has 10 input tokens. Please reduce the length of the input prompt.",
      );
    } finally {
      await small.close();
    }
  });

  it('accepts a prompt as an array of one string or as token ids', async () => {
    await t.client.completions.create({ model: 'fake-model', prompt: ['Count: zero'] });
    expect(t.service.encodedTexts).toEqual(['Count: zero']);
    await t.client.completions.create({ model: 'fake-model', prompt: [7, 8, 9] });
    expect(t.service.generations[1]!.request.promptTokenIds).toEqual([7, 8, 9]);
    expect(t.service.encodedTexts).toHaveLength(1);
  });

  it("reports 'length' when max_tokens cuts the text", async () => {
    const completion = await t.client.completions.create({ model: 'fake-model', prompt: 'x', max_tokens: 2 });
    expect(completion.choices[0]!.text).toBe('one two');
    expect(completion.choices[0]!.finish_reason).toBe('length');
  });

  it("truncate_prompt_tokens (vLLM) keeps the prompt's last k tokens, before the context check; -1 = max_model_len", async () => {
    const small = await startTestServer({ model: { maxModelLen: 10 } });
    try {
      const ids = Array.from({ length: 12 }, (_, i) => i + 3);
      await postJson(`${small.url}/v1/completions`, { prompt: ids, max_tokens: 2, truncate_prompt_tokens: 5 });
      expect(small.service.generations[0]!.request.promptTokenIds).toEqual(ids.slice(-5));
      // Shorter than k: unchanged. Usage counts what the model saw.
      const short = await postJson(`${small.url}/v1/completions`, { prompt: [7, 8], max_tokens: 2, truncate_prompt_tokens: 5 });
      expect(small.service.generations[1]!.request.promptTokenIds).toEqual([7, 8]);
      expect(((await short.json()) as { usage: { prompt_tokens: number } }).usage.prompt_tokens).toBe(2);
      // -1: max_model_len tokens, which leaves no room for output: the context error, about the kept prompt.
      const whole = await postJson(`${small.url}/v1/completions`, { prompt: ids, truncate_prompt_tokens: -1 });
      expect(whole.status).toBe(400);
      expect(((await whole.json()) as { error: { message: string } }).error.message).toContain('your request has 10 input tokens');
      // echo shows the text of the tokens the model saw.
      const echoed = await postJson(`${small.url}/v1/completions`, { prompt: 'a b c d e', max_tokens: 1, truncate_prompt_tokens: 2, echo: true });
      expect(((await echoed.json()) as { choices: { text: string }[] }).choices[0]!.text).toMatch(/^ d e\S/);
      for (const bad of [0, -2, 1.5]) {
        const response = await postJson(`${small.url}/v1/completions`, { prompt: 'x', truncate_prompt_tokens: bad });
        expect(response.status, String(bad)).toBe(400);
        expect(((await response.json()) as { error: { param: string } }).error.param).toBe('truncate_prompt_tokens');
      }
    } finally {
      await small.close();
    }
  });

  it('maps the shared sampling fields', async () => {
    await t.client.completions.create({ model: 'fake-model', prompt: 'x', temperature: 0, top_p: 0.3, seed: 7, stop: ['\n\n'] });
    expect(t.service.generations[0]!.request.params).toMatchObject({ temperature: 0, topP: 0.3, seed: 7n, stop: ['\n\n'] });
  });
});

describe('POST /v1/completions (streaming, OpenAI SDK)', () => {
  async function collect(stream: AsyncIterable<Completion>): Promise<Completion[]> {
    const chunks: Completion[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    return chunks;
  }

  it('streams text_completion chunks, a finish chunk and a usage chunk', async () => {
    const chunks = await collect(
      await t.client.completions.create({ model: 'fake-model', prompt: 'x', stream: true, stream_options: { include_usage: true } }),
    );
    expect(chunks).toHaveLength(REPLY_WORDS.length + 2);
    expect(chunks.slice(0, REPLY_WORDS.length).map((chunk) => chunk.choices[0]!.text)).toEqual(REPLY_WORDS);
    expect(chunks.slice(0, REPLY_WORDS.length).every((chunk) => chunk.choices[0]!.finish_reason === null)).toBe(true);
    const finish = chunks.at(-2)!;
    expect(finish.choices[0]).toMatchObject({ index: 0, text: '', finish_reason: 'stop' });
    const usage = chunks.at(-1)!;
    expect(usage.choices).toEqual([]);
    expect(usage.usage).toEqual({ prompt_tokens: 2, completion_tokens: 4, total_tokens: 6, prompt_tokens_details: { cached_tokens: 0 } });
    for (const chunk of chunks) {
      expect(chunk.object).toBe('text_completion');
      expect(chunk.id).toBe(chunks[0]!.id);
      expect(chunk.id).toMatch(/^cmpl-/);
      expect(chunk.model).toBe('fake-model');
      if (chunk !== usage) expect(chunk.usage).toBeNull();
    }
  });

  it('leaves usage out without include_usage', async () => {
    const chunks = await collect(await t.client.completions.create({ model: 'fake-model', prompt: 'x', stream: true }));
    expect(chunks.every((chunk) => !('usage' in chunk))).toBe(true);
    expect(chunks.map((chunk) => chunk.choices[0]!.text).join('')).toBe(REPLY);
  });
});

describe('legacy completions logprobs', () => {
  it('returns tokens, token_logprobs, top_logprobs (with the chosen token) and text_offset', async () => {
    const completion = await t.client.completions.create({ model: 'fake-model', prompt: 'x', logprobs: 2 });
    expect(t.service.generations[0]!.request.params.logprobs).toBe(2);
    const logprobs = completion.choices[0]!.logprobs!;
    expect(logprobs.tokens).toEqual(REPLY_WORDS);
    expect(logprobs.token_logprobs!.map((value) => Number(value.toFixed(6)))).toEqual([-0.1, -0.2, -0.3, -0.4]);
    expect(logprobs.text_offset).toEqual([0, 3, 7, 13]);
    logprobs.top_logprobs!.forEach((top, position) => {
      const chosen = REPLY_WORDS[position]!;
      expect(Object.keys(top).sort()).toEqual(['<alt10>', chosen].sort());
      expect(top[chosen]).toBeCloseTo(-0.1 * (position + 1));
      expect(top['<alt10>']).toBeCloseTo(-0.1 * (position + 1) - 1);
    });
  });

  it('returns only the chosen token for logprobs: 0', async () => {
    const completion = await t.client.completions.create({ model: 'fake-model', prompt: 'x', logprobs: 0 });
    expect(t.service.generations[0]!.request.params.logprobs).toBe(0);
    const logprobs = completion.choices[0]!.logprobs!;
    expect(logprobs.top_logprobs).toEqual(REPLY_WORDS.map((word, i) => ({ [word]: logprobs.token_logprobs![i] })));
  });

  it('continues text_offset across streamed chunks', async () => {
    const stream = await t.client.completions.create({ model: 'fake-model', prompt: 'x', logprobs: 1, stream: true });
    const offsets: number[] = [];
    const tokens: string[] = [];
    for await (const chunk of stream) {
      const logprobs = chunk.choices[0]!.logprobs;
      if (!logprobs) continue;
      offsets.push(...logprobs.text_offset!);
      tokens.push(...logprobs.tokens!);
    }
    expect(tokens).toEqual(REPLY_WORDS);
    expect(offsets).toEqual([0, 3, 7, 13]);
  });

  it('renders tokens as token_id:<id> with return_tokens_as_token_ids', async () => {
    const response = await postJson(`${t.url}/v1/completions`, { prompt: 'x', logprobs: 1, return_tokens_as_token_ids: true });
    const body = (await response.json()) as { choices: Array<{ logprobs: { tokens: string[]; top_logprobs: Array<Record<string, number>> } }> };
    const ids = REPLY_WORDS.map((word) => t.service.wordTokenId(word));
    expect(body.choices[0]!.logprobs.tokens).toEqual(ids.map((id) => `token_id:${id}`));
    expect(Object.keys(body.choices[0]!.logprobs.top_logprobs[0]!)).toEqual([`token_id:${ids[0]}`]);
  });
});
