/**
 * OpenAI API conformance: a running server (real model, engine and kernels on the CPU backend) driven
 * by the official `openai` npm client and by raw SSE parsed with eventsource-parser, checking every
 * field a client reads: chat and completions, streaming and not, n > 1 (sharing the prompt's KV
 * blocks), seeds (alone and under batching), batched prompts, echo, logprobs, tools, structured output,
 * logit_bias / penalties / min_tokens, the extra routes and errors.
 *
 * Tiny models do not write tool calls, so the parsing cases run against a server over the fake service
 * scripting the model's text; the real model checks that tools reach its template and that a request
 * with tools is served.
 */
import { connect } from 'node:net';
import { join } from 'node:path';
import OpenAI, { BadRequestError, NotFoundError } from 'openai';
import type { ChatCompletionChunk, ChatCompletionTool } from 'openai/resources/chat/completions';
import { createParser } from 'eventsource-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import packageJson from '../../package.json' with { type: 'json' };
import { createApp } from '../../src/api/app.ts';
import { startServer, type RunningServer } from '../../src/api/server.ts';
import { tinyModelDir } from '../fixtures/tiny-models.ts';
import { FakeInferenceService } from '../helpers/fake-service.ts';
import { HAS_SHARED_MODELS, SHARED_MODELS } from '../helpers/paths.ts';
import { startTestServer, type TestServer } from './harness.ts';

// stories260K writes real stories; without ../shared the committed tiny model stands in.
const modelDir = HAS_SHARED_MODELS ? join(SHARED_MODELS, 'stories260K') : await tinyModelDir('tiny-llama');
const MODEL = 'updraft-conformance';
/** A Hermes-style template that renders tools (the tiny models' own templates ignore them). */
const TOOLS_TEMPLATE =
  '{{ bos_token }}{% if tools %}Tools: {% for t in tools %}{{ t.function.name }} {% endfor %}' +
  'Call one as <tool_call>{"name": ..., "arguments": ...}</tool_call>\n{% endif %}{% for m in messages %}{{ m.content }}\n{% endfor %}';

let server: TestServer;
let client: OpenAI;
beforeAll(async () => {
  server = await startTestServer(modelDir, { servedModelName: MODEL });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
afterAll(async () => server?.close());

const nowSeconds = () => Math.floor(Date.now() / 1000);
const user = (content: string) => [{ role: 'user' as const, content }];

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of stream) items.push(item);
  return items;
}

/** POSTs and parses the SSE body with eventsource-parser: the events' data, in order. */
async function sse(path: string, body: object): Promise<{ response: Response; data: string[] }> {
  const response = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const data: string[] = [];
  const parser = createParser({ onEvent: (event) => data.push(event.data) });
  const decoder = new TextDecoder();
  for await (const piece of response.body!) parser.feed(decoder.decode(piece, { stream: true }));
  return { response, data };
}

function expectUsage(usage: OpenAI.CompletionUsage | null | undefined, expected: { prompt?: number; completion?: number } = {}): void {
  expect(usage).toBeDefined();
  expect(Object.keys(usage!).sort()).toEqual(['completion_tokens', 'prompt_tokens', 'prompt_tokens_details', 'total_tokens']);
  expect(usage!.total_tokens).toBe(usage!.prompt_tokens + usage!.completion_tokens);
  expect(usage!.prompt_tokens_details!.cached_tokens).toBeGreaterThanOrEqual(0);
  expect(usage!.prompt_tokens_details!.cached_tokens!).toBeLessThanOrEqual(usage!.prompt_tokens);
  if (expected.prompt !== undefined) expect(usage!.prompt_tokens).toBe(expected.prompt);
  if (expected.completion !== undefined) expect(usage!.completion_tokens).toBe(expected.completion);
}

