/**
 * n > 1 and batched prompts over the fake service: choice numbering, seeds, when siblings are
 * submitted (after the first choice's first output, so they find the prompt in the prefix cache),
 * usage, interleaved streaming, continuous usage, echo, and aborting every choice at once.
 */
import net from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import type { Completion } from 'openai/resources/completions';
import { ServiceError } from '../../../src/engine/inference-service.ts';
import { choiceSeed } from '../../../src/api/openai/choices.ts';
import { BOS_TOKEN_ID } from '../../helpers/fake-service.ts';
import { postJson, startTestServer, type TestServer } from './harness.ts';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ reply: 'one two three', cachedPromptTokens: 1 });
});
afterAll(() => t.close());
beforeEach(() => {
  t.service.replyFor = null;
  t.service.script = null;
  t.service.throwOnGenerate = null;
  t.service.stallAfterOutputs = null;
  t.service.tokenDelayMs = 0;
  t.service.generations.length = 0;
  t.service.encodedTexts.length = 0;
});

const messages = [{ role: 'user' as const, content: 'Say three words' }];
/** Each choice answers with its own seed, so choices and their seeds can be told apart. */
const replyWithSeed = () => {
  t.service.replyFor = (request) => `seed ${request.params.seed}`;
};

describe('choiceSeed', () => {
  it('keeps the seed for choice 0 and derives distinct, reproducible seeds for the others', () => {
    const seeds = Array.from({ length: 16 }, (_, i) => choiceSeed(42n, true, i));
    expect(seeds[0]).toBe(42n);
    expect(new Set(seeds).size).toBe(16);
    expect(Array.from({ length: 16 }, (_, i) => choiceSeed(42n, true, i))).toEqual(seeds);
    for (const seed of seeds) expect(seed >= 0n && seed < 2n ** 64n).toBe(true);
    // Neighbouring client seeds do not share streams (seed + i would).
    expect(choiceSeed(43n, true, 1)).not.toBe(choiceSeed(42n, true, 2));
    // Without a client seed, siblings draw fresh random seeds.
    expect(choiceSeed(42n, false, 1)).not.toBe(choiceSeed(42n, false, 1));
  });
});

