import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import { postJson, startTestServer, type TestServer } from './harness.ts';

const REPLY = 'Hello there, world!';
const REPLY_WORDS = ['Hello', ' there,', ' world!'];

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ reply: REPLY, cachedPromptTokens: 2 });
});
afterAll(() => t.close());
beforeEach(() => {
  t.service.reply = REPLY;
  t.service.generations.length = 0;
  t.service.renderedChats.length = 0;
});

const messages = [
  { role: 'system' as const, content: 'Be brief.' },
  { role: 'user' as const, content: 'Say hello' },
];

describe('POST /v1/chat/completions (non-streaming, OpenAI SDK)', () => {
  it('returns a chat.completion with every field a client reads', async () => {
    const before = Math.floor(Date.now() / 1000);
    const completion = await t.client.chat.completions.create({ model: 'fake-model', messages });

    expect(completion.id).toMatch(/^chatcmpl-[0-9a-f]{32}$/);
    expect(completion.object).toBe('chat.completion');
    expect(completion.created).toBeGreaterThanOrEqual(before);
    expect(completion.created).toBeLessThanOrEqual(Math.floor(Date.now() / 1000));
    expect(completion.model).toBe('fake-model');
    expect(completion.system_fingerprint).toMatch(/^fp_[0-9a-f]{10}$/);
    expect(completion.choices).toHaveLength(1);
    const [choice] = completion.choices;
    expect(choice!.index).toBe(0);
    expect(choice!.message.role).toBe('assistant');
    expect(choice!.message.content).toBe(REPLY);
    expect(choice!.finish_reason).toBe('stop');
    expect(choice!.logprobs).toBeNull();

    const request = t.service.generations[0]!.request;
    const promptTokens = request.promptTokenIds.length;
    expect(completion.usage).toEqual({
      prompt_tokens: promptTokens,
      completion_tokens: REPLY_WORDS.length,
      total_tokens: promptTokens + REPLY_WORDS.length,
      prompt_tokens_details: { cached_tokens: 2 },
    });
    // The engine got the request under the completion's id and the rendered template.
    expect(request.requestId).toBe(completion.id);
    expect(t.service.renderedChats[0]!.messages).toEqual(messages);
    expect(t.service.renderedChats[0]!.options.addGenerationPrompt).toBe(true);
  });

  it('defaults max tokens to the rest of the context window and samples with OpenAI defaults', async () => {
    await t.client.chat.completions.create({ model: 'fake-model', messages });
    const { params, promptTokenIds, priority, signal } = t.service.generations[0]!.request;
    expect(params.maxTokens).toBe(t.service.model.maxModelLen - promptTokenIds.length);
    expect(params).toMatchObject({ temperature: 1, topP: 1, topK: 0, minP: 0, minTokens: 0, stop: [], stopTokenIds: [], ignoreEos: false, logprobs: null, skipSpecialTokens: true });
    expect(priority).toBe(0);
    expect(signal).toBeInstanceOf(AbortSignal);
  });

  it("truncate_prompt_tokens (vLLM) keeps the rendered prompt's last k tokens", async () => {
    await t.client.chat.completions.create({ model: 'fake-model', messages });
    const whole = t.service.generations[0]!.request.promptTokenIds;
    expect(whole.length).toBeGreaterThan(3);
    await postJson(`${t.url}/v1/chat/completions`, { messages, truncate_prompt_tokens: 3 });
    expect(t.service.generations[1]!.request.promptTokenIds).toEqual(whole.slice(-3));
  });

  it('draws a fresh random seed when the client sends none', async () => {
    await t.client.chat.completions.create({ model: 'fake-model', messages });
    await t.client.chat.completions.create({ model: 'fake-model', messages });
    const [first, second] = t.service.generations.map((g) => g.request.params.seed);
    expect(typeof first).toBe('bigint');
    expect(first).not.toBe(second);
  });

  it('maps OpenAI and vLLM sampling fields onto SamplingParams', async () => {
    const response = await postJson(`${t.url}/v1/chat/completions`, {
      model: 'fake-model',
      messages,
      temperature: 0.25,
      top_p: 0.5,
      seed: -1,
      stop: 'zzz',
      max_tokens: 7,
      top_k: -1,
      min_p: 0.05,
      ignore_eos: true,
      min_tokens: 3,
      stop_token_ids: [5, 6],
      skip_special_tokens: false,
      priority: -2,
      user: 'someone',
      n: 1,
      presence_penalty: 0,
      some_future_field: { ignored: true },
    });
    expect(response.status).toBe(200);
    const { params, priority } = t.service.generations[0]!.request;
    expect(params).toMatchObject({
      temperature: 0.25,
      topP: 0.5,
      topK: 0,
      minP: 0.05,
      seed: 2n ** 64n - 1n,
      maxTokens: 7,
      minTokens: 3,
      stop: ['zzz'],
      stopTokenIds: [5, 6],
      ignoreEos: true,
      skipSpecialTokens: false,
    });
    expect(priority).toBe(-2);
  });

  it('prefers max_completion_tokens over max_tokens and rejects a limit past the context window', async () => {
    await t.client.chat.completions.create({ model: 'fake-model', messages, max_tokens: 5, max_completion_tokens: 9 });
    expect(t.service.generations[0]!.request.params.maxTokens).toBe(9);
    const attempt = t.client.chat.completions.create({ model: 'fake-model', messages, max_completion_tokens: 1_000_000 });
    await expect(attempt).rejects.toMatchObject({ status: 400, param: 'max_completion_tokens', code: 'context_length_exceeded' });
    expect(t.service.generations).toHaveLength(1);
  });

  it("reports finish_reason 'length' when max_tokens cuts the reply", async () => {
    const completion = await t.client.chat.completions.create({ model: 'fake-model', messages, max_tokens: 2 });
    expect(completion.choices[0]!.message.content).toBe('Hello there,');
    expect(completion.choices[0]!.finish_reason).toBe('length');
    expect(completion.usage!.completion_tokens).toBe(2);
  });

  it("reports finish_reason 'stop' and vLLM's stop_reason for a stop string", async () => {
    const completion = await t.client.chat.completions.create({ model: 'fake-model', messages, stop: [' world', 'never'] });
    const choice = completion.choices[0]!;
    expect(choice.message.content).toBe('Hello there,');
    expect(choice.finish_reason).toBe('stop');
    expect((choice as unknown as { stop_reason: unknown }).stop_reason).toBe(' world');
    expect(t.service.generations[0]!.request.params.stop).toEqual([' world', 'never']);
  });

  it('flattens text content parts and passes template options through', async () => {
    const response = await postJson(`${t.url}/v1/chat/completions`, {
      model: 'fake-model',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'first' }, { type: 'text', text: 'second' }] }],
      add_generation_prompt: false,
      chat_template_kwargs: { enable_thinking: false },
    });
    expect(response.status).toBe(200);
    const rendered = t.service.renderedChats[0]!;
    expect(rendered.messages).toEqual([{ role: 'user', content: 'first\nsecond' }]);
    expect(rendered.options).toEqual({ addGenerationPrompt: false, templateKwargs: { enable_thinking: false } });
  });

  it('accepts developer and tool roles and an assistant turn with tool_calls and no content', async () => {
    const response = await postJson(`${t.url}/v1/chat/completions`, {
      messages: [
        { role: 'developer', content: 'rules' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{}' } }] },
        { role: 'tool', content: '42', tool_call_id: 'call_1' },
      ],
    });
    expect(response.status).toBe(200);
    const rendered = t.service.renderedChats[0]!.messages;
    expect(rendered.map((m) => m.role)).toEqual(['developer', 'assistant', 'tool']);
    expect(rendered[1]!.content).toBeNull();
    expect(rendered[2]!.tool_call_id).toBe('call_1');
  });

  it('rejects a prompt that fills the context window with a vLLM-style 400', async () => {
    const small = await startTestServer({ model: { maxModelLen: 8 } });
    try {
      const response = await postJson(`${small.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'one two three four five six seven eight' }] });
      expect(response.status).toBe(400);
      const body = (await response.json()) as { error: { message: string; param: string; code: string; type: string } };
      expect(body.error.type).toBe('invalid_request_error');
      expect(body.error.param).toBe('messages');
      expect(body.error.code).toBe('context_length_exceeded');
      expect(body.error.message).toMatch(/^This model's maximum context length is 8 tokens\. However, your request has \d+ input tokens\./);
      expect(small.service.generations).toHaveLength(0);
    } finally {
      await small.close();
    }
  });
});

describe('POST /v1/chat/completions (streaming, OpenAI SDK)', () => {
  async function collect(stream: AsyncIterable<ChatCompletionChunk>): Promise<ChatCompletionChunk[]> {
    const chunks: ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    return chunks;
  }

  it('streams the role chunk, content deltas, the finish chunk and the usage chunk', async () => {
    const stream = await t.client.chat.completions.create({ model: 'fake-model', messages, stream: true, stream_options: { include_usage: true } });
    const chunks = await collect(stream);

    const [first, ...rest] = chunks;
    expect(first!.choices[0]!.delta).toEqual({ role: 'assistant', content: '' });
    expect(first!.choices[0]!.finish_reason).toBeNull();

    const contentChunks = rest.filter((chunk) => chunk.choices[0]?.delta.content);
    expect(contentChunks.map((chunk) => chunk.choices[0]!.delta.content)).toEqual(REPLY_WORDS);

    const finishChunk = chunks.at(-2)!;
    expect(finishChunk.choices[0]!.delta).toEqual({});
    expect(finishChunk.choices[0]!.finish_reason).toBe('stop');

    const usageChunk = chunks.at(-1)!;
    expect(usageChunk.choices).toEqual([]);
    const promptTokens = t.service.generations[0]!.request.promptTokenIds.length;
    expect(usageChunk.usage).toEqual({
      prompt_tokens: promptTokens,
      completion_tokens: 3,
      total_tokens: promptTokens + 3,
      prompt_tokens_details: { cached_tokens: 2 },
    });

    for (const chunk of chunks) {
      expect(chunk.id).toBe(first!.id);
      expect(chunk.id).toMatch(/^chatcmpl-[0-9a-f]{32}$/);
      expect(chunk.object).toBe('chat.completion.chunk');
      expect(chunk.model).toBe('fake-model');
      expect(chunk.created).toBe(first!.created);
      expect(chunk.system_fingerprint).toMatch(/^fp_/);
      if (chunk !== usageChunk) expect(chunk.usage).toBeNull();
    }
    expect(chunks).toHaveLength(1 + REPLY_WORDS.length + 2);
  });

  it('leaves usage out of the chunks when include_usage is not asked for', async () => {
    const chunks = await collect(await t.client.chat.completions.create({ model: 'fake-model', messages, stream: true }));
    expect(chunks.every((chunk) => !('usage' in chunk))).toBe(true);
    expect(chunks.every((chunk) => chunk.choices.length === 1)).toBe(true);
    expect(chunks.map((chunk) => chunk.choices[0]!.delta.content ?? '').join('')).toBe(REPLY);
  });

  it("ends a max_tokens-limited stream with finish_reason 'length'", async () => {
    const chunks = await collect(await t.client.chat.completions.create({ model: 'fake-model', messages, stream: true, max_tokens: 1 }));
    expect(chunks.map((chunk) => chunk.choices[0]!.delta.content ?? '').join('')).toBe('Hello');
    expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe('length');
  });
});

describe('chat logprobs', () => {
  const bytesOf = (text: string) => Array.from(Buffer.from(text, 'utf8'));

  it('returns logprobs.content with token, logprob, bytes and top_logprobs', async () => {
    const completion = await t.client.chat.completions.create({ model: 'fake-model', messages, logprobs: true, top_logprobs: 2 });
    expect(t.service.generations[0]!.request.params.logprobs).toBe(2);
    const content = completion.choices[0]!.logprobs!.content!;
    expect(content.map((entry) => entry.token)).toEqual(REPLY_WORDS);
    content.forEach((entry, position) => {
      expect(entry.logprob).toBeCloseTo(-0.1 * (position + 1));
      expect(entry.bytes).toEqual(bytesOf(REPLY_WORDS[position]!));
      expect(entry.top_logprobs).toHaveLength(2);
      expect(entry.top_logprobs[0]).toEqual({ token: entry.token, logprob: entry.logprob, bytes: entry.bytes });
      expect(entry.top_logprobs[1]!.token).toBe('<alt10>');
      expect(entry.top_logprobs[1]!.logprob).toBeCloseTo(entry.logprob - 1);
      expect(entry.top_logprobs[1]!.bytes).toEqual(bytesOf('<alt10>'));
    });
  });

  it('returns no alternatives for logprobs without top_logprobs', async () => {
    const completion = await t.client.chat.completions.create({ model: 'fake-model', messages, logprobs: true });
    expect(t.service.generations[0]!.request.params.logprobs).toBe(0);
    const content = completion.choices[0]!.logprobs!.content!;
    expect(content).toHaveLength(3);
    expect(content.every((entry) => entry.top_logprobs.length === 0)).toBe(true);
  });

  it('renders tokens as token_id:<id> with return_tokens_as_token_ids', async () => {
    const response = await postJson(`${t.url}/v1/chat/completions`, { messages, logprobs: true, top_logprobs: 1, return_tokens_as_token_ids: true });
    const body = (await response.json()) as { choices: Array<{ logprobs: { content: Array<{ token: string; bytes: number[]; top_logprobs: Array<{ token: string }> }> } }> };
    const ids = REPLY_WORDS.map((word) => t.service.wordTokenId(word));
    const content = body.choices[0]!.logprobs.content;
    expect(content.map((entry) => entry.token)).toEqual(ids.map((id) => `token_id:${id}`));
    expect(content[0]!.bytes).toEqual(bytesOf(`token_id:${ids[0]}`));
    expect(content[0]!.top_logprobs[0]!.token).toBe(`token_id:${ids[0]}`);
  });

  it('streams one logprobs entry per content chunk', async () => {
    const stream = await t.client.chat.completions.create({ model: 'fake-model', messages, stream: true, logprobs: true, top_logprobs: 1 });
    const tokens: string[] = [];
    for await (const chunk of stream) {
      const choice = chunk.choices[0]!;
      if (choice.delta.content) {
        expect(choice.logprobs!.content).toHaveLength(1);
        expect(choice.logprobs!.content![0]!.token).toBe(choice.delta.content);
        expect(choice.logprobs!.content![0]!.top_logprobs).toHaveLength(1);
        tokens.push(choice.logprobs!.content![0]!.token);
      } else {
        expect(choice.logprobs).toBeNull();
      }
    }
    expect(tokens).toEqual(REPLY_WORDS);
  });

  it("gives a byte token's own bytes (not those of its \\xNN display text), as OpenAI does", async () => {
    t.service.byteTokens.set(7, 0xe2);
    const euro = t.service.wordTokenId('€');
    t.service.script = [
      { text: '', tokenIds: [7], logprobs: [{ tokenId: 7, logprob: -0.5, top: [{ tokenId: 7, logprob: -0.5 }] }] },
      { text: '€', tokenIds: [euro], logprobs: [{ tokenId: euro, logprob: -0.1, top: [] }], finishReason: 'stop' },
    ];
    try {
      const completion = await t.client.chat.completions.create({ model: 'fake-model', messages, logprobs: true, top_logprobs: 1 });
      const [first, second] = completion.choices[0]!.logprobs!.content!;
      expect(first).toEqual({ token: '\\xe2', logprob: -0.5, bytes: [0xe2], top_logprobs: [{ token: '\\xe2', logprob: -0.5, bytes: [0xe2] }] });
      expect(second!.bytes).toEqual([0xe2, 0x82, 0xac]);
    } finally {
      t.service.script = null;
      t.service.byteTokens.clear();
    }
  });

  it('reports an impossible token as -9999 instead of breaking JSON with -Infinity', async () => {
    const id = t.service.wordTokenId('x');
    t.service.script = [{ text: 'x', tokenIds: [id], logprobs: [{ tokenId: id, logprob: -Infinity, top: [] }], finishReason: 'stop' }];
    try {
      const completion = await t.client.chat.completions.create({ model: 'fake-model', messages, logprobs: true });
      expect(completion.choices[0]!.logprobs!.content![0]!.logprob).toBe(-9999);
    } finally {
      t.service.script = null;
    }
  });
});