describe('chat completions', () => {
  it('non-streaming: every field of chat.completion, and the x-request-id header', async () => {
    const before = nowSeconds();
    const { data: completion, response } = await client.chat.completions
      .create({ model: MODEL, messages: user('Once upon a time'), max_tokens: 10, temperature: 0 }, { headers: { 'x-request-id': 'conformance-1' } })
      .withResponse();
    expect(response.headers.get('x-request-id')).toBe('conformance-1');
    expect(completion.id).toMatch(/^chatcmpl-[0-9a-f]{32}$/);
    expect(completion.object).toBe('chat.completion');
    expect(completion.created).toBeGreaterThanOrEqual(before);
    expect(completion.created).toBeLessThanOrEqual(nowSeconds());
    expect(completion.model).toBe(MODEL);
    expect(completion.system_fingerprint).toMatch(/^fp_[0-9a-f]{10}$/);
    expect(completion.choices).toHaveLength(1);
    const choice = completion.choices[0]!;
    expect(choice.index).toBe(0);
    expect(choice.message.role).toBe('assistant');
    expect(typeof choice.message.content).toBe('string');
    expect(choice.message.content!.length).toBeGreaterThan(0);
    expect(choice.message.refusal).toBeNull();
    expect(choice.message.tool_calls).toBeUndefined();
    expect(choice.logprobs).toBeNull();
    expect(choice.finish_reason).toBe('length');
    expectUsage(completion.usage, { completion: 10 });
  });

  it('streaming: chunk fields, role chunk, one finish chunk, usage chunk; text equals non-streaming', async () => {
    const request = { model: MODEL, messages: user('Lily and Tom went'), max_tokens: 14, temperature: 0 };
    const whole = await client.chat.completions.create(request);
    const chunks = await collect(await client.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } }));
    const [first] = chunks;
    expect(first!.choices[0]!.delta).toEqual({ role: 'assistant', content: '' });
    let text = '';
    for (const chunk of chunks) {
      expect(chunk.id).toBe(first!.id);
      expect(chunk.id).toMatch(/^chatcmpl-[0-9a-f]{32}$/);
      expect(chunk.object).toBe('chat.completion.chunk');
      expect(chunk.created).toBe(first!.created);
      expect(chunk.model).toBe(MODEL);
      expect(chunk.system_fingerprint).toBe(whole.system_fingerprint);
      for (const choice of chunk.choices) {
        expect(choice.index).toBe(0);
        text += choice.delta.content ?? '';
      }
    }
    expect(text).toBe(whole.choices[0]!.message.content);
    const finishes = chunks.flatMap((chunk) => chunk.choices.filter((choice) => choice.finish_reason !== null));
    expect(finishes).toHaveLength(1);
    expect(finishes[0]!.finish_reason).toBe('length');
    expect(finishes[0]!.delta).toEqual({});
    const usageChunk = chunks.at(-1)!;
    expect(usageChunk.choices).toEqual([]);
    expectUsage(usageChunk.usage, { completion: 14, prompt: whole.usage!.prompt_tokens });
    for (const chunk of chunks.slice(0, -1)) expect(chunk.usage).toBeNull();
  });

  it('multi-turn with system, user and assistant roles and content parts, rendered by the template', async () => {
    const messages = [
      { role: 'system' as const, content: 'Tell stories.' },
      { role: 'user' as const, content: [{ type: 'text' as const, text: 'Once upon' }, { type: 'text' as const, text: 'a time' }] },
      { role: 'assistant' as const, content: 'there was a cat.' },
      { role: 'developer' as const, content: 'Keep going.' },
      { role: 'user' as const, content: 'What next?' },
    ];
    const completion = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 4, temperature: 0 });
    const tokenized = await postJson<{ count: number }>('/tokenize', { messages });
    expect(completion.usage!.prompt_tokens).toBe(tokenized.count);
    expect(tokenized.count).toBeGreaterThan(15);
  });

  it('continue_final_message continues the last message (vLLM)', async () => {
    const messages = [
      { role: 'user', content: 'A story.' },
      { role: 'assistant', content: 'Once upon a time' },
    ];
    const open = await postJson<{ tokens: number[] }>('/tokenize', { messages, continue_final_message: true });
    const closed = await postJson<{ tokens: number[] }>('/tokenize', { messages, add_generation_prompt: false });
    // The story models' template ends with the final message's text either way.
    expect(open.tokens).toEqual(closed.tokens);
    const response = await postJson<{ choices: Array<{ message: { content: string } }>; usage: { prompt_tokens: number } }>('/v1/chat/completions', {
      messages,
      continue_final_message: true,
      max_tokens: 4,
      temperature: 0,
    });
    expect(response.usage.prompt_tokens).toBe(open.tokens.length);
    expect(response.choices[0]!.message.content.length).toBeGreaterThan(0);
  });

  it('logprobs: token, logprob, bytes and top_logprobs as OpenAI returns them', async () => {
    const completion = await client.chat.completions.create({ model: MODEL, messages: user('The sun'), max_tokens: 8, temperature: 0, logprobs: true, top_logprobs: 3 });
    const content = completion.choices[0]!.logprobs!.content!;
    expect(content).toHaveLength(8);
    expect(completion.choices[0]!.logprobs!.refusal).toBeNull();
    const decoded = Buffer.concat(content.map((entry) => Buffer.from(entry.bytes!))).toString('utf8');
    expect(decoded).toBe(completion.choices[0]!.message.content);
    for (const entry of content) {
      expect(Object.keys(entry).sort()).toEqual(['bytes', 'logprob', 'token', 'top_logprobs']);
      expect(entry.logprob).toBeLessThanOrEqual(0);
      expect(entry.top_logprobs).toHaveLength(3);
      // Greedy: the chosen token is the most likely one, and the alternatives come most likely first.
      expect(entry.top_logprobs[0]!.token).toBe(entry.token);
      expect(entry.top_logprobs[0]!.logprob).toBeCloseTo(entry.logprob, 5);
      for (let i = 1; i < 3; i++) expect(entry.top_logprobs[i]!.logprob).toBeLessThanOrEqual(entry.top_logprobs[i - 1]!.logprob);
      for (const top of entry.top_logprobs) expect(Object.keys(top).sort()).toEqual(['bytes', 'logprob', 'token']);
    }
  });
});