describe('n > 1 (chat)', () => {
  it('returns n choices indexed 0..n-1, usage counting the prompt once and every choice', async () => {
    const completion = await t.client.chat.completions.create({ model: 'fake-model', messages, n: 3 });
    expect(completion.choices.map((choice) => choice.index)).toEqual([0, 1, 2]);
    for (const choice of completion.choices) {
      expect(choice.message).toEqual({ role: 'assistant', content: 'one two three', refusal: null });
      expect(choice.finish_reason).toBe('stop');
    }
    expect(t.service.generations).toHaveLength(3);
    const promptTokens = t.service.generations[0]!.request.promptTokenIds.length;
    expect(completion.usage).toEqual({
      prompt_tokens: promptTokens,
      completion_tokens: 9,
      total_tokens: promptTokens + 9,
      prompt_tokens_details: { cached_tokens: 1 },
    });
    // One template rendering, the same prompt for every choice, distinct engine request ids.
    expect(t.service.renderedChats).toHaveLength(1);
    const ids = t.service.generations.map((g) => g.request.requestId);
    expect(ids).toEqual([0, 1, 2].map((i) => `${completion.id}-${i}`));
    for (const g of t.service.generations) expect(g.request.promptTokenIds).toEqual(t.service.generations[0]!.request.promptTokenIds);
  });

  it('submits the other choices only after the first one produced its first output (prefix-cache sharing)', async () => {
    const yieldedByFirstAtSubmit: number[] = [];
    // Outputs take time, as prefill does: siblings submitted too early would see 0 outputs of the first.
    t.service.tokenDelayMs = 5;
    t.service.replyFor = () => {
      yieldedByFirstAtSubmit.push(t.service.generations[0]!.outputsYielded);
      return 'a b c';
    };
    await t.client.chat.completions.create({ model: 'fake-model', messages, n: 4 });
    expect(yieldedByFirstAtSubmit).toEqual([0, 1, 1, 1]);
  });

  it('gives each choice its own seed derived from the client seed, reproducing all n', async () => {
    replyWithSeed();
    const first = await t.client.chat.completions.create({ model: 'fake-model', messages, n: 3, seed: 7 });
    const again = await t.client.chat.completions.create({ model: 'fake-model', messages, n: 3, seed: 7 });
    const texts = first.choices.map((choice) => choice.message.content);
    expect(again.choices.map((choice) => choice.message.content)).toEqual(texts);
    expect(new Set(texts).size).toBe(3);
    expect(texts).toEqual([0, 1, 2].map((i) => `seed ${choiceSeed(7n, true, i)}`));
    // n = 1 with the same seed reproduces choice 0.
    const single = await t.client.chat.completions.create({ model: 'fake-model', messages, seed: 7 });
    expect(single.choices[0]!.message.content).toBe(texts[0]);
    expect(single.id).toBe(t.service.generations.at(-1)!.request.requestId);
  });

  it('draws different seeds for every choice without a client seed', async () => {
    replyWithSeed();
    const completion = await t.client.chat.completions.create({ model: 'fake-model', messages, n: 4 });
    expect(new Set(completion.choices.map((choice) => choice.message.content)).size).toBe(4);
  });

  it('streams the choices interleaved, each with its role chunk, content and own finish chunk', async () => {
    t.service.tokenDelayMs = 2;
    const stream = await t.client.chat.completions.create({ model: 'fake-model', messages, n: 3, stream: true, stream_options: { include_usage: true } });
    const chunks: ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    const perChoice = new Map<number, ChatCompletionChunk.Choice[]>();
    for (const chunk of chunks.slice(0, -1)) {
      expect(chunk.choices).toHaveLength(1);
      const choice = chunk.choices[0]!;
      perChoice.set(choice.index, [...(perChoice.get(choice.index) ?? []), choice]);
      expect(chunk.usage).toBeNull();
    }
    expect([...perChoice.keys()].sort()).toEqual([0, 1, 2]);
    for (const choices of perChoice.values()) {
      expect(choices[0]!.delta).toEqual({ role: 'assistant', content: '' });
      expect(choices.map((choice) => choice.delta.content ?? '').join('')).toBe('one two three');
      expect(choices.at(-1)!.finish_reason).toBe('stop');
      expect(choices.filter((choice) => choice.finish_reason !== null)).toHaveLength(1);
    }
    // Interleaved: some choice's content arrives before another's first content is finished.
    const order = chunks.slice(3, -1).map((chunk) => chunk.choices[0]!.index);
    expect(order.some((index, i) => i > 0 && index !== order[i - 1])).toBe(true);
    const usage = chunks.at(-1)!;
    expect(usage.choices).toEqual([]);
    expect(usage.usage!.completion_tokens).toBe(9);
  });

  it('sends the usage so far on every chunk with continuous_usage_stats', async () => {
    const stream = await t.client.chat.completions.create({
      model: 'fake-model',
      messages,
      n: 2,
      stream: true,
      stream_options: { include_usage: true, continuous_usage_stats: true } as { include_usage: boolean },
    });
    const chunks: ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    const promptTokens = t.service.generations[0]!.request.promptTokenIds.length;
    let previous = -1;
    for (const chunk of chunks) {
      expect(chunk.usage!.prompt_tokens).toBe(promptTokens);
      expect(chunk.usage!.total_tokens).toBe(promptTokens + chunk.usage!.completion_tokens);
      expect(chunk.usage!.completion_tokens).toBeGreaterThanOrEqual(previous);
      previous = chunk.usage!.completion_tokens;
    }
    expect(chunks[0]!.usage!.completion_tokens).toBe(0);
    expect(chunks.at(-1)!.choices).toEqual([]);
    expect(chunks.at(-1)!.usage!.completion_tokens).toBe(6);
  });

  it('aborts every choice when the client disconnects mid-stream', async () => {
    t.service.stallAfterOutputs = 1;
    const url = new URL(t.url);
    const socket = net.connect(Number(url.port), url.hostname);
    socket.on('error', () => {});
    const body = JSON.stringify({ messages, n: 3, stream: true });
    socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    await new Promise<void>((resolve) => socket.on('data', (data: Buffer) => data.toString().includes('"one"') && resolve()));
    const generations = await t.service.waitForGenerations(3).then(() => t.service.generations.slice());
    expect(generations.some((g) => g.signalFired)).toBe(false);
    socket.destroy();
    await Promise.all(generations.map((g) => g.aborted));
    expect(generations.every((g) => g.request.signal!.aborted)).toBe(true);
  });

  it('aborts the started choices and answers 429 when a sibling cannot be admitted', async () => {
    t.service.replyFor = (request) => {
      if (request.requestId.endsWith('-2')) throw new ServiceError('overloaded', 'busy', { retryAfterSeconds: 2 });
      return 'a b';
    };
    const response = await postJson(`${t.url}/v1/chat/completions`, { messages, n: 3 });
    expect(response.status).toBe(429);
    expect(response.headers.get('retry-after')).toBe('2');
    // Choices 0 and 1 were started and then aborted.
    expect(t.service.generations).toHaveLength(3);
    expect(t.service.generations.slice(0, 2).every((g) => g.signalFired)).toBe(true);
  });

  it('accepts n up to --max-n and refuses more', async () => {
    const limited = await startTestServer({}, { maxN: 2 });
    try {
      expect((await postJson(`${limited.url}/v1/chat/completions`, { messages, n: 2 })).status).toBe(200);
      const refused = await postJson(`${limited.url}/v1/completions`, { prompt: 'x', n: 3 });
      expect(refused.status).toBe(400);
      expect(((await refused.json()) as { error: { param: string } }).error.param).toBe('n');
    } finally {
      await limited.close();
    }
  });
});

