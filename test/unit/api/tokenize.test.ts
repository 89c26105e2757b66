/** vLLM's POST /tokenize and POST /detokenize over the fake service. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BOS_TOKEN_ID } from '../../helpers/fake-service.ts';
import { postJson, startTestServer, type TestServer } from './harness.ts';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ model: { maxModelLen: 2048 } });
});
afterAll(() => t.close());
beforeEach(() => {
  t.service.renderedChats.length = 0;
});

interface TokenizeBody {
  count: number;
  max_model_len: number;
  tokens: number[];
  token_strs?: string[];
}

async function tokenize(body: object): Promise<TokenizeBody> {
  const response = await postJson(`${t.url}/tokenize`, body);
  expect(response.status).toBe(200);
  return (await response.json()) as TokenizeBody;
}

describe('POST /tokenize', () => {
  it('tokenizes a prompt with special tokens by default, as completions would', async () => {
    const result = await tokenize({ prompt: 'Hello big world' });
    expect(result).toEqual({
      count: 4,
      max_model_len: 2048,
      tokens: [BOS_TOKEN_ID, t.service.wordTokenId('Hello'), t.service.wordTokenId(' big'), t.service.wordTokenId(' world')],
    });
    expect((await tokenize({ prompt: 'Hello big world', add_special_tokens: false })).tokens).toEqual(result.tokens.slice(1));
  });

  it('returns the token strings with return_token_strs', async () => {
    const result = await tokenize({ prompt: 'Hello world', return_token_strs: true });
    expect(result.token_strs).toEqual(['<s>', 'Hello', ' world']);
  });

  it('renders messages with the chat template exactly as a chat completion would', async () => {
    const messages = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: [{ type: 'text', text: 'Hi' }] },
    ];
    const tools = [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }];
    const result = await tokenize({ messages, tools, chat_template_kwargs: { x: 1 } });
    const rendered = t.service.renderedChats[0]!;
    expect(rendered.options).toEqual({ addGenerationPrompt: true, templateKwargs: { x: 1 }, tools });
    expect(rendered.messages[1]).toEqual({ role: 'user', content: 'Hi' });
    expect(result.tokens).toEqual(await t.service.encode(rendered.prompt));
    expect(result.count).toBe(result.tokens.length);

    await tokenize({ messages, add_generation_prompt: false });
    expect(t.service.renderedChats[1]!.options.addGenerationPrompt).toBe(false);
    await tokenize({ messages, continue_final_message: true });
    expect(t.service.renderedChats[2]!.options).toMatchObject({ addGenerationPrompt: false, continueFinalMessage: true });
  });
});

describe('POST /detokenize', () => {
  it('turns token ids back into text', async () => {
    const { tokens } = await tokenize({ prompt: 'round trip text', add_special_tokens: false });
    const response = await postJson(`${t.url}/detokenize`, { tokens });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ prompt: 'round trip text' });
  });
});

describe('authentication', () => {
  it('guards /tokenize and /detokenize with the API key like /v1', async () => {
    const guarded = await startTestServer({}, { apiKey: 'secret' });
    try {
      expect((await postJson(`${guarded.url}/tokenize`, { prompt: 'x' })).status).toBe(401);
      expect((await postJson(`${guarded.url}/detokenize`, { tokens: [1] })).status).toBe(401);
      expect((await postJson(`${guarded.url}/tokenize`, { prompt: 'x' }, { authorization: 'Bearer secret' })).status).toBe(200);
    } finally {
      await guarded.close();
    }
  });
});
