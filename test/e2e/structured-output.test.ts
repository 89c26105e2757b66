/**
 * Structured output through the HTTP API on real (tiny) models: for a randomized set of JSON Schemas
 * and prompts, greedy and sampled, chat and completions, streaming and not, every response is JSON
 * that validates against its schema — 100%, not "most". The random-weight tiny models are the
 * hardest case: they put no probability where JSON goes, so the mask alone carries them.
 *
 * The schemas are bounded (strings have maxLength or enum, arrays maxItems; whitespace runs and
 * digits are capped by the grammar), so a document has a bounded length in bytes and every token
 * carries at least one: max_tokens at that bound cannot cut a document short.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileJsonObject, validateJson } from '../../src/structured/index.ts';
import { tinyModelDir } from '../fixtures/tiny-models.ts';
import type { TinyModelName } from '../fixtures/tiny-models.ts';
import { HAS_SHARED_MODELS, SHARED_MODELS, SHARED_SKIP_REASON } from '../helpers/paths.ts';
import { Rand, maxDocumentBytes, randomSchema } from '../unit/structured/random-schemas.ts';
import { startTestServer, type TestServer } from './harness.ts';

/**
 * The backend the servers run on: cpu here and in CI; scripts/device/gpu-run.sh runs this file again with
 * UPDRAFT_E2E_DEVICE=cuda, where the grammar mask goes through the CUDA process_logits kernel.
 */
const DEVICE = process.env['UPDRAFT_E2E_DEVICE'] || 'cpu';

const PROMPTS = ['Once upon a time', 'Give me a JSON record for a cat named Tom.', 'x', 'The answer, as JSON:'];

interface Case {
  schema: Record<string, unknown> | null; // null: json_object
  prompt: string;
  chat: boolean;
  stream: boolean;
  temperature: number;
  seed: number;
  maxTokens: number;
}

function makeCases(seed: number, count: number, budget: number): Case[] {
  const rand = new Rand(seed);
  const cases: Case[] = [];
  while (cases.length < count) {
    const schema = randomSchema(rand, true);
    // Every token carries at least one byte; the end token is one more, and a request whose last
    // allowed token is its end still finishes with 'length' (max_tokens is checked first, as vLLM does).
    const bound = maxDocumentBytes(schema) + 2;
    if (bound > budget) continue; // too long to be sure it fits the context: draw another
    cases.push({
      schema,
      prompt: rand.pick(PROMPTS),
      chat: rand.chance(0.5),
      stream: rand.chance(0.3),
      temperature: rand.pick([0, 0.7, 1, 1.5]),
      seed: rand.int(0, 1e6),
      maxTokens: bound,
    });
  }
  return cases;
}

/**
 * json_object does not bound a document's length (any keys, any strings), and random-weight models
 * need not close one: a response cut by max_tokens must still be a prefix of a JSON object.
 */
function makeJsonObjectCases(seed: number, count: number): Case[] {
  const rand = new Rand(seed);
  return Array.from({ length: count }, () => ({
    schema: null,
    prompt: rand.pick(PROMPTS),
    chat: rand.chance(0.5),
    stream: rand.chance(0.3),
    temperature: rand.pick([0, 0.7, 1]),
    seed: rand.int(0, 1e6),
    maxTokens: 160,
  }));
}

function checkJsonObjects(results: { text: string; finishReason: string | null }[]): void {
  const grammar = compileJsonObject();
  for (const r of results) {
    if (r.finishReason === 'stop') {
      const value: unknown = JSON.parse(r.text);
      expect(typeof value === 'object' && value !== null && !Array.isArray(value), r.text).toBe(true);
    } else {
      expect(r.finishReason, r.text).toBe('length');
      // A character cut in the middle is flushed as U+FFFD: drop it.
      const text = r.text.endsWith('\uFFFD') ? r.text.slice(0, -1) : r.text;
      expect(grammar.initial.stepBytes(new TextEncoder().encode(text)), text).not.toBeNull();
    }
  }
}

async function readSse(response: Response): Promise<{ text: string; finishReason: string | null }> {
  const body = await response.text();
  let text = '';
  let finishReason: string | null = null;
  for (const line of body.split('\n')) {
    if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
    const chunk = JSON.parse(line.slice(6)) as { choices: { delta?: { content?: string }; text?: string; finish_reason: string | null }[] };
    for (const choice of chunk.choices) {
      text += choice.delta?.content ?? choice.text ?? '';
      finishReason = choice.finish_reason ?? finishReason;
    }
  }
  return { text, finishReason };
}

