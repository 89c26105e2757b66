/**
 * Every way a request can be wrong → the right status and OpenAI's error shape, and the server
 * keeps serving afterwards.
 */
import http from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { APIError, RateLimitError } from 'openai';
import { ServiceError } from '../../../src/engine/inference-service.ts';
import { startTestServer, type TestServer } from './harness.ts';

const BODY_LIMIT = 2048;

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ reply: 'fine' }, { maxRequestBodyBytes: BODY_LIMIT });
});
afterAll(() => t.close());
beforeEach(() => {
  t.service.throwOnGenerate = null;
  t.service.script = null;
  t.service.statsError = null;
  t.service.generations.length = 0;
  t.loggedErrors.length = 0;
});

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

const chat = (fields: Record<string, unknown>) => JSON.stringify({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }], ...fields });
const completion = (fields: Record<string, unknown>) => JSON.stringify({ model: 'fake-model', prompt: 'hi', ...fields });

interface Case {
  name: string;
  method?: string;
  path: string;
  body?: string;
  contentType?: string | null;
  status: number;
  param?: string | null;
  code?: string | null;
  message?: RegExp;
}

// fetch labels a string body text/plain unless told otherwise.
const JSON_HEADERS = { 'content-type': 'application/json' };
const CHAT = '/v1/chat/completions';
const COMPLETIONS = '/v1/completions';

