/**
 * Issue 8, bad input: thousands of malformed and hostile requests against the real server (CPU
 * backend, stories260K or the tiny model), from a seeded generator (FUZZ_SEED=<n> reproduces a run,
 * FUZZ_COUNT=<n> changes its size). Every hostile request must get a 4xx in OpenAI's error shape —
 * never a 500, never a hang (each has a deadline), never a crash — while valid requests interleaved
 * with them keep getting exactly the right answer. Covered: broken JSON, non-object JSON, wrong types
 * for every field, huge and non-finite numbers, duplicate keys, deep nesting, invalid UTF-8, enormous
 * stop lists and strings, prompts over the context (text, token ids, many messages), out-of-vocabulary
 * token ids, n / max_tokens / logit_bias abuse, unknown models, unknown routes, wrong methods and
 * content types, bodies over the limit, huge headers, malformed HTTP, and slowloris clients that
 * trickle or stall their headers or body (408 after --read-timeout). Random byte-level mutations of
 * valid bodies may be valid; they must get a 200 or a 4xx, never a 5xx.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './harness.ts';
import { isOpenAIError, rawExchange, storiesOrTiny, waitFor } from './reliability-helpers.ts';
import { seededRandom } from '../unit/tokenizer/helpers.ts';

const SEED = Number(process.env['FUZZ_SEED'] ?? 8_2024);
const COUNT = Number(process.env['FUZZ_COUNT'] ?? 2400);
const CONCURRENCY = 16;
const REQUEST_DEADLINE_MS = 20_000;

const model = await storiesOrTiny();
const SERVED = 'fuzz-model';
const LIMITS = { maxRequestBodyBytes: 256 * 1024, readTimeout: 1, maxPromptTokens: 256, maxOutputTokens: 64, maxStopLength: 64, maxStopTokenIds: 16, maxN: 4 };

const rng = seededRandom;

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Parses one HTTP/1.1 response out of received text (Content-Length or chunked); null while incomplete. */
function parseResponse(text: string, closed: boolean): RawResponse | null {
  const headEnd = text.indexOf('\r\n\r\n');
  if (headEnd < 0) return null;
  const [statusLine, ...headerLines] = text.slice(0, headEnd).split('\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine!)?.[1]);
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const rest = text.slice(headEnd + 4);
  if (headers['content-length'] !== undefined) {
    const length = Number(headers['content-length']);
    return Buffer.byteLength(rest) >= length ? { status, headers, body: Buffer.from(rest).subarray(0, length).toString() } : null;
  }
  if (headers['transfer-encoding'] === 'chunked') {
    let body = '';
    let at = 0;
    for (;;) {
      const lineEnd = rest.indexOf('\r\n', at);
      if (lineEnd < 0) return null;
      const size = parseInt(rest.slice(at, lineEnd), 16);
      if (size === 0) return { status, headers, body };
      if (rest.length < lineEnd + 2 + size) return null;
      body += rest.slice(lineEnd + 2, lineEnd + 2 + size);
      at = lineEnd + 2 + size + 2;
    }
  }
  return closed ? { status, headers, body: rest } : null;
}

/** Sends raw bytes; resolves with the first response (or throws past the deadline). */
async function sendRaw(url: string, bytes: Buffer | string, options: { trickle?: Buffer[]; trickleMs?: number } = {}): Promise<RawResponse> {
  const exchange = await rawExchange(url, bytes);
  let closed = false;
  void exchange.closed.then(() => (closed = true));
  let stopTrickle = false;
  if (options.trickle) {
    void (async () => {
      for (const piece of options.trickle!) {
        await new Promise((resolve) => setTimeout(resolve, options.trickleMs ?? 200));
        if (stopTrickle || closed) return;
        exchange.socket.write(piece);
      }
    })();
  }
  try {
    let response: RawResponse | null = null;
    await waitFor(() => (response = parseResponse(exchange.received(), closed)) !== null || (closed && exchange.received() === ''), REQUEST_DEADLINE_MS, 'a response');
    if (response === null) throw new Error('the server closed the connection without answering');
    return response;
  } finally {
    stopTrickle = true;
    exchange.socket.destroy();
  }
}

function httpRequest(method: string, path: string, body: Buffer | string | null, headers: Record<string, string> = {}): Buffer {
  const payload = body === null ? Buffer.alloc(0) : Buffer.isBuffer(body) ? body : Buffer.from(body);
  const lines = [`${method} ${path} HTTP/1.1`, 'Host: localhost', 'Connection: close'];
  const hasType = Object.keys(headers).some((name) => name.toLowerCase() === 'content-type');
  if (body !== null && !hasType) lines.push('Content-Type: application/json');
  if (body !== null) lines.push(`Content-Length: ${payload.length}`);
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`), payload]);
}

/** One generated case: what to send, and whether it must be refused (4xx) or may also succeed. */
interface FuzzCase {
  kind: string;
  send(url: string): Promise<RawResponse>;
  /** 'refuse': must be a 4xx; 'any': a 200 or a 4xx. */
  expect: 'refuse' | 'any';
  /** For timeouts: the response must come within this many ms. */
  withinMs?: number;
}

const post = (path: string, body: Buffer | string, headers: Record<string, string> = {}) => (url: string) => sendRaw(url, httpRequest('POST', path, body, headers));
const postJson = (path: string, body: unknown) => post(path, JSON.stringify(body));

const COMPLETION = { model: SERVED, prompt: 'Once upon a time', max_tokens: 8, temperature: 0 };
const CHAT = { model: SERVED, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 8 };

const deep = (depth: number, leaf = '1') => '['.repeat(depth) + leaf + ']'.repeat(depth);

/** Values of the wrong type (or out of range) for each field, per endpoint. */
function badFieldValues(): Array<{ endpoint: 'chat' | 'completions' | 'both'; field: string; values: unknown[] }> {
  const long = (n: number) => 'x'.repeat(n);
  return [
    { endpoint: 'both', field: 'model', values: [123, true, [], {}, 'gpt-4', 'no-such-model', long(5000), '../../etc/passwd'] },
    { endpoint: 'completions', field: 'prompt', values: [123, true, null, {}, [], [[]], [1.5], [-1], [1e300], [999_999], [512], ['a', 1], [[1, 2], [-3]], long(100_000), Array(5000).fill(5), { '0': 1 }] },
    {
      endpoint: 'chat',
      field: 'messages',
      values: [
        'hi', 123, [], [{}], [null], [{ role: 'root', content: 'x' }], [{ role: 'user' }], [{ role: 'user', content: 123 }],
        [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'http://x' } }] }], [{ role: 'user', content: [{ type: 'text' }] }],
        [{ role: 'user', content: [{ type: 'text', text: 5 }] }], Array(3000).fill({ role: 'user', content: 'hello there' }), [{ role: 'user', content: long(60_000) }],
        [{ role: 'assistant', content: null }],
      ],
    },
    { endpoint: 'both', field: 'max_tokens', values: [0, -1, 1.5, '8', 1e20, 2 ** 53, 100_000, 65, true, [], {}] },
    { endpoint: 'chat', field: 'max_completion_tokens', values: [0, -5, 2.5, 'ten', 1e9, 65] },
    { endpoint: 'both', field: 'temperature', values: [-1, 3, 'hot', [], {}, true] },
    { endpoint: 'both', field: 'top_p', values: [0, -0.5, 2, 'x', []] },
    { endpoint: 'both', field: 'top_k', values: [-2, 1.5, 'x', {}] },
    { endpoint: 'both', field: 'min_p', values: [-1, 2, 'x'] },
    { endpoint: 'both', field: 'n', values: [0, -1, 1e9, 5, 100, 1.5, '2', [], {}] },
    { endpoint: 'both', field: 'stop', values: [123, [1, 2], ['a', 'b', 'c', 'd', 'e'], [''], [long(65)], long(65), Array(10_000).fill('a'), [null], {}] },
    { endpoint: 'both', field: 'stop_token_ids', values: ['x', [-1], [1.5], Array(17).fill(1), Array(10_000).fill(3), [null], {}] },
    { endpoint: 'both', field: 'seed', values: [1.5, 'x', 2 ** 64, -(2 ** 64), [], {}] },
    { endpoint: 'completions', field: 'logprobs', values: [-1, 21, 'x', 1.5, true] },
    { endpoint: 'chat', field: 'logprobs', values: ['yes', 1, []] },
    { endpoint: 'chat', field: 'top_logprobs', values: [21, -1, 'x', 2.5] },
    { endpoint: 'both', field: 'logit_bias', values: ['x', [], { '1': 'x' }, { abc: 1 }, { '-1': 1 }, { '999999999': 5 }, { '1': 1e10 }, { '1': -101 }, Object.fromEntries(Array.from({ length: 400 }, (_, i) => [String(i), 1]))] },
    { endpoint: 'both', field: 'presence_penalty', values: [3, -3, 'x', []] },
    { endpoint: 'both', field: 'frequency_penalty', values: [2.5, -2.5, {}, 'y'] },
    { endpoint: 'both', field: 'repetition_penalty', values: [0, -1, 'x'] },
    { endpoint: 'both', field: 'response_format', values: ['json', { type: 'xml' }, { type: 123 }, [], { type: 'json_schema' }] },
    { endpoint: 'both', field: 'stream', values: ['yes', 1, [], {}] },
    { endpoint: 'both', field: 'stream_options', values: ['x', [], { include_usage: 'yes' }] },
    { endpoint: 'chat', field: 'tools', values: ['x', [{}], [{ type: 'function' }], [{ type: 'function', function: {} }], [{ type: 'code', function: { name: 'f' } }], {}] },
    { endpoint: 'chat', field: 'tool_choice', values: ['maybe', 5, { type: 'function', function: { name: 'nope' } }, []] },
    { endpoint: 'completions', field: 'echo', values: ['x', 1] },
    { endpoint: 'completions', field: 'suffix', values: ['abc', 5] },
    { endpoint: 'completions', field: 'best_of', values: [2, 0, 'x'] },
    { endpoint: 'both', field: 'priority', values: [1.5, 'x', {}] },
    { endpoint: 'both', field: 'user', values: [123, [], {}] },
    { endpoint: 'both', field: 'min_tokens', values: [-1, 1.5, 'x', 9] },
    { endpoint: 'chat', field: 'chat_template_kwargs', values: ['x', [], 5] },
    { endpoint: 'chat', field: 'chat_template', values: ['{{ x }}'] },
    { endpoint: 'both', field: 'use_beam_search', values: [true] },
    { endpoint: 'both', field: 'ignore_eos', values: ['x', 2] },
    { endpoint: 'both', field: 'skip_special_tokens', values: ['no', 0] },
  ];
}

function insertInvalidUtf8(json: string, r: () => number): Buffer {
  const sequences = [[0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf8, 0x88, 0x80, 0x80, 0x80], [0x80]];
  const bytes = sequences[Math.floor(r() * sequences.length)]!;
  // Inside a string value, so the JSON would parse were the bytes decoded leniently.
  const at = json.indexOf('"', json.indexOf(':') + 1) + 1;
  return Buffer.concat([Buffer.from(json.slice(0, at)), Buffer.from(bytes), Buffer.from(json.slice(at))]);
}

/** Every enumerated hostile case once, then random picks and random mutations up to COUNT. */
function generateCases(r: () => number): FuzzCase[] {
  const enumerated: FuzzCase[] = [];
  const add = (kind: string, send: FuzzCase['send'], expectation: FuzzCase['expect'] = 'refuse', withinMs?: number) =>
    enumerated.push({ kind, send, expect: expectation, ...(withinMs === undefined ? {} : { withinMs }) });

  for (const { endpoint, field, values } of badFieldValues()) {
    for (const value of values) {
      for (const path of endpoint === 'chat' ? ['/v1/chat/completions'] : endpoint === 'completions' ? ['/v1/completions'] : ['/v1/chat/completions', '/v1/completions']) {
        const base = path === '/v1/completions' ? COMPLETION : CHAT;
        add(`field ${field} on ${path}`, postJson(path, { ...base, [field]: value }));
      }
    }
  }
  // Cross-field rules.
  add('stream_options without stream', postJson('/v1/completions', { ...COMPLETION, stream_options: { include_usage: true } }));
  add('min_tokens over max_tokens', postJson('/v1/completions', { ...COMPLETION, max_tokens: 4, min_tokens: 8 }));
  add('top_logprobs without logprobs', postJson('/v1/chat/completions', { ...CHAT, top_logprobs: 2 }));
  add('continue_final_message with add_generation_prompt', postJson('/v1/chat/completions', { ...CHAT, continue_final_message: true, add_generation_prompt: true }));
  add('echo with logprobs', postJson('/v1/completions', { ...COMPLETION, echo: true, logprobs: 2 }));
  add('n over --max-n, streamed', postJson('/v1/completions', { ...COMPLETION, n: 5, stream: true }));
  add('max_tokens over --max-output-tokens', postJson('/v1/completions', { ...COMPLETION, max_tokens: 65 }));
  add('prompt over --max-prompt-tokens', postJson('/v1/completions', { ...COMPLETION, prompt: Array(257).fill(100) }));
  add('prompt token ids over the context', postJson('/v1/completions', { ...COMPLETION, prompt: Array(20_000).fill(100) }));
  add('text prompt far over the context', postJson('/v1/completions', { ...COMPLETION, prompt: 'Once upon a time. '.repeat(12_000) }));
  add('batched prompts with one over the context', postJson('/v1/completions', { ...COMPLETION, prompt: ['ok', 'x '.repeat(20_000)] }));
  // Whole bodies.
  for (const text of ['', ' ', 'null', '[]', '"text"', '123', 'true', '{', '{"prompt": "x"', '{"prompt": "x",}', "{'prompt': 'x'}", '{"prompt": "x"} trailing', '\u0000', 'NaN', '{"max_tokens": NaN}', '{"max_tokens": Infinity}']) {
    add(`body ${JSON.stringify(text).slice(0, 30)}`, post('/v1/completions', text));
  }
  add('duplicate key, the last one bad', post('/v1/completions', '{"prompt":"x","max_tokens":8,"max_tokens":-1}'));
  add('huge number literal', post('/v1/completions', `{"prompt":"x","max_tokens":1${'0'.repeat(400)}}`));
  add('huge negative exponent', post('/v1/completions', '{"prompt":"x","temperature":1e-400,"max_tokens":0}'));
  for (const depth of [65, 1000, 100_000]) {
    add(`nesting ${depth} deep in prompt`, post('/v1/completions', `{"prompt":${deep(depth)}}`));
    add(`nesting ${depth} deep in an unknown field`, post('/v1/chat/completions', `{"messages":[{"role":"user","content":"hi"}],"x":${deep(depth, '{}')}}`));
  }
  add('nesting in chat_template_kwargs', postJson('/v1/chat/completions', { ...CHAT, chat_template_kwargs: JSON.parse(`{"a":${'{"a":'.repeat(70)}1${'}'.repeat(70)}}`) as unknown }));
  for (let i = 0; i < 6; i++) add('invalid UTF-8 in a string', post('/v1/completions', insertInvalidUtf8(JSON.stringify(COMPLETION), r)));
  add('invalid UTF-8 in chat content', post('/v1/chat/completions', insertInvalidUtf8(JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }] }), r)));
  add('UTF-16 body', post('/v1/completions', Buffer.from(JSON.stringify(COMPLETION), 'utf16le')));
  add('body over the limit (Content-Length)', post('/v1/completions', JSON.stringify({ ...COMPLETION, prompt: 'x'.repeat(300 * 1024) })));
  add('body over the limit (chunked)', (url) =>
    sendRaw(url, `POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${(() => {
      const chunk = 'x'.repeat(64 * 1024);
      return `${chunk.length.toString(16)}\r\n${chunk}\r\n`.repeat(5) + '0\r\n\r\n';
    })()}`),
  );
  // Routes, methods, content types.
  for (const [method, path] of [['GET', '/v1/chat/completions'], ['PUT', '/v1/completions'], ['DELETE', '/v1/completions'], ['PATCH', '/v1/chat/completions'], ['POST', '/v1/models'], ['DELETE', '/v1/models'], ['POST', '/health']] as const) {
    add(`${method} ${path}`, (url) => sendRaw(url, httpRequest(method, path, method === 'GET' || method === 'DELETE' ? null : JSON.stringify(COMPLETION))));
  }
  for (const path of ['/v1/nope', '/v2/chat/completions', '/v1/chat/completions/extra', '/%2e%2e/%2e%2e/etc/passwd', '/v1/models/no-such-model', `/${'a'.repeat(4000)}`]) {
    add(`unknown route ${path.slice(0, 30)}`, (url) => sendRaw(url, httpRequest('GET', path, null)));
  }
  for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', 'text/json', 'application/jsonx', '']) {
    add(`content type '${type}'`, post('/v1/completions', JSON.stringify(COMPLETION), { 'Content-Type': type }));
  }
  // Headers and HTTP framing (Node's parser answers these; the server gives them OpenAI's shape too).
  add('one 20 KiB header', post('/v1/completions', JSON.stringify(COMPLETION), { 'X-Big': 'y'.repeat(20 * 1024) }));
  add('3000 headers', (url) => sendRaw(url, Buffer.from(`GET /health HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 3000 }, (_, i) => `X-H${i}: v`).join('\r\n')}\r\n\r\n`)));
  add('garbage request line', (url) => sendRaw(url, 'GARBAGE\r\n\r\n'));
  add('bad chunked framing', (url) => sendRaw(url, 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n'));
  add('negative Content-Length', (url) => sendRaw(url, 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: -5\r\n\r\n{}'));
  add('two Content-Lengths', (url) => sendRaw(url, 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 5\r\n\r\n{}'));
  add('NUL in a header', (url) => sendRaw(url, 'GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\u0000b\r\n\r\n'));
  // Slowloris: a stalled body, a stalled header block, a body trickled in too slowly (--read-timeout 1 s).
  const slowMs = 5_000;
  add('slowloris: body stalls', (url) => sendRaw(url, 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"prompt":'), 'refuse', slowMs);
  add('slowloris: headers stall', (url) => sendRaw(url, 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: appl'), 'refuse', slowMs);
  add('slowloris: body trickles', (url) => sendRaw(url, 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{', { trickle: Array.from({ length: 39 }, () => Buffer.from(' ')), trickleMs: 150 }), 'refuse', slowMs);
  add('slowloris: chunked body stalls', (url) => sendRaw(url, 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"pro\r\n'), 'refuse', slowMs);

  // Random cases up to COUNT: enumerated ones again (other orders and neighbours), and byte-level
  // mutations of valid bodies, which may or may not stay valid.
  const cases = [...enumerated];
  const valid = [JSON.stringify(COMPLETION), JSON.stringify(CHAT)];
  while (cases.length < COUNT) {
    if (r() < 0.5) {
      cases.push(enumerated[Math.floor(r() * enumerated.length)]!);
      continue;
    }
    const chat = r() < 0.5;
    const text = valid[chat ? 1 : 0]!;
    const bytes = Buffer.from(text);
    const mutation = Math.floor(r() * 4);
    let mutated: Buffer;
    let expectation: FuzzCase['expect'] = 'any';
    if (mutation === 0) {
      mutated = bytes.subarray(0, Math.floor(r() * (bytes.length - 1))); // a proper prefix: never valid
      expectation = 'refuse';
    } else if (mutation === 1) {
      mutated = Buffer.from(bytes);
      for (let flips = 1 + Math.floor(r() * 3); flips > 0; flips--) mutated[Math.floor(r() * mutated.length)] = Math.floor(r() * 256);
    } else if (mutation === 2) {
      const at = Math.floor(r() * bytes.length);
      mutated = Buffer.concat([bytes.subarray(0, at), Buffer.from([Math.floor(r() * 256)]), bytes.subarray(at)]);
    } else {
      const at = Math.floor(r() * bytes.length);
      mutated = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1 + Math.floor(r() * 4))]);
    }
    cases.push({ kind: `mutation ${mutation}`, send: post(chat ? '/v1/chat/completions' : '/v1/completions', mutated), expect: expectation });
  }
  return cases;
}

let server: TestServer;
let referenceText = '';

beforeAll(async () => {
  server = await startTestServer(model.dir, { servedModelName: SERVED, maxNumSeqs: 8, ...LIMITS });
  const response = await fetch(`${server.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(COMPLETION) });
  referenceText = ((await response.json()) as { choices: { text: string }[] }).choices[0]!.text;
});
afterAll(async () => server?.close());