describe('n > 1 and batched prompts (completions)', () => {
  it('numbers choices promptIndex × n + choiceIndex and counts each prompt once', async () => {
    t.service.replyFor = (request) => `${t.service.decode(request.promptTokenIds.slice(1))}!`;
    const completion = await t.client.completions.create({ model: 'fake-model', prompt: ['alpha', 'beta gamma'], n: 2, max_tokens: 5 });
    expect(completion.choices.map((choice) => [choice.index, choice.text])).toEqual([
      [0, 'alpha!'],
      [1, 'alpha!'],
      [2, 'beta gamma!'],
      [3, 'beta gamma!'],
    ]);
    expect(t.service.encodedTexts).toEqual(['alpha', 'beta gamma']);
    // Prompt tokens: (BOS alpha) + (BOS beta gamma); completion: 1 + 1 + 2 + 2.
    expect(completion.usage).toMatchObject({ prompt_tokens: 5, completion_tokens: 6, total_tokens: 11 });
  });

  it('takes an array of token-id arrays as several prompts', async () => {
    const completion = await t.client.completions.create({ model: 'fake-model', prompt: [[5, 6], [7], [8, 9, 10]], max_tokens: 1 });
    expect(completion.choices.map((choice) => choice.index)).toEqual([0, 1, 2]);
    expect(t.service.generations.map((g) => g.request.promptTokenIds)).toEqual([[5, 6], [7], [8, 9, 10]]);
    expect(completion.usage!.prompt_tokens).toBe(6);
  });

  it('honours add_special_tokens: false for text prompts', async () => {
    await postJson(`${t.url}/v1/completions`, { prompt: 'no bos here', add_special_tokens: false });
    expect(t.service.generations[0]!.request.promptTokenIds[0]).not.toBe(BOS_TOKEN_ID);
    await postJson(`${t.url}/v1/completions`, { prompt: 'bos here' });
    expect(t.service.generations[1]!.request.promptTokenIds[0]).toBe(BOS_TOKEN_ID);
  });

  it('streams batched prompts with n, every chunk carrying its choice index', async () => {
    const stream = await t.client.completions.create({ model: 'fake-model', prompt: ['x', 'y'], n: 2, stream: true });
    const texts = new Map<number, string>();
    const finishes = new Map<number, string>();
    for await (const chunk of stream as AsyncIterable<Completion>) {
      const choice = chunk.choices[0]!;
      texts.set(choice.index, (texts.get(choice.index) ?? '') + choice.text);
      if (choice.finish_reason) finishes.set(choice.index, choice.finish_reason);
    }
    expect([...texts.entries()].sort()).toEqual([0, 1, 2, 3].map((i) => [i, 'one two three']));
    expect([...finishes.values()]).toEqual(['stop', 'stop', 'stop', 'stop']);
  });

  it('rejects the whole batch when one prompt does not fit', async () => {
    const small = await startTestServer({ model: { maxModelLen: 6 } });
    try {
      const response = await postJson(`${small.url}/v1/completions`, { prompt: ['a', 'a b c d e f g'], max_tokens: 1 });
      expect(response.status).toBe(400);
      expect(((await response.json()) as { error: { param: string } }).error.param).toBe('prompt');
      expect(small.service.generations).toHaveLength(0);
    } finally {
      await small.close();
    }
  });
});

describe('echo (completions)', () => {
  it('prepends the prompt text to every choice', async () => {
    const completion = await t.client.completions.create({ model: 'fake-model', prompt: 'Count:', echo: true, n: 2 });
    expect(completion.choices.map((choice) => choice.text)).toEqual(['Count:one two three', 'Count:one two three']);
    // Usage is unchanged by echo.
    expect(completion.usage!.completion_tokens).toBe(6);
  });

  it('echoes token prompts as their text', async () => {
    const id = t.service.wordTokenId('Hello');
    const completion = await t.client.completions.create({ model: 'fake-model', prompt: [BOS_TOKEN_ID, id], echo: true });
    expect(completion.choices[0]!.text).toBe('<s>Helloone two three');
  });

  it('streams the prompt as each choice’s first chunk', async () => {
    const stream = await t.client.completions.create({ model: 'fake-model', prompt: ['A:', 'B:'], echo: true, stream: true });
    const chunks: Completion[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.slice(0, 2).map((chunk) => [chunk.choices[0]!.index, chunk.choices[0]!.text])).toEqual([
      [0, 'A:'],
      [1, 'B:'],
    ]);
    const text0 = chunks.filter((chunk) => chunk.choices[0]!.index === 0).map((chunk) => chunk.choices[0]!.text).join('');
    expect(text0).toBe('A:one two three');
  });
});