const cases: Case[] = [
  // Body that is not a JSON object.
  { name: 'malformed JSON', path: CHAT, body: '{"model": "fake-model", ', status: 400, param: null, message: /could not parse the JSON body/ },
  { name: 'empty body', path: CHAT, body: '', status: 400, param: null, message: /empty/ },
  { name: 'a JSON array body', path: CHAT, body: '[1, 2]', status: 400, param: null, code: 'invalid_type' },
  { name: 'a JSON string body', path: COMPLETIONS, body: '"hello"', status: 400, param: null, code: 'invalid_type' },
  // Missing and mistyped fields, chat.
  { name: 'missing messages', path: CHAT, body: JSON.stringify({ model: 'fake-model' }), status: 400, param: 'messages', code: 'missing_required_parameter' },
  { name: 'empty messages', path: CHAT, body: chat({ messages: [] }), status: 400, param: 'messages' },
  { name: 'messages not an array', path: CHAT, body: chat({ messages: 'hi' }), status: 400, param: 'messages', code: 'invalid_type' },
  { name: 'unknown role', path: CHAT, body: chat({ messages: [{ role: 'robot', content: 'x' }] }), status: 400, param: 'messages[0].role', code: 'invalid_value' },
  { name: 'missing content', path: CHAT, body: chat({ messages: [{ role: 'user' }] }), status: 400, param: 'messages[0].content', code: 'missing_required_parameter' },
  { name: 'content a number', path: CHAT, body: chat({ messages: [{ role: 'user', content: 5 }] }), status: 400, param: 'messages[0].content', code: 'invalid_type' },
  {
    name: 'image content part',
    path: CHAT,
    body: chat({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }),
    status: 400,
    param: 'messages[0].content[0].type',
    code: 'unsupported_value',
  },
  { name: 'model not a string', path: CHAT, body: chat({ model: 42 }), status: 400, param: 'model', code: 'invalid_type' },
  { name: 'temperature a string', path: CHAT, body: chat({ temperature: 'hot' }), status: 400, param: 'temperature', code: 'invalid_type', message: /expected a number, but got a string/ },
  { name: 'temperature above 2', path: CHAT, body: chat({ temperature: 2.5 }), status: 400, param: 'temperature', message: /<= 2/ },
  { name: 'temperature below 0', path: CHAT, body: chat({ temperature: -0.1 }), status: 400, param: 'temperature' },
  { name: 'top_p of 0', path: CHAT, body: chat({ top_p: 0 }), status: 400, param: 'top_p', message: /> 0/ },
  { name: 'top_p above 1', path: CHAT, body: chat({ top_p: 1.01 }), status: 400, param: 'top_p' },
  { name: 'max_tokens a decimal', path: CHAT, body: chat({ max_tokens: 1.5 }), status: 400, param: 'max_tokens', code: 'invalid_type' },
  { name: 'max_tokens 0', path: CHAT, body: chat({ max_tokens: 0 }), status: 400, param: 'max_tokens' },
  { name: 'max_completion_tokens a string', path: CHAT, body: chat({ max_completion_tokens: '10' }), status: 400, param: 'max_completion_tokens' },
  { name: 'n above --max-n', path: CHAT, body: chat({ n: 1000 }), status: 400, param: 'n', code: 'value_above_max', message: /<= 16 \(this server's --max-n\), but got 1000/ },
  { name: 'n = 0', path: CHAT, body: chat({ n: 0 }), status: 400, param: 'n', code: 'value_below_min' },
  { name: 'n above --max-n (completions)', path: COMPLETIONS, body: completion({ n: 17 }), status: 400, param: 'n', code: 'value_above_max' },
  { name: 'max_tokens past the context', path: CHAT, body: chat({ max_tokens: 5000 }), status: 400, param: 'max_tokens', code: 'context_length_exceeded', message: /maximum context length is 4096 tokens\. However, you requested \d+ tokens/ },
  { name: 'max_completion_tokens past the context', path: CHAT, body: chat({ max_tokens: 5, max_completion_tokens: 4096 }), status: 400, param: 'max_completion_tokens', code: 'context_length_exceeded' },
  { name: 'max_tokens past the context (completions)', path: COMPLETIONS, body: completion({ max_tokens: 4095 }), status: 400, param: 'max_tokens', code: 'context_length_exceeded' },
  { name: 'n a string', path: CHAT, body: chat({ n: 'one' }), status: 400, param: 'n', code: 'invalid_type' },
  { name: 'stream a string', path: CHAT, body: chat({ stream: 'yes' }), status: 400, param: 'stream', code: 'invalid_type' },
  { name: 'continuous_usage_stats a string', path: CHAT, body: chat({ stream: true, stream_options: { continuous_usage_stats: 'on' } }), status: 400, param: 'stream_options.continuous_usage_stats', code: 'invalid_type' },
  { name: 'stream_options without stream', path: CHAT, body: chat({ stream_options: { include_usage: true } }), status: 400, param: 'stream_options' },
  { name: 'include_usage a string', path: CHAT, body: chat({ stream: true, stream_options: { include_usage: 'yes' } }), status: 400, param: 'stream_options.include_usage' },
  { name: 'stop a number', path: CHAT, body: chat({ stop: 3 }), status: 400, param: 'stop', code: 'invalid_type' },
  { name: 'five stop strings', path: CHAT, body: chat({ stop: ['a', 'b', 'c', 'd', 'e'] }), status: 400, param: 'stop', message: /at most 4/ },
  { name: 'an empty stop string', path: CHAT, body: chat({ stop: [''] }), status: 400, param: 'stop[0]' },
  { name: 'seed a decimal', path: CHAT, body: chat({ seed: 1.5 }), status: 400, param: 'seed', code: 'invalid_type' },
  { name: 'logprobs a number (chat)', path: CHAT, body: chat({ logprobs: 1 }), status: 400, param: 'logprobs', code: 'invalid_type' },
  { name: 'top_logprobs above 20', path: CHAT, body: chat({ logprobs: true, top_logprobs: 21 }), status: 400, param: 'top_logprobs' },
  { name: 'top_logprobs without logprobs', path: CHAT, body: chat({ top_logprobs: 2 }), status: 400, param: 'top_logprobs' },
  { name: 'presence_penalty out of range', path: CHAT, body: chat({ presence_penalty: 3 }), status: 400, param: 'presence_penalty' },
  { name: 'frequency_penalty out of range', path: CHAT, body: chat({ frequency_penalty: -2.5 }), status: 400, param: 'frequency_penalty' },
  { name: 'frequency_penalty a string', path: COMPLETIONS, body: completion({ frequency_penalty: '1' }), status: 400, param: 'frequency_penalty', code: 'invalid_type' },
  { name: 'logit_bias above 100', path: CHAT, body: chat({ logit_bias: { '5': 101 } }), status: 400, param: 'logit_bias.5' },
  { name: 'logit_bias key not a token id', path: CHAT, body: chat({ logit_bias: { abc: 1 } }), status: 400, param: 'logit_bias', code: 'invalid_value', message: /"abc" is not a token id/ },
  // Tools (the fake's template shows no tool-call format, so valid tools are refused with 'tools').
  { name: 'tools for a model without a tool-call format', path: CHAT, body: chat({ tools: [{ type: 'function', function: { name: 'f' } }] }), status: 400, param: 'tools', code: 'unsupported_value', message: /--tool-call-parser/ },
  { name: 'tools not an array', path: CHAT, body: chat({ tools: { type: 'function' } }), status: 400, param: 'tools', code: 'invalid_type' },
  { name: 'tool of another type', path: CHAT, body: chat({ tools: [{ type: 'custom', function: { name: 'f' } }] }), status: 400, param: 'tools[0].type', code: 'invalid_value' },
  { name: 'tool without a function', path: CHAT, body: chat({ tools: [{ type: 'function' }] }), status: 400, param: 'tools[0].function', code: 'missing_required_parameter' },
  { name: 'tool name with a space', path: CHAT, body: chat({ tools: [{ type: 'function', function: { name: 'get weather' } }] }), status: 400, param: 'tools[0].function.name', code: 'invalid_value' },
  { name: 'tool parameters not an object', path: CHAT, body: chat({ tools: [{ type: 'function', function: { name: 'f', parameters: 'x' } }] }), status: 400, param: 'tools[0].function.parameters', code: 'invalid_type' },
  { name: 'tool_choice required without tools', path: CHAT, body: chat({ tool_choice: 'required' }), status: 400, param: 'tool_choice', code: 'invalid_value' },
  { name: 'tool_choice an unknown string', path: CHAT, body: chat({ tool_choice: 'always' }), status: 400, param: 'tool_choice', code: 'invalid_value' },
  {
    name: 'tool_choice names a function not in tools',
    path: CHAT,
    body: chat({ tools: [{ type: 'function', function: { name: 'f' } }], tool_choice: { type: 'function', function: { name: 'g' } } }),
    status: 400,
    param: 'tool_choice.function.name',
    code: 'invalid_value',
  },
  { name: 'parallel_tool_calls a string', path: CHAT, body: chat({ parallel_tool_calls: 'yes' }), status: 400, param: 'parallel_tool_calls', code: 'invalid_type' },
  { name: 'continue_final_message with add_generation_prompt', path: CHAT, body: chat({ continue_final_message: true, add_generation_prompt: true }), status: 400, param: 'continue_final_message' },
  { name: 'continue_final_message a string', path: CHAT, body: chat({ continue_final_message: 'yes' }), status: 400, param: 'continue_final_message', code: 'invalid_type' },
  { name: 'response_format of an unknown type', path: CHAT, body: chat({ response_format: { type: 'yaml' } }), status: 400, param: 'response_format.type' },
  { name: 'json_schema response_format without json_schema', path: CHAT, body: chat({ response_format: { type: 'json_schema' } }), status: 400, param: 'response_format.json_schema', code: 'missing_required_parameter' },
  { name: 'json_schema without a name', path: CHAT, body: chat({ response_format: { type: 'json_schema', json_schema: { schema: {} } } }), status: 400, param: 'response_format.json_schema.name' },
  {
    name: 'json_schema with a keyword structured output cannot enforce',
    path: CHAT,
    body: chat({ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'string', pattern: '^a+$' } } } }),
    status: 400,
    param: 'response_format.json_schema.schema',
    message: /"pattern" is not supported/,
  },
  { name: 'user a number', path: CHAT, body: chat({ user: 7 }), status: 400, param: 'user', code: 'invalid_type' },
  // vLLM extensions.
  { name: 'top_k below -1', path: CHAT, body: chat({ top_k: -2 }), status: 400, param: 'top_k' },
  { name: 'top_k a decimal', path: CHAT, body: chat({ top_k: 2.5 }), status: 400, param: 'top_k', code: 'invalid_type' },
  { name: 'min_p above 1', path: CHAT, body: chat({ min_p: 1.5 }), status: 400, param: 'min_p' },
  { name: 'ignore_eos a string', path: CHAT, body: chat({ ignore_eos: 'true' }), status: 400, param: 'ignore_eos', code: 'invalid_type' },
  { name: 'min_tokens negative', path: CHAT, body: chat({ min_tokens: -1 }), status: 400, param: 'min_tokens' },
  { name: 'min_tokens above max_tokens', path: CHAT, body: chat({ min_tokens: 10, max_tokens: 5 }), status: 400, param: 'min_tokens' },
  { name: 'stop_token_ids with a negative id', path: CHAT, body: chat({ stop_token_ids: [3, -1] }), status: 400, param: 'stop_token_ids[1]' },
  { name: 'skip_special_tokens a number', path: CHAT, body: chat({ skip_special_tokens: 0 }), status: 400, param: 'skip_special_tokens' },
  { name: 'add_generation_prompt a string', path: CHAT, body: chat({ add_generation_prompt: 'no' }), status: 400, param: 'add_generation_prompt' },
  { name: 'chat_template_kwargs an array', path: CHAT, body: chat({ chat_template_kwargs: [1] }), status: 400, param: 'chat_template_kwargs' },
  { name: 'return_tokens_as_token_ids a string', path: CHAT, body: chat({ return_tokens_as_token_ids: 'y' }), status: 400, param: 'return_tokens_as_token_ids' },
  { name: 'priority a decimal', path: CHAT, body: chat({ priority: 0.5 }), status: 400, param: 'priority' },
  { name: 'repetition_penalty 0', path: CHAT, body: chat({ repetition_penalty: 0 }), status: 400, param: 'repetition_penalty' },
  // Completions.
  { name: 'missing prompt', path: COMPLETIONS, body: JSON.stringify({ model: 'fake-model' }), status: 400, param: 'prompt', code: 'missing_required_parameter' },
  { name: 'prompt a number', path: COMPLETIONS, body: completion({ prompt: 5 }), status: 400, param: 'prompt', code: 'invalid_type' },
  { name: 'prompt mixing strings and token lists', path: COMPLETIONS, body: completion({ prompt: ['a', [1]] }), status: 400, param: 'prompt', code: 'invalid_type' },
  { name: 'negative token id prompt', path: COMPLETIONS, body: completion({ prompt: [1, -5] }), status: 400, param: 'prompt[1]', code: 'invalid_value' },
  { name: 'decimal token id in a batched prompt', path: COMPLETIONS, body: completion({ prompt: [[1, 2], [3, 4.5]] }), status: 400, param: 'prompt[1][1]', code: 'invalid_value' },
  { name: 'empty prompt in a batch', path: COMPLETIONS, body: completion({ prompt: [[1, 2], []] }), status: 400, param: 'prompt[1]', code: 'invalid_value' },
  { name: 'empty prompt array', path: COMPLETIONS, body: completion({ prompt: [] }), status: 400, param: 'prompt' },
  { name: 'echo with logprobs', path: COMPLETIONS, body: completion({ echo: true, logprobs: 1 }), status: 400, param: 'echo', code: 'unsupported_value' },
  { name: 'echo a string', path: COMPLETIONS, body: completion({ echo: 'yes' }), status: 400, param: 'echo', code: 'invalid_type' },
  { name: 'add_special_tokens a number', path: COMPLETIONS, body: completion({ add_special_tokens: 1 }), status: 400, param: 'add_special_tokens', code: 'invalid_type' },
  { name: 'logprobs true (completions wants an integer)', path: COMPLETIONS, body: completion({ logprobs: true }), status: 400, param: 'logprobs', code: 'invalid_type' },
  { name: 'logprobs above 20', path: COMPLETIONS, body: completion({ logprobs: 21 }), status: 400, param: 'logprobs' },
  { name: 'best_of 3', path: COMPLETIONS, body: completion({ best_of: 3 }), status: 400, param: 'best_of', code: 'unsupported_value' },
  { name: 'suffix', path: COMPLETIONS, body: completion({ suffix: 'end' }), status: 400, param: 'suffix', code: 'unsupported_value' },
  { name: 'completions temperature a string', path: COMPLETIONS, body: completion({ temperature: 'x' }), status: 400, param: 'temperature' },
  // /tokenize and /detokenize.
  { name: 'tokenize without prompt or messages', path: '/tokenize', body: JSON.stringify({}), status: 400, param: 'prompt', code: 'missing_required_parameter' },
  { name: 'tokenize a number', path: '/tokenize', body: JSON.stringify({ prompt: 5 }), status: 400, param: 'prompt', code: 'invalid_type' },
  { name: 'tokenize messages with a bad role', path: '/tokenize', body: JSON.stringify({ messages: [{ role: 'x', content: 'y' }] }), status: 400, param: 'messages[0].role' },
  { name: 'detokenize a negative id', path: '/detokenize', body: JSON.stringify({ tokens: [1, -1] }), status: 400, param: 'tokens[1]' },
  { name: 'detokenize without tokens', path: '/detokenize', body: JSON.stringify({}), status: 400, param: 'tokens', code: 'missing_required_parameter' },
  { name: 'tokenize for an unknown model', path: '/tokenize', body: JSON.stringify({ model: 'gpt-9', prompt: 'x' }), status: 404, param: 'model', code: 'model_not_found' },
  // Unknown model.
  { name: 'unknown model (chat)', path: CHAT, body: chat({ model: 'gpt-9' }), status: 404, param: 'model', code: 'model_not_found', message: /`gpt-9` does not exist/ },
  { name: 'unknown model (completions)', path: COMPLETIONS, body: completion({ model: 'gpt-9' }), status: 404, param: 'model', code: 'model_not_found' },
  { name: 'unknown model (retrieve)', method: 'GET', path: '/v1/models/gpt-9', status: 404, param: 'model', code: 'model_not_found' },
  // Routing, methods, media types.
  { name: 'unknown route', method: 'GET', path: '/v1/nope', status: 404, param: null, message: /^Invalid URL \(GET \/v1\/nope\)$/ },
  { name: 'unknown route (POST)', path: '/v2/chat/completions', body: chat({}), status: 404 },
  { name: 'GET on a POST route', method: 'GET', path: CHAT, status: 405, code: 'method_not_allowed' },
  { name: 'DELETE on /v1/models', method: 'DELETE', path: '/v1/models', status: 405, code: 'method_not_allowed' },
  { name: 'DELETE on /v1/models/:id', method: 'DELETE', path: '/v1/models/fake-model', status: 405, code: 'method_not_allowed' },
  { name: 'POST on /health', path: '/health', body: '{}', status: 405, code: 'method_not_allowed' },
  { name: 'text/plain body', path: CHAT, body: chat({}), contentType: 'text/plain', status: 415, code: 'unsupported_media_type' },
  { name: 'form-encoded body (curl -d without -H)', path: COMPLETIONS, body: completion({}), contentType: 'application/x-www-form-urlencoded', status: 415 },
  { name: 'body over the limit', path: CHAT, body: chat({ pad: 'x'.repeat(BODY_LIMIT) }), status: 413, code: 'request_too_large' },
];

