/**
 * Structured logs: JSON lines (or pino-pretty text on a terminal), one line per finished generation
 * with the request id, token counts, timings and finish reason, and never the prompt or output text.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createApp } from '../../../src/api/app.ts';
import { apiLoggerFrom, createLogger, isPrettyFormat } from '../../../src/logging/logger.ts';
import type { LoggerOptions } from '../../../src/logging/logger.ts';
import { FakeInferenceService } from '../../helpers/fake-service.ts';

function capture(isTTY = false): { stream: Writable & { isTTY?: boolean }; lines: () => string[] } {
  const chunks: string[] = [];
  const stream: Writable & { isTTY?: boolean } = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      chunks.push(chunk.toString());
      callback();
    },
  });
  if (isTTY) stream.isTTY = true;
  return { stream, lines: () => chunks.join('').split('\n').filter((l) => l !== '') };
}

function jsonLogger(options: LoggerOptions = {}) {
  const out = capture();
  const logger = createLogger({ format: 'json', destination: out.stream, ...options });
  const records = () => out.lines().map((line) => JSON.parse(line) as Record<string, unknown>);
  return { logger, records, lines: out.lines };
}

const SECRET_PROMPT = 'my secret question about zebras';

describe('createLogger', () => {
  it('writes one JSON object per line with an ISO time and the level by name', () => {
    const { logger, records } = jsonLogger();
    logger.info({ port: 8000 }, 'listening');
    logger.debug('hidden at the default level');
    const [record] = records();
    expect(records()).toHaveLength(1);
    expect(record).toMatchObject({ level: 'info', msg: 'listening', port: 8000 });
    expect(String(record!['time'])).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it('is human-readable on a terminal (auto) and JSON otherwise', () => {
    const tty = capture(true);
    createLogger({ destination: tty.stream }).info({ port: 8000 }, 'listening');
    const line = tty.lines().join('\n');
    expect(() => JSON.parse(line)).toThrow();
    expect(line).toMatch(/INFO/);
    expect(line).toMatch(/listening/);
    expect(isPrettyFormat({ destination: tty.stream })).toBe(true);

    const pipe = capture(false);
    createLogger({ destination: pipe.stream }).info('listening');
    expect(JSON.parse(pipe.lines()[0]!)).toMatchObject({ msg: 'listening' });
    expect(isPrettyFormat({ destination: pipe.stream })).toBe(false);
    expect(isPrettyFormat({ destination: pipe.stream, format: 'pretty' })).toBe(true);
  });

  it('honours the level', () => {
    const { logger, records } = jsonLogger({ level: 'warn' });
    logger.info('no');
    logger.warn('yes');
    expect(records().map((r) => r['msg'])).toEqual(['yes']);
  });
});

describe('request log lines', () => {
  it('logs one line per finished generation with ids, tokens and timings, never the text', async () => {
    const { logger, records, lines } = jsonLogger();
    const service = new FakeInferenceService({ reply: 'zebras are striped horses', tokenDelayMs: 1 });
    const app = createApp(service, { requestLog: logger, logger: apiLoggerFrom(logger) });
    const response = await app.request('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'req-42' },
      body: JSON.stringify({ messages: [{ role: 'user', content: SECRET_PROMPT }], max_tokens: 3 }),
    });
    const body = (await response.json()) as { id: string; usage: { prompt_tokens: number; completion_tokens: number } };
    expect(response.status).toBe(200);

    const finished = records().filter((r) => r['msg'] === 'request finished');
    expect(finished).toHaveLength(1);
    const line = finished[0]!;
    expect(line).toMatchObject({
      level: 'info',
      requestId: 'req-42',
      engineRequestId: body.id,
      path: '/v1/chat/completions',
      finishReason: 'length',
      promptTokens: body.usage.prompt_tokens,
      completionTokens: 3,
      cachedPromptTokens: 0,
      queueMs: null, // the fake service reports no engine timing
    });
    expect(line['ttftMs']).toBeGreaterThan(0);
    expect(line['e2eMs']).toBeGreaterThanOrEqual(line['ttftMs'] as number);
    expect(line['tpotMs']).toBeGreaterThan(0);
    const all = lines().join('\n');
    expect(all).not.toContain('zebras');
    expect(all).not.toContain('secret');
  });

  it('gives each choice of n > 1 its own line under the same request id', async () => {
    const { logger, records } = jsonLogger();
    const app = createApp(new FakeInferenceService({ reply: 'a b' }), { requestLog: logger });
    await (
      await app.request('/v1/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': 'req-n' },
        body: JSON.stringify({ prompt: 'hello', n: 2, stream: true }),
      })
    ).text();
    const finished = records().filter((r) => r['msg'] === 'request finished');
    expect(finished.map((r) => r['requestId'])).toEqual(['req-n', 'req-n']);
    expect(new Set(finished.map((r) => r['engineRequestId'])).size).toBe(2);
    expect(finished.every((r) => r['finishReason'] === 'stop')).toBe(true);
  });

  it('logs refused requests with their status, without the body', async () => {
    const { logger, records, lines } = jsonLogger();
    const app = createApp(new FakeInferenceService(), { requestLog: logger });
    const response = await app.request('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'req-bad' },
      body: JSON.stringify({ messages: [{ role: 'user', content: SECRET_PROMPT }], temperature: 'hot' }),
    });
    expect(response.status).toBe(400);
    expect(records()).toEqual([expect.objectContaining({ level: 'info', msg: 'http request', requestId: 'req-bad', method: 'POST', path: '/v1/chat/completions', status: 400 })]);
    expect(lines().join('\n')).not.toContain('zebras');
  });

  it('sends unexpected errors to the logger with the request id', async () => {
    const { logger, records } = jsonLogger();
    const service = new FakeInferenceService();
    service.throwOnGenerate = new Error('bug in the service');
    const app = createApp(service, { requestLog: logger, logger: apiLoggerFrom(logger) });
    const response = await app.request('/v1/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'req-bug' },
      body: JSON.stringify({ prompt: 'hi' }),
    });
    expect(response.status).toBe(500);
    const errors = records().filter((r) => r['level'] === 'error');
    expect(errors.map((r) => r['msg'])).toContain('http request');
    expect(JSON.stringify(errors)).toContain('bug in the service');
    expect(JSON.stringify(errors)).toContain('req-bug');
  });
});