async function run(server: TestServer, c: Case): Promise<{ text: string; finishReason: string | null }> {
  const responseFormat = c.schema === null ? { type: 'json_object' } : { type: 'json_schema', json_schema: { name: 'random', schema: c.schema, strict: true } };
  const common = { max_tokens: c.maxTokens, temperature: c.temperature, seed: c.seed, response_format: responseFormat, stream: c.stream };
  const body = c.chat ? { ...common, messages: [{ role: 'user', content: c.prompt }] } : { ...common, prompt: c.prompt };
  const response = await fetch(`${server.url}/v1/${c.chat ? 'chat/completions' : 'completions'}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (response.status !== 200) throw new Error(`HTTP ${response.status}: ${await response.text()}`);
  if (c.stream) return readSse(response);
  const json = (await response.json()) as { choices: { message?: { content: string }; text?: string; finish_reason: string }[] };
  const choice = json.choices[0]!;
  return { text: choice.message?.content ?? choice.text ?? '', finishReason: choice.finish_reason };
}

function checkAll(cases: Case[], results: { text: string; finishReason: string | null }[]): void {
  const failures: string[] = [];
  results.forEach((r, i) => {
    const c = cases[i]!;
    const where = `case ${i} (${c.chat ? 'chat' : 'completions'}, T=${c.temperature}, schema ${JSON.stringify(c.schema)}): ${JSON.stringify(r.text)}`;
    if (r.finishReason !== 'stop') return failures.push(`${where}: finish_reason ${r.finishReason}`);
    let value: unknown;
    try {
      value = JSON.parse(r.text);
    } catch (error) {
      return failures.push(`${where}: not JSON (${(error as Error).message})`);
    }
    if (c.schema === null) {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) failures.push(`${where}: not a JSON object`);
    } else {
      const problems = validateJson(value, c.schema);
      if (problems.length > 0) failures.push(`${where}: ${problems.join('; ')}`);
    }
  });
  expect(failures, failures.join('\n')).toEqual([]);
}

const MODELS: { name: TinyModelName; count: number; asyncScheduling: boolean }[] = [
  { name: 'tiny-llama3', count: 48, asyncScheduling: true },
  { name: 'tiny-qwen2', count: 32, asyncScheduling: false },
  { name: 'tiny-llama', count: 24, asyncScheduling: true },
];

for (const { name, count, asyncScheduling } of MODELS) {
  describe(`structured output on ${name} [${DEVICE}] (async scheduling ${asyncScheduling ? 'on' : 'off'})`, () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer(await tinyModelDir(name), { device: DEVICE, asyncScheduling, maxNumSeqs: 16 });
    });
    afterAll(async () => server?.close());

    it('json_object: complete answers are JSON objects; cut ones are viable prefixes of one', async () => {
      const cases = makeJsonObjectCases(name.length, 8);
      const results = await Promise.all(cases.map((c) => run(server, c)));
      checkJsonObjects(results);
    }, 600_000);

    it(`${count} random schemas and prompts: every response validates`, async () => {
      const context = server.runtime.model.maxModelLen;
      const cases = makeCases(name.length * 1000 + count, count, Math.min(context - 64, 900));
      const results = await Promise.all(cases.map((c) => run(server, c)));
      checkAll(cases, results);
      expect(server.runtime.engine.scheduler.hasUnfinishedRequests()).toBe(false);
    }, 600_000);
  });
}

describe.skipIf(!HAS_SHARED_MODELS)(`structured output on stories260K${HAS_SHARED_MODELS ? '' : ` (${SHARED_SKIP_REASON})`}`, () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(join(SHARED_MODELS, 'stories260K'), { device: DEVICE, maxNumSeqs: 16 });
  });
  afterAll(async () => server?.close());

  it('json_object: complete answers are JSON objects; cut ones are viable prefixes of one', async () => {
    const results = await Promise.all(makeJsonObjectCases(3, 8).map((c) => run(server, c)));
    checkJsonObjects(results);
  }, 600_000);

  it('24 random schemas and prompts on a trained model: every response validates', async () => {
    const cases = makeCases(260, 24, 400);
    const results = await Promise.all(cases.map((c) => run(server, c)));
    checkAll(cases, results);
  }, 600_000);

  it('a fixed schema, greedy: the story model fills it in', async () => {
    const schema = {
      type: 'object',
      properties: { name: { type: 'string', maxLength: 12 }, age: { type: 'integer', minimum: 1, maximum: 9 }, happy: { type: 'boolean' } },
      required: ['name', 'age', 'happy'],
      additionalProperties: false,
    };
    const [result] = await Promise.all([run(server, { schema, prompt: 'Once upon a time, there was a little girl named Lily.', chat: false, stream: false, temperature: 0, seed: 0, maxTokens: 300 })]);
    checkAll([{ schema, prompt: '', chat: false, stream: false, temperature: 0, seed: 0, maxTokens: 300 }], [result!]);
  }, 120_000);
});