async function send(testCase: Case): Promise<Response> {
  const headers: Record<string, string> = { 'x-request-id': 'client-req-1' };
  const contentType = testCase.contentType === undefined ? 'application/json' : testCase.contentType;
  if (testCase.body !== undefined && contentType !== null) headers['content-type'] = contentType;
  return fetch(`${t.url}${testCase.path}`, { method: testCase.method ?? 'POST', headers, body: testCase.body });
}

describe('bad requests', () => {
  it.each(cases.map((testCase) => [testCase.name, testCase] as const))('%s', async (_name, testCase) => {
    const response = await send(testCase);
    expect(response.status).toBe(testCase.status);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(response.headers.get('x-request-id')).toBe('client-req-1');
    const body = (await response.json()) as ErrorBody;
    expect(Object.keys(body)).toEqual(['error']);
    expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
    expect(body.error.type).toBe('invalid_request_error');
    expect(body.error.message.length).toBeGreaterThan(0);
    if (testCase.param !== undefined) expect(body.error.param).toBe(testCase.param);
    if (testCase.code !== undefined) expect(body.error.code).toBe(testCase.code);
    if (testCase.message) expect(body.error.message).toMatch(testCase.message);
    // Nothing reached the engine, and nothing was logged as a bug.
    expect(t.service.generations).toHaveLength(0);
    expect(t.loggedErrors).toHaveLength(0);
  });

  it('the server still answers a good request after all of them', async () => {
    for (const testCase of cases) await (await send(testCase)).arrayBuffer();
    const completion = await t.client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }] });
    expect(completion.choices[0]!.message.content).toBe('fine');
    const text = await t.client.completions.create({ model: 'fake-model', prompt: 'hi' });
    expect(text.choices[0]!.text).toBe('fine');
  });

  it('names the allowed methods in the Allow header of a 405', async () => {
    const response = await fetch(`${t.url}/v1/chat/completions`);
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('POST');
  });

  it('accepts JSON sent with a charset or without a content type', async () => {
    const withCharset = await fetch(`${t.url}${CHAT}`, { method: 'POST', headers: { 'content-type': 'application/json; charset=utf-8' }, body: chat({}) });
    expect(withCharset.status).toBe(200);
    const without = await fetch(`${t.url}${CHAT}`, { method: 'POST', body: new Blob([chat({})]) });
    expect(without.status).toBe(200);
  });

  it('ignores unknown fields and accepts explicit nulls, as OpenAI does', async () => {
    const response = await fetch(`${t.url}${CHAT}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: chat({ temperature: null, stop: null, seed: null, max_tokens: null, metadata: { a: 1 }, store: false, something_new: [1] }),
    });
    expect(response.status).toBe(200);
  });
});

describe('request body limit', () => {
  it('rejects an oversized chunked body while it is still streaming in', async () => {
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      // No content-length: the server cannot know the size up front and must count bytes as they arrive.
      const request = http.request(`${t.url}${CHAT}`, { method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } });
      request.on('response', (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => (text += chunk.toString()));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: text }));
      });
      request.on('error', reject);
      request.write(`{"messages": [], "pad": "${'x'.repeat(BODY_LIMIT)}`);
      // The request is never ended: a 413 can only come from the size check, not from a parsed body.
      request.flushHeaders();
    });
    expect(status).toBe(413);
    expect((JSON.parse(body) as ErrorBody).error.code).toBe('request_too_large');
    const after = await t.client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }] });
    expect(after.choices[0]!.message.content).toBe('fine');
  });

  it('accepts a chunked body under the limit', async () => {
    const response = await fetch(`${t.url}${CHAT}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode(chat({}).slice(0, 10)));
          controller.enqueue(new TextEncoder().encode(chat({}).slice(10)));
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(response.status).toBe(200);
  });
});

describe('errors from the inference service', () => {
  it("maps 'overloaded' to 429 with Retry-After", async () => {
    t.service.throwOnGenerate = new ServiceError('overloaded', 'Too many requests waiting; try again later.', { retryAfterSeconds: 7 });
    const response = await fetch(`${t.url}${CHAT}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: chat({}) });
    expect(response.status).toBe(429);
    expect(response.headers.get('retry-after')).toBe('7');
    const body = (await response.json()) as ErrorBody;
    expect(body.error).toEqual({ message: 'Too many requests waiting; try again later.', type: 'rate_limit_error', param: null, code: 'overloaded' });
  });

  it('rounds Retry-After up to whole seconds and defaults it to 1', async () => {
    t.service.throwOnGenerate = new ServiceError('overloaded', 'busy', { retryAfterSeconds: 0.2 });
    expect((await fetch(`${t.url}${COMPLETIONS}`, { method: 'POST', headers: JSON_HEADERS, body: completion({ stream: true }) })).headers.get('retry-after')).toBe('1');
    t.service.throwOnGenerate = new ServiceError('overloaded', 'busy');
    expect((await fetch(`${t.url}${COMPLETIONS}`, { method: 'POST', headers: JSON_HEADERS, body: completion({}) })).headers.get('retry-after')).toBe('1');
  });

  it('gives the OpenAI SDK a RateLimitError for 429 (even for a stream request)', async () => {
    t.service.throwOnGenerate = new ServiceError('overloaded', 'busy', { retryAfterSeconds: 3 });
    const attempt = t.client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }], stream: true });
    await expect(attempt).rejects.toBeInstanceOf(RateLimitError);
  });

  it("maps 'unavailable' to 503", async () => {
    t.service.throwOnGenerate = new ServiceError('unavailable', 'The engine is shutting down.');
    const response = await fetch(`${t.url}${CHAT}`, { method: 'POST', headers: JSON_HEADERS, body: chat({}) });
    expect(response.status).toBe(503);
    expect(((await response.json()) as ErrorBody).error).toMatchObject({ type: 'server_error', code: 'service_unavailable', message: 'The engine is shutting down.' });
  });

  it("maps 'invalid_request' to 400 with the service's param", async () => {
    t.service.throwOnGenerate = new ServiceError('invalid_request', 'Token id 999999 is outside the vocabulary.', { param: 'prompt' });
    const response = await fetch(`${t.url}${COMPLETIONS}`, { method: 'POST', headers: JSON_HEADERS, body: completion({ prompt: [999999] }) });
    expect(response.status).toBe(400);
    expect(((await response.json()) as ErrorBody).error).toEqual({
      message: 'Token id 999999 is outside the vocabulary.',
      type: 'invalid_request_error',
      param: 'prompt',
      code: null,
    });
  });

  it('answers a bug with a 500 that hides the stack, logs it, and keeps serving', async () => {
    t.service.throwOnGenerate = new TypeError("Cannot read properties of undefined (reading 'kv')");
    const response = await fetch(`${t.url}${CHAT}`, { method: 'POST', headers: { ...JSON_HEADERS, 'x-request-id': 'bug-1' }, body: chat({}) });
    expect(response.status).toBe(500);
    const text = await response.text();
    expect(text).not.toMatch(/TypeError|reading 'kv'|at .*\.ts/);
    const body = JSON.parse(text) as ErrorBody;
    expect(body.error.type).toBe('server_error');
    expect(body.error.message).toContain('bug-1');
    expect(t.loggedErrors).toHaveLength(1);
    expect(t.loggedErrors[0]!.details).toMatchObject({ requestId: 'bug-1' });
    expect(String(t.loggedErrors[0]!.details?.['error'])).toContain("reading 'kv'");

    const after = await t.client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }] });
    expect(after.choices[0]!.message.content).toBe('fine');
  });

  it("answers a non-streaming 'abort' finish the client did not cause with a retryable 503", async () => {
    t.service.script = [{ finishReason: 'abort' }];
    const attempt = t.client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }] });
    await expect(attempt).rejects.toMatchObject({ status: 503 });
    await expect(attempt).rejects.toBeInstanceOf(APIError);
  });
});

describe('x-request-id', () => {
  it('echoes a valid client id and generates one otherwise', async () => {
    const echoed = await fetch(`${t.url}/v1/models`, { headers: { 'x-request-id': 'abc-123' } });
    expect(echoed.headers.get('x-request-id')).toBe('abc-123');
    const generated = await fetch(`${t.url}/v1/models`);
    expect(generated.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const unsafe = await fetch(`${t.url}/v1/models`, { headers: { 'x-request-id': 'bad id with spaces' } });
    expect(unsafe.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});