describe('completions', () => {
  it('non-streaming and streaming: every field of text_completion; the stream adds up to the same text', async () => {
    const request = { model: MODEL, prompt: 'The little dog', max_tokens: 12, temperature: 0 };
    const whole = await client.completions.create(request);
    expect(whole.id).toMatch(/^cmpl-[0-9a-f]{32}$/);
    expect(whole.object).toBe('text_completion');
    expect(whole.model).toBe(MODEL);
    expect(whole.system_fingerprint).toMatch(/^fp_/);
    expect(whole.created).toBeLessThanOrEqual(nowSeconds());
    expect(whole.choices[0]).toMatchObject({ index: 0, logprobs: null, finish_reason: 'length' });
    expectUsage(whole.usage, { completion: 12 });
    const chunks = await collect(await client.completions.create({ ...request, stream: true, stream_options: { include_usage: true } }));
    expect(chunks.slice(0, -1).map((chunk) => chunk.choices[0]!.text).join('')).toBe(whole.choices[0]!.text);
    for (const chunk of chunks) {
      expect(chunk.object).toBe('text_completion');
      expect(chunk.id).toBe(chunks[0]!.id);
    }
    expect(chunks.at(-2)!.choices[0]!.finish_reason).toBe('length');
    expectUsage(chunks.at(-1)!.usage, { completion: 12, prompt: whole.usage!.prompt_tokens });
  });

  it('prompt as text, array of texts, token ids and arrays of token ids: the same outputs', async () => {
    const texts = ['Tom had a ball', 'The cat sat'];
    const single = await Promise.all(texts.map((prompt) => client.completions.create({ model: MODEL, prompt, max_tokens: 6, temperature: 0 })));
    const expected = single.map((completion) => completion.choices[0]!.text);
    const batched = await client.completions.create({ model: MODEL, prompt: texts, max_tokens: 6, temperature: 0 });
    expect(batched.choices.map((choice) => [choice.index, choice.text])).toEqual(expected.map((text, i) => [i, text]));
    expect(batched.usage!.prompt_tokens).toBe(single[0]!.usage!.prompt_tokens + single[1]!.usage!.prompt_tokens);
    expect(batched.usage!.completion_tokens).toBe(12);

    const ids = await Promise.all(texts.map((prompt) => postJson<{ tokens: number[] }>('/tokenize', { prompt }).then((r) => r.tokens)));
    const one = await client.completions.create({ model: MODEL, prompt: ids[0]!, max_tokens: 6, temperature: 0 });
    expect(one.choices[0]!.text).toBe(expected[0]);
    const many = await client.completions.create({ model: MODEL, prompt: ids, max_tokens: 6, temperature: 0 });
    expect(many.choices.map((choice) => choice.text)).toEqual(expected);
  });

  it('echo prepends the prompt', async () => {
    const plain = await client.completions.create({ model: MODEL, prompt: 'Sara liked', max_tokens: 5, temperature: 0 });
    const echoed = await client.completions.create({ model: MODEL, prompt: 'Sara liked', max_tokens: 5, temperature: 0, echo: true });
    expect(echoed.choices[0]!.text).toBe(`Sara liked${plain.choices[0]!.text}`);
    expect(echoed.usage).toEqual(plain.usage);
  });

  it('logprobs: tokens, token_logprobs, top_logprobs (with the chosen token) and text_offset', async () => {
    const completion = await client.completions.create({ model: MODEL, prompt: 'One day', max_tokens: 6, temperature: 0, logprobs: 2 });
    const logprobs = completion.choices[0]!.logprobs!;
    expect(logprobs.tokens).toHaveLength(6);
    expect(logprobs.token_logprobs).toHaveLength(6);
    expect(logprobs.top_logprobs).toHaveLength(6);
    expect(logprobs.text_offset![0]).toBe(0);
    logprobs.tokens!.forEach((token, i) => {
      const top = logprobs.top_logprobs![i]!;
      expect(top[token]).toBeCloseTo(logprobs.token_logprobs![i]!, 5);
      expect(Object.keys(top).length).toBeGreaterThanOrEqual(1);
      expect(Object.keys(top).length).toBeLessThanOrEqual(3);
      if (i > 0) expect(logprobs.text_offset![i]).toBe(logprobs.text_offset![i - 1]! + logprobs.tokens![i - 1]!.length);
    });
    if (logprobs.tokens!.join('') === completion.choices[0]!.text) {
      logprobs.tokens!.forEach((token, i) => expect(completion.choices[0]!.text.slice(logprobs.text_offset![i], logprobs.text_offset![i]! + token.length)).toBe(token));
    }
  });
});