describe(`fuzzing the API (${model.name}, seed ${SEED})`, () => {
  it(`refuses ${COUNT} hostile requests with a 4xx in OpenAI's shape while valid ones keep being answered`, async () => {
    const r = rng(SEED);
    const cases = generateCases(r);
    const failures: string[] = [];
    const tally: Record<string, number> = {};
    let validServed = 0;
    let next = 0;

    const checkValid = async (index: number) => {
      const stream = index % 2 === 1;
      const response = await fetch(`${server.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...COMPLETION, stream }),
        signal: AbortSignal.timeout(REQUEST_DEADLINE_MS),
      });
      const text = await response.text();
      const got = stream ? [...text.matchAll(/"text":"((?:[^"\\]|\\.)*)"/g)].map((m) => JSON.parse(`"${m[1]!}"`) as string).join('') : (JSON.parse(text) as { choices: { text: string }[] }).choices[0]!.text;
      if (response.status !== 200 || got !== referenceText) failures.push(`valid request #${index}: ${response.status} ${JSON.stringify(got)} (expected ${JSON.stringify(referenceText)})`);
      else validServed++;
    };

    const worker = async () => {
      for (;;) {
        const index = next++;
        if (index >= cases.length) return;
        if (index % 10 === 0) await checkValid(index);
        const fuzzCase = cases[index]!;
        const start = Date.now();
        let response: RawResponse;
        try {
          response = await fuzzCase.send(server.url);
        } catch (error) {
          failures.push(`#${index} ${fuzzCase.kind}: ${(error as Error).message}`);
          continue;
        }
        const ms = Date.now() - start;
        tally[String(response.status)] = (tally[String(response.status)] ?? 0) + 1;
        const refused = response.status >= 400 && response.status < 500;
        const problem =
          response.status >= 500
            ? 'a 5xx'
            : fuzzCase.expect === 'refuse' && !refused
              ? `status ${response.status}, expected a 4xx`
              : refused && !isOpenAIErrorText(response.body)
                ? 'a 4xx not in OpenAI error shape'
                : refused && !/application\/json/.test(response.headers['content-type'] ?? '')
                  ? 'a 4xx without a JSON content type'
                  : fuzzCase.withinMs !== undefined && ms > fuzzCase.withinMs
                    ? `answered after ${ms} ms`
                    : null;
        if (problem !== null) failures.push(`#${index} ${fuzzCase.kind}: ${problem}: ${response.status} ${response.body.slice(0, 200)}`);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));

    console.log(`fuzz (seed ${SEED}): ${cases.length} hostile requests, statuses ${JSON.stringify(tally)}, ${validServed} valid requests answered correctly`);
    expect(failures, `reproduce with FUZZ_SEED=${SEED}`).toEqual([]);
    expect(validServed).toBeGreaterThanOrEqual(Math.floor(cases.length / 10));
    // Still alive and holding nothing.
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    const engine = server.runtime.engine;
    await waitFor(() => engine.numTrackedRequests === 0, 5000, 'the engine to be idle');
    expect(engine.scheduler.kv.usage()).toBe(0);
    engine.scheduler.checkIntegrity();
  });
});

function isOpenAIErrorText(text: string): boolean {
  try {
    return isOpenAIError(JSON.parse(text));
  } catch {
    return false;
  }
}
