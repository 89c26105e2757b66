/**
 * The SSE wire format itself, parsed with eventsource-parser rather than the OpenAI SDK (which
 * tolerates sloppy framing): headers, `data: <json>\n\n` events, usage chunk, `[DONE]`, and errors
 * that happen after the stream started.
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { APIError } from 'openai';
import { ServiceError } from '../../../src/engine/inference-service.ts';
import { rawRequest, startTestServer, type TestServer } from './harness.ts';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ reply: 'A B C' });
});
afterAll(() => t.close());
beforeEach(() => {
  t.service.script = null;
  t.service.failAfterOutputs = null;
  t.service.generations.length = 0;
  t.loggedErrors.length = 0;
});

function parseEvents(text: string): EventSourceMessage[] {
  const events: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (event) => events.push(event) });
  parser.feed(text);
  return events;
}

async function streamRaw(path: string, body: object) {
  const response = await rawRequest(`${t.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ stream: true, ...body }),
  });
  return { ...response, events: parseEvents(response.text) };
}

const chatBody = { messages: [{ role: 'user', content: 'hi' }] };

describe('SSE framing', () => {
  it('sends event-stream headers, one data: line per event separated by blank lines, and ends with [DONE]', async () => {
    const { status, headers, text, events } = await streamRaw('/v1/chat/completions', { ...chatBody, stream_options: { include_usage: true } });
    expect(status).toBe(200);
    expect(headers['content-type']).toMatch(/^text\/event-stream/);
    expect(headers['cache-control']).toBe('no-cache');
    expect(headers['connection']).toBe('keep-alive');
    expect(headers['x-request-id']).toBeTruthy();

    // Exact framing: every block is a single `data: ` line, blocks end with a blank line.
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
    const blocks = text.split('\n\n');
    expect(blocks.pop()).toBe('');
    for (const block of blocks) expect(block).toMatch(/^data: [^\n]+$/);

    expect(events.at(-1)!.data).toBe('[DONE]');
    expect(events.every((event) => event.event === undefined)).toBe(true);
    const chunks = events.slice(0, -1).map((event) => JSON.parse(event.data) as { choices: unknown[]; usage: unknown });
    // role chunk + 3 words + finish chunk + usage chunk
    expect(chunks).toHaveLength(6);
    expect(chunks.at(-1)!.choices).toEqual([]);
    expect(chunks.at(-1)!.usage).toMatchObject({ completion_tokens: 3 });
    expect(chunks.slice(0, -1).every((chunk) => chunk.usage === null)).toBe(true);
  });

  it('frames /v1/completions the same way', async () => {
    const { headers, events } = await streamRaw('/v1/completions', { prompt: 'x', stream_options: { include_usage: true } });
    expect(headers['content-type']).toMatch(/^text\/event-stream/);
    expect(events.at(-1)!.data).toBe('[DONE]');
    const chunks = events.slice(0, -1).map((event) => JSON.parse(event.data) as { object: string; choices: Array<{ text: string }> });
    expect(chunks.every((chunk) => chunk.object === 'text_completion')).toBe(true);
    expect(chunks.map((chunk) => chunk.choices[0]?.text ?? '').join('')).toBe('A B C');
    expect(chunks.at(-1)!.choices).toEqual([]);
  });

  it('sends a text delta and the finish chunk separately when the last output carries both', async () => {
    const id = t.service.wordTokenId('end');
    t.service.script = [{ text: 'end', tokenIds: [id], finishReason: 'length' }];
    const { events } = await streamRaw('/v1/chat/completions', chatBody);
    const choices = events.slice(0, -1).map((event) => (JSON.parse(event.data) as { choices: Array<{ delta: object; finish_reason: string | null }> }).choices[0]!);
    expect(choices).toEqual([
      expect.objectContaining({ delta: { role: 'assistant', content: '' }, finish_reason: null }),
      expect.objectContaining({ delta: { content: 'end' }, finish_reason: null }),
      expect.objectContaining({ delta: {}, finish_reason: 'length' }),
    ]);
  });
});

describe('errors after the stream started', () => {
  it('are sent as a data: {"error": …} event followed by [DONE]', async () => {
    t.service.failAfterOutputs = { count: 1, error: new ServiceError('unavailable', 'device lost') };
    const { status, events } = await streamRaw('/v1/chat/completions', chatBody);
    expect(status).toBe(200);
    expect(events.at(-1)!.data).toBe('[DONE]');
    const errorEvent = JSON.parse(events.at(-2)!.data) as unknown;
    expect(errorEvent).toEqual({ error: { message: 'device lost', type: 'server_error', param: null, code: 'service_unavailable' } });
    // role chunk + the one output before the failure
    expect(events).toHaveLength(2 + 2);
  });

  it('hide the details of unexpected errors and log them', async () => {
    t.service.failAfterOutputs = { count: 1, error: new Error('secret internals at line 42') };
    const { events } = await streamRaw('/v1/completions', { prompt: 'x' });
    const errorEvent = JSON.parse(events.at(-2)!.data) as { error: { message: string; type: string } };
    expect(errorEvent.error.type).toBe('server_error');
    expect(errorEvent.error.message).not.toContain('secret');
    expect(events.at(-1)!.data).toBe('[DONE]');
    expect(t.loggedErrors).toHaveLength(1);
    expect(String(t.loggedErrors[0]!.details?.['error'])).toContain('secret internals at line 42');
  });

  it('surface in the OpenAI SDK as an APIError', async () => {
    t.service.failAfterOutputs = { count: 2, error: new ServiceError('internal', 'kv cache corrupted') };
    const stream = await t.client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }], stream: true });
    const received: string[] = [];
    const consume = async () => {
      for await (const chunk of stream) received.push(chunk.choices[0]?.delta.content ?? '');
    };
    const failure = await consume().then(() => null, (error: unknown) => error);
    expect(failure).toBeInstanceOf(APIError);
    expect((failure as APIError).message).toContain('kv cache corrupted');
    expect(received.join('')).toBe('A B');
    // The server keeps serving afterwards.
    t.service.failAfterOutputs = null;
    const ok = await t.client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }] });
    expect(ok.choices[0]!.message.content).toBe('A B C');
  });

  it("turn an 'abort' finish while the client is still connected into an error event", async () => {
    t.service.script = [{ text: 'A', tokenIds: [t.service.wordTokenId('A')] }, { finishReason: 'abort' }];
    const { events } = await streamRaw('/v1/chat/completions', chatBody);
    const errorEvent = JSON.parse(events.at(-2)!.data) as { error: { code: string } };
    expect(errorEvent.error.code).toBe('request_aborted');
    expect(events.at(-1)!.data).toBe('[DONE]');
  });

  it('a generation that ends without a finish reason is a logged bug, not a silent success', async () => {
    t.service.script = [{ text: 'A', tokenIds: [t.service.wordTokenId('A')] }];
    const { events } = await streamRaw('/v1/chat/completions', chatBody);
    const errorEvent = JSON.parse(events.at(-2)!.data) as { error: { type: string } };
    expect(errorEvent.error.type).toBe('server_error');
    expect(t.loggedErrors).toHaveLength(1);
  });
});