describe('n > 1 and seeds', () => {
  // ignore_eos (vLLM) is not in the SDK's types; the SDK sends extra fields as given.
  const request = { model: MODEL, messages: user('Once upon a time there was'), max_tokens: 12, temperature: 1, seed: 1234, n: 4, ...{ ignore_eos: true } };

  it('n choices indexed 0..n-1, distinct samples, usage counting the prompt once', async () => {
    const completion = await client.chat.completions.create(request);
    expect(completion.choices.map((choice) => choice.index)).toEqual([0, 1, 2, 3]);
    expect(new Set(completion.choices.map((choice) => choice.message.content)).size).toBeGreaterThan(1);
    const single = await client.chat.completions.create({ ...request, n: 1 });
    // Choice 0 keeps the request's seed: n = 1 reproduces it.
    expect(single.choices[0]!.message.content).toBe(completion.choices[0]!.message.content);
    expect(completion.usage!.prompt_tokens).toBe(single.usage!.prompt_tokens);
    // ignore_eos: every choice runs to max_tokens, so the completion tokens are exactly n × 12.
    expect(completion.choices.every((choice) => choice.finish_reason === 'length')).toBe(true);
    expect(completion.usage!.completion_tokens).toBe(4 * 12);
  });

  it('the same seed reproduces all n choices, alone and while other requests are batched with it', async () => {
    const alone = (await client.chat.completions.create(request)).choices.map((choice) => choice.message.content);
    const noise = Array.from({ length: 4 }, (_, i) =>
      client.completions.create({ model: MODEL, prompt: `Noise ${i}: the bird`, max_tokens: 20, temperature: 1, n: 2 }),
    );
    const [batched] = await Promise.all([client.chat.completions.create(request), ...noise]);
    expect((batched as OpenAI.ChatCompletion).choices.map((choice) => choice.message.content)).toEqual(alone);
    // Streaming gives the same choices too.
    const chunks = await collect(await client.chat.completions.create({ ...request, stream: true }));
    const streamed = ['', '', '', ''];
    for (const chunk of chunks) for (const choice of chunk.choices) streamed[choice.index] += choice.delta.content ?? '';
    expect(streamed).toEqual(alone);
  });

  it("the other choices reuse the first choice's prompt blocks from the prefix cache", async () => {
    const prompt = `A long and unique story ${Date.now()}: once upon a time, in a small town by the sea, there lived a girl named Mia who loved shells.`;
    const promptTokens = (await postJson<{ count: number }>('/tokenize', { prompt })).count;
    const blockSize = server.runtime.model.blockSize;
    expect(promptTokens).toBeGreaterThan(2 * blockSize);
    const before = server.runtime.service.stats().prefixCacheHits;
    const completion = await client.completions.create({ model: MODEL, prompt, n: 4, max_tokens: 4, temperature: 1 });
    const hits = server.runtime.service.stats().prefixCacheHits - before;
    // Three siblings, each finding at least every full block but the last of the prompt.
    const fullBlocks = Math.floor((promptTokens - 1) / blockSize);
    expect(hits).toBeGreaterThanOrEqual(3 * fullBlocks * blockSize);
    expect(completion.usage!.prompt_tokens).toBe(promptTokens);
    expect(completion.usage!.prompt_tokens_details!.cached_tokens).toBe(0);
    // Asked again, the prompt itself comes from the cache.
    const again = await client.completions.create({ model: MODEL, prompt, max_tokens: 1 });
    expect(again.usage!.prompt_tokens_details!.cached_tokens).toBeGreaterThanOrEqual(fullBlocks * blockSize);
  });

  it('raw SSE: n = 2 interleaved, every chunk with usage (continuous_usage_stats), [DONE] last', async () => {
    const { response, data } = await sse('/v1/chat/completions', {
      messages: user('Ben and Mia'),
      n: 2,
      max_tokens: 6,
      seed: 5,
      stream: true,
      stream_options: { include_usage: true, continuous_usage_stats: true },
    });
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(data.at(-1)).toBe('[DONE]');
    const chunks = data.slice(0, -1).map((item) => JSON.parse(item) as ChatCompletionChunk);
    const finishes = chunks.flatMap((chunk) => chunk.choices.filter((choice) => choice.finish_reason !== null).map((choice) => choice.index));
    expect(finishes.sort()).toEqual([0, 1]);
    for (const chunk of chunks) expectUsage(chunk.usage);
    expect(chunks.at(-1)!.choices).toEqual([]);
    expect(chunks.at(-1)!.usage!.completion_tokens).toBe(12);
  });

  it('a client that disconnects aborts all n choices and frees their KV blocks', async () => {
    const engine = server.runtime.engine;
    const body = JSON.stringify({ prompt: 'One day', max_tokens: 400, ignore_eos: true, stream: true, n: 3 });
    const socket = connect(Number(new URL(server.url).port), '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.write(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    let received = '';
    await new Promise<void>((resolve) => socket.on('data', (data: Buffer) => ((received += data.toString()), received.includes('"index":2') && resolve())));
    expect(engine.numTrackedRequests).toBe(3);
    socket.destroy();
    const deadline = Date.now() + 5000;
    while (engine.numTrackedRequests > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 2));
    expect(engine.numTrackedRequests).toBe(0);
    expect(engine.scheduler.kv.usage()).toBe(0);
  });
});

