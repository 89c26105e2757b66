/**
 * vLLM's guided decoding fields over HTTP (src/api/openai/logits-fields.ts): guided_choice and
 * structured_outputs.choice make the output exactly one of the strings; guided_json (an object or a
 * JSON string) and structured_outputs.json make it JSON that validates; guided_regex / guided_grammar
 * are refused with a 400 instead of being ignored, as is more than one constraint in one request.
 * Random-weight model on the cpu backend, random seeds and temperatures: the grammar, not the model,
 * decides what may come out.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateJson } from '../../src/structured/index.ts';
import { tinyModelDir } from '../fixtures/tiny-models.ts';
import { maxDocumentBytes, Rand } from '../unit/structured/random-schemas.ts';
import { startTestServer, type TestServer } from './harness.ts';

const CHOICES = ['positive', 'negative', 'neutral', 'mixed feelings', 'n/a'];
const SCHEMA = {
  type: 'object',
  properties: { label: { enum: ['spam', 'ham'] }, score: { type: 'integer', minimum: 0, maximum: 9 } },
  required: ['label', 'score'],
};

interface Outcome {
  status: number;
  text: string;
  finishReason: string | null;
  error: { message: string; param: string | null; code: string | null } | null;
}

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer(await tinyModelDir('tiny-llama3'));
});
afterAll(async () => server?.close());

async function request(fields: Record<string, unknown>, options: { chat?: boolean; stream?: boolean; maxTokens?: number; seed?: number; temperature?: number } = {}): Promise<Outcome> {
  const common = { max_tokens: options.maxTokens ?? 32, temperature: options.temperature ?? 1, seed: options.seed ?? 1, stream: options.stream ?? false, ...fields };
  const body = options.chat ? { ...common, messages: [{ role: 'user', content: 'Classify: I loved it.' }] } : { ...common, prompt: 'Review: I loved it. Sentiment:' };
  const response = await fetch(`${server.url}/v1/${options.chat ? 'chat/completions' : 'completions'}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (response.status !== 200) {
    const json = (await response.json()) as { error: Outcome['error'] };
    return { status: response.status, text: '', finishReason: null, error: json.error };
  }
  if (!options.stream) {
    const json = (await response.json()) as { choices: { message?: { content: string }; text?: string; finish_reason: string }[] };
    const choice = json.choices[0]!;
    return { status: 200, text: choice.message?.content ?? choice.text ?? '', finishReason: choice.finish_reason, error: null };
  }
  let text = '';
  let finishReason: string | null = null;
  for (const line of (await response.text()).split('\n')) {
    if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
    const chunk = JSON.parse(line.slice(6)) as { choices: { delta?: { content?: string }; text?: string; finish_reason: string | null }[] };
    for (const choice of chunk.choices) {
      text += choice.delta?.content ?? choice.text ?? '';
      finishReason = choice.finish_reason ?? finishReason;
    }
  }
  return { status: 200, text, finishReason, error: null };
}

/** Every token carries at least one byte, and the end token one more. */
const choiceBudget = Math.max(...CHOICES.map((c) => new TextEncoder().encode(c).length)) + 2;

describe('guided decoding (vLLM fields)', () => {
  it('guided_choice: 24 random requests, both endpoints, streamed or not: exactly one of the choices', async () => {
    const rand = new Rand(7);
    const seen = new Set<string>();
    for (let i = 0; i < 24; i++) {
      const fields = rand.chance(0.25) ? { structured_outputs: { choice: CHOICES } } : { guided_choice: CHOICES };
      const got = await request(fields, { chat: rand.chance(0.5), stream: rand.chance(0.4), maxTokens: choiceBudget, seed: rand.int(0, 1e6), temperature: rand.pick([0, 0.7, 1, 1.5]) });
      expect(got.status, JSON.stringify(got.error)).toBe(200);
      expect(CHOICES, `request ${i}: ${JSON.stringify(got.text)}`).toContain(got.text);
      expect(got.finishReason).toBe('stop');
      seen.add(got.text);
    }
    // The model, not the grammar, picks among them: random seeds reach more than one.
    expect(seen.size).toBeGreaterThan(1);
  });

  it('guided_json (object or JSON string) and structured_outputs.json: JSON that validates', async () => {
    const rand = new Rand(11);
    const budget = maxDocumentBytes(SCHEMA) + 2;
    for (let i = 0; i < 12; i++) {
      const fields = [{ guided_json: SCHEMA }, { guided_json: JSON.stringify(SCHEMA) }, { structured_outputs: { json: SCHEMA } }][i % 3]!;
      const got = await request(fields, { chat: rand.chance(0.5), stream: rand.chance(0.4), maxTokens: budget, seed: rand.int(0, 1e6) });
      expect(got.status, JSON.stringify(got.error)).toBe(200);
      expect(got.finishReason, got.text).toBe('stop');
      expect(validateJson(JSON.parse(got.text) as unknown, SCHEMA), got.text).toEqual([]);
    }
  });

  it('refuses what it cannot enforce, and more than one constraint, with a 400 naming the field; then keeps serving', async () => {
    const cases: [Record<string, unknown>, string, string][] = [
      [{ guided_regex: '[a-z]+' }, 'guided_regex', 'unsupported_parameter'],
      [{ guided_grammar: 'root ::= "a"' }, 'guided_grammar', 'unsupported_parameter'],
      [{ structured_outputs: { regex: '\\d+' } }, 'structured_outputs.regex', 'unsupported_parameter'],
      [{ guided_json: '{not json' }, 'guided_json', 'invalid_value'],
      [{ guided_choice: [] }, 'guided_choice', 'invalid_value'],
      [{ guided_choice: ['a', ''] }, 'guided_choice', 'invalid_value'],
      [{ guided_choice: ['a'], response_format: { type: 'json_object' } }, 'guided_choice', 'invalid_value'],
      [{ guided_choice: ['a'], guided_json: SCHEMA }, 'guided_choice', 'invalid_value'],
    ];
    for (const [fields, param, code] of cases) {
      const got = await request(fields);
      expect(got.status, JSON.stringify(fields)).toBe(400);
      expect(got.error?.param, JSON.stringify(got.error)).toBe(param);
      expect(got.error?.code, JSON.stringify(got.error)).toBe(code);
    }
    const after = await request({ guided_choice: ['ok'] }, { maxTokens: 4 });
    expect(after.text).toBe('ok');
    expect(server.runtime.engine.scheduler.kv.usage()).toBe(0);
  });
});