describe('tools on the real model', () => {
  let toolServer: TestServer;
  let toolClient: OpenAI;
  beforeAll(async () => {
    toolServer = await startTestServer(modelDir, { servedModelName: MODEL, chatTemplate: TOOLS_TEMPLATE });
    toolClient = new OpenAI({ baseURL: `${toolServer.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(async () => toolServer?.close());

  const tools: ChatCompletionTool[] = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];

  it('renders the tools into the prompt and serves the request (the tiny model answers in text)', async () => {
    const messages = user('Weather in Paris?');
    const withTools = await toolClient.chat.completions.create({ model: MODEL, messages, tools, max_tokens: 6, temperature: 0 });
    const without = await toolClient.chat.completions.create({ model: MODEL, messages, max_tokens: 6, temperature: 0 });
    const none = await toolClient.chat.completions.create({ model: MODEL, messages, tools, tool_choice: 'none', max_tokens: 6, temperature: 0 });
    expect(withTools.usage!.prompt_tokens).toBeGreaterThan(without.usage!.prompt_tokens + 5);
    expect(none.usage!.prompt_tokens).toBe(without.usage!.prompt_tokens);
    const choice = withTools.choices[0]!;
    expect(['length', 'stop', 'tool_calls']).toContain(choice.finish_reason);
    if (choice.finish_reason !== 'tool_calls') expect(typeof choice.message.content).toBe('string');
  });

  it('the story template shows no tool-call format: tools are a 400 naming tools', async () => {
    const attempt = client.chat.completions.create({ model: MODEL, messages: user('x'), tools, max_tokens: 2 });
    await expect(attempt).rejects.toBeInstanceOf(BadRequestError);
    await expect(attempt).rejects.toMatchObject({ status: 400, param: 'tools' });
  });
});

describe('tool-call parsing (a fake model scripts the calls)', () => {
  let fake: FakeInferenceService;
  let fakeServer: RunningServer;
  let fakeClient: OpenAI;
  beforeAll(async () => {
    fake = new FakeInferenceService({ model: { id: MODEL } });
    fakeServer = await startServer(createApp(fake, { logger: { error: () => {} } }), { host: '127.0.0.1', port: 0, shutdownGraceMs: 100 });
    fakeClient = new OpenAI({ baseURL: `${fakeServer.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(async () => fakeServer?.close());

  const tools: ChatCompletionTool[] = [
    { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } },
    { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: {} } } },
  ];
  const cases = [
    {
      format: 'Qwen2.5 / Hermes',
      template: '<tool_call>{"name": <function-name>, "arguments": <args-json-object>}</tool_call>',
      text: 'Checking.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>',
      content: 'Checking.',
    },
    {
      format: 'Llama 3.1 JSON',
      template: '<|start_header_id|>ipython<|end_header_id|> {"name": function name, "parameters": dictionary of argument name and its value}',
      text: '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris"}}; {"name": "get_time", "parameters": {}}',
      content: null,
    },
  ];

  for (const testCase of cases) {
    const script = () => {
      fake.chatTemplateSource = testCase.template;
      fake.script = (testCase.text.match(/[\s\S]{1,5}/g) ?? []).map((text, i, all) => ({ text, tokenIds: [200 + i], finishReason: i === all.length - 1 ? 'stop' : null }));
    };

    it(`${testCase.format}: message.tool_calls (non-streaming)`, async () => {
      script();
      const completion = await fakeClient.chat.completions.create({ model: MODEL, messages: user('Weather and time in Paris?'), tools });
      const choice = completion.choices[0]!;
      expect(choice.finish_reason).toBe('tool_calls');
      expect(choice.message.content).toBe(testCase.content);
      const calls = choice.message.tool_calls!;
      expect(calls.map((call) => [call.type, call.id.startsWith('call_'), call.type === 'function' ? call.function.name : null])).toEqual([
        ['function', true, 'get_weather'],
        ['function', true, 'get_time'],
      ]);
      expect(calls.map((call) => (call.type === 'function' ? JSON.parse(call.function.arguments) : null))).toEqual([{ city: 'Paris' }, {}]);
    });

    it(`${testCase.format}: delta.tool_calls (streaming, SDK and raw SSE)`, async () => {
      script();
      const chunks = await collect(await fakeClient.chat.completions.create({ model: MODEL, messages: user('Weather and time in Paris?'), tools, stream: true }));
      const calls: Array<{ id: string; name: string; arguments: string }> = [];
      let content = '';
      for (const chunk of chunks) {
        for (const choice of chunk.choices) {
          content += choice.delta.content ?? '';
          for (const delta of choice.delta.tool_calls ?? []) {
            if (delta.id) calls[delta.index] = { id: delta.id, name: delta.function!.name!, arguments: delta.function!.arguments ?? '' };
            else calls[delta.index]!.arguments += delta.function!.arguments!;
          }
        }
      }
      expect(content).toBe(testCase.content ?? '');
      expect(calls.map((call) => [call.name, JSON.parse(call.arguments)])).toEqual([
        ['get_weather', { city: 'Paris' }],
        ['get_time', {}],
      ]);
      expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe('tool_calls');

      script();
      const response = await fetch(`${fakeServer.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ messages: user('x'), tools, stream: true }),
      });
      const data: string[] = [];
      const parser = createParser({ onEvent: (event) => data.push(event.data) });
      parser.feed(await response.text());
      expect(data.at(-1)).toBe('[DONE]');
      const deltas = data.slice(0, -1).flatMap((item) => (JSON.parse(item) as ChatCompletionChunk).choices.flatMap((choice) => choice.delta.tool_calls ?? []));
      expect(deltas[0]).toEqual({ index: 0, id: expect.stringMatching(/^call_[A-Za-z0-9]{24}$/), type: 'function', function: { name: 'get_weather', arguments: '' } });
    });
  }
});

describe('other routes', () => {
  it('GET /v1/models/{id}, GET /version', async () => {
    const model = await client.models.retrieve(MODEL);
    expect(model).toMatchObject({ id: MODEL, object: 'model', owned_by: 'updraft' });
    expect(model.created).toBeLessThanOrEqual(nowSeconds());
    await expect(client.models.retrieve('gpt-4o')).rejects.toBeInstanceOf(NotFoundError);
    const version = (await (await fetch(`${server.url}/version`)).json()) as { version: string };
    expect(version.version).toBe(packageJson.version);
  });

  it('POST /tokenize and /detokenize round-trip with the real tokenizer', async () => {
    const tokenized = await postJson<{ count: number; max_model_len: number; tokens: number[]; token_strs: string[] }>('/tokenize', {
      prompt: 'Once upon a time',
      return_token_strs: true,
    });
    expect(tokenized.count).toBe(tokenized.tokens.length);
    expect(tokenized.max_model_len).toBe(server.runtime.service.model.maxModelLen);
    expect(tokenized.token_strs).toHaveLength(tokenized.count);
    const plain = await postJson<{ tokens: number[] }>('/tokenize', { prompt: 'Once upon a time', add_special_tokens: false });
    expect(plain.tokens).toEqual(tokenized.tokens.slice(1));
    const detokenized = await postJson<{ prompt: string }>('/detokenize', { tokens: plain.tokens });
    expect(detokenized.prompt).toBe('Once upon a time');
  });
});

describe('errors', () => {
  const cases: Array<{ name: string; body: Record<string, unknown>; param: string }> = [
    { name: 'temperature -1', body: { temperature: -1 }, param: 'temperature' },
    { name: 'top_p 2', body: { top_p: 2 }, param: 'top_p' },
    { name: 'n 1000', body: { n: 1000 }, param: 'n' },
    { name: 'max_tokens past the context', body: { max_tokens: 100_000 }, param: 'max_tokens' },
    { name: 'stop with five strings', body: { stop: ['a', 'b', 'c', 'd', 'e'] }, param: 'stop' },
    { name: 'messages[0].role unknown', body: { messages: [{ role: 'robot', content: 'x' }] }, param: 'messages[0].role' },
    { name: 'tool_choice required without tools', body: { tool_choice: 'required' }, param: 'tool_choice' },
  ];

  it.each(cases)('$name: the SDK raises BadRequestError with the param; the body has OpenAI’s error shape', async ({ body, param }) => {
    const request = { model: MODEL, messages: user('x'), ...body } as OpenAI.ChatCompletionCreateParamsNonStreaming;
    const attempt = client.chat.completions.create(request);
    await expect(attempt).rejects.toBeInstanceOf(BadRequestError);
    await expect(attempt).rejects.toMatchObject({ status: 400, param, type: 'invalid_request_error' });
    const raw = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(request) });
    const error = ((await raw.json()) as { error: Record<string, unknown> }).error;
    expect(Object.keys(error).sort()).toEqual(['code', 'message', 'param', 'type']);
    expect(error['param']).toBe(param);
  });

  it('a streaming request that is invalid fails before the stream starts (no 200)', async () => {
    const attempt = client.completions.create({ model: MODEL, prompt: 'x', max_tokens: 100_000, stream: true });
    await expect(attempt).rejects.toMatchObject({ status: 400, param: 'max_tokens', code: 'context_length_exceeded' });
  });

  it('an unknown model is a 404 NotFoundError; the server keeps serving', async () => {
    await expect(client.completions.create({ model: 'gpt-9', prompt: 'x' })).rejects.toBeInstanceOf(NotFoundError);
    const ok = await client.completions.create({ model: MODEL, prompt: 'x', max_tokens: 2 });
    expect(ok.choices[0]!.finish_reason).toBe('length');
  });

  it('unknown fields are ignored and user is accepted', async () => {
    const response = await postJson<{ choices: unknown[] }>('/v1/completions', { prompt: 'x', max_tokens: 2, user: 'u-1', metadata: { a: 1 }, store: false, some_new_field: 3 });
    expect(response.choices).toHaveLength(1);
  });
});

describe('structured output and sampling controls through the SDK', () => {
  const schema = {
    type: 'object',
    properties: { name: { type: 'string', maxLength: 10 }, age: { type: 'integer', minimum: 1, maximum: 99 }, pets: { type: 'array', items: { type: 'string', enum: ['cat', 'dog'] }, maxItems: 3 } },
    required: ['name', 'age', 'pets'],
    additionalProperties: false,
  };

  it('response_format json_schema: message.content parses and matches the schema, streaming and not', async () => {
    const request = {
      model: MODEL,
      messages: user('Tell me about Lily.'),
      // Room for the longest document the schema allows (whitespace runs are capped by the grammar).
      max_tokens: 400,
      temperature: 0.8,
      seed: 11,
      response_format: { type: 'json_schema' as const, json_schema: { name: 'person', schema, strict: true } },
    };
    const whole = await client.chat.completions.create(request);
    expect(whole.choices[0]!.finish_reason, whole.choices[0]!.message.content!).toBe('stop');
    const value = JSON.parse(whole.choices[0]!.message.content!) as { name: string; age: number; pets: string[] };
    expect(Object.keys(value).sort()).toEqual(['age', 'name', 'pets']);
    expect(Number.isInteger(value.age) && value.age >= 1 && value.age <= 99).toBe(true);
    expect(value.name.length).toBeLessThanOrEqual(10);
    for (const pet of value.pets) expect(['cat', 'dog']).toContain(pet);
    // The same request streamed (same seed) writes the same document.
    const chunks = await collect(await client.chat.completions.create({ ...request, stream: true }));
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe(whole.choices[0]!.message.content);
  });

  it('response_format json_object on completions: a JSON object or a viable prefix of one', async () => {
    const response = await client.completions.create({ model: MODEL, prompt: 'Once upon a time', max_tokens: 64, temperature: 0, response_format: { type: 'json_object' } } as OpenAI.CompletionCreateParamsNonStreaming);
    const text = response.choices[0]!.text;
    expect(text.trimStart().startsWith('{'), text).toBe(true);
    if (response.choices[0]!.finish_reason === 'stop') expect(typeof JSON.parse(text)).toBe('object');
  });

  it('logit_bias +100 forces a token; -100 bans the greedy one', async () => {
    const base = { model: MODEL, prompt: 'Once upon a time', max_tokens: 6, temperature: 0, logprobs: 0, return_tokens_as_token_ids: true } as OpenAI.CompletionCreateParamsNonStreaming;
    const ids = (r: OpenAI.Completion) => r.choices[0]!.logprobs!.tokens!.map((t) => Number(t.replace('token_id:', '')));
    const plain = ids(await client.completions.create(base));
    const forcedId = plain[0] === 7 ? 8 : 7;
    const forced = ids(await client.completions.create({ ...base, logit_bias: { [String(forcedId)]: 100 } }));
    expect(forced).toEqual(new Array(6).fill(forcedId));
    const banned = ids(await client.completions.create({ ...base, logit_bias: { [String(plain[0])]: -100 } }));
    expect(banned).not.toContain(plain[0]);
  });

  it('presence, frequency and repetition penalties are accepted and change a repetitive greedy output', async () => {
    const base = { model: MODEL, prompt: 'Once upon a time', max_tokens: 48, temperature: 0 };
    const plain = (await client.completions.create(base)).choices[0]!.text;
    const penalised = (await client.completions.create({ ...base, frequency_penalty: 2, presence_penalty: 2 })).choices[0]!.text;
    const repeated = (await client.completions.create({ ...base, repetition_penalty: 2 } as OpenAI.CompletionCreateParamsNonStreaming)).choices[0]!.text;
    expect(penalised).not.toBe(plain);
    expect(repeated).not.toBe(plain);
  });

  it('min_tokens holds off EOS until that many tokens', async () => {
    // EOS pushed to the top: without min_tokens the request ends at once; with it, not before 30 tokens.
    const eos = server.runtime.model.config.eosTokenIds[0]!;
    const base = { model: MODEL, prompt: 'x', max_tokens: 40, temperature: 0, logit_bias: { [String(eos)]: 100 } };
    const plain = await client.completions.create(base);
    expect(plain.choices[0]!.finish_reason).toBe('stop');
    expect(plain.usage!.completion_tokens).toBeLessThanOrEqual(1);
    const held = await client.completions.create({ ...base, min_tokens: 30 } as OpenAI.CompletionCreateParamsNonStreaming);
    expect(held.usage!.completion_tokens).toBeGreaterThanOrEqual(30);
  });
});

async function postJson<T>(path: string, body: object): Promise<T> {
  const response = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const json = (await response.json()) as T;
  expect(response.status, JSON.stringify(json)).toBe(200);
  return json;
}
