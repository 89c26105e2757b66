/**
 * Tool calling through the HTTP API, over the fake service scripting what "the model" writes: tools
 * and tool_choice reaching the template, calls parsed into `message.tool_calls` (Hermes and Llama 3
 * JSON formats), streamed as `delta.tool_calls` the way OpenAI streams them, and what happens when
 * the model does not call.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ChatCompletionChunk, ChatCompletionTool } from 'openai/resources/chat/completions';
import type { GenerateOutput } from '../../../src/engine/inference-service.ts';
import { FakeInferenceService } from '../../helpers/fake-service.ts';
import { postJson, startTestServer, type TestServer } from './harness.ts';

const HERMES_TEMPLATE = '{# Qwen2.5-style #}<tool_call>{"name": <function-name>, "arguments": <args-json-object>}</tool_call>';
const LLAMA_TEMPLATE = '<|start_header_id|>ipython<|end_header_id|> Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.';

const tools: ChatCompletionTool[] = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Current weather in a city',
      parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } }, required: ['city'] },
    },
  },
  { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: { timezone: { type: 'string' } } } } },
];
const messages = [{ role: 'user' as const, content: 'Weather in Paris and the time there?' }];

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t.close());
beforeEach(() => {
  t.service.chatTemplateSource = HERMES_TEMPLATE;
  t.service.script = null;
  t.service.generations.length = 0;
  t.service.renderedChats.length = 0;
});

/** "The model" writes `text` in pieces of `size` characters, one per output, ending with `finishReason`. */
function scriptText(text: string, size = 7, finishReason: GenerateOutput['finishReason'] = 'stop'): void {
  const pieces = text.match(new RegExp(`[\\s\\S]{1,${size}}`, 'g')) ?? [''];
  t.service.script = pieces.map((piece, i) => ({
    text: piece,
    tokenIds: [100 + i],
    finishReason: i === pieces.length - 1 ? finishReason : null,
  }));
}

const HERMES_TWO_CALLS =
  'I will look both up.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}\n</tool_call>\n' +
  '<tool_call>\n{"name": "get_time", "arguments": {"timezone": "Europe/Paris"}}\n</tool_call>';

describe('tools reach the chat template', () => {
  it('passes tools to the template and parses with the format the template shows', async () => {
    scriptText('No tools needed.');
    await t.client.chat.completions.create({ model: 'fake-model', messages, tools });
    const rendered = t.service.renderedChats[0]!;
    expect(rendered.options.tools).toEqual(tools);
    expect(rendered.messages).toEqual(messages);
  });

  it("leaves the tools out and parses nothing for tool_choice 'none'", async () => {
    scriptText(HERMES_TWO_CALLS);
    const completion = await t.client.chat.completions.create({ model: 'fake-model', messages, tools, tool_choice: 'none' });
    expect(t.service.renderedChats[0]!.options.tools).toBeUndefined();
    expect(completion.choices[0]!.message.content).toBe(HERMES_TWO_CALLS);
    expect(completion.choices[0]!.message.tool_calls).toBeUndefined();
    expect(completion.choices[0]!.finish_reason).toBe('stop');
  });

  it("adds an instruction for 'required' (to the system message when there is one)", async () => {
    scriptText(HERMES_TWO_CALLS);
    await t.client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'system', content: 'Be terse.' }, ...messages], tools, tool_choice: 'required' });
    const rendered = t.service.renderedChats[0]!;
    expect(rendered.messages[0]).toEqual({ role: 'system', content: 'Be terse.\n\nYou must answer by calling one or more of the provided functions.' });
    expect(rendered.messages.slice(1)).toEqual(messages);
    expect(rendered.options.tools).toEqual(tools);
  });

  it('offers only the named function, with an instruction, and accepts only calls to it', async () => {
    scriptText(HERMES_TWO_CALLS);
    const completion = await t.client.chat.completions.create({
      model: 'fake-model',
      messages,
      tools,
      tool_choice: { type: 'function', function: { name: 'get_time' } },
    });
    const rendered = t.service.renderedChats[0]!;
    expect(rendered.messages[0]).toEqual({ role: 'system', content: 'You must answer by calling the function "get_time".' });
    expect(rendered.options.tools).toEqual([tools[1]]);
    // The model also called get_weather, which was not offered: not clean calls, so the text comes back.
    expect(completion.choices[0]!.message.tool_calls).toBeUndefined();
    expect(completion.choices[0]!.message.content).toBe(HERMES_TWO_CALLS);
    expect(completion.choices[0]!.finish_reason).toBe('stop');
  });

  it("returns the model's text with finish_reason 'stop' when 'required' gets no call", async () => {
    scriptText('It is sunny in Paris.');
    const completion = await t.client.chat.completions.create({ model: 'fake-model', messages, tools, tool_choice: 'required' });
    expect(completion.choices[0]!.message).toEqual({ role: 'assistant', content: 'It is sunny in Paris.', refusal: null });
    expect(completion.choices[0]!.finish_reason).toBe('stop');
  });

  it('passes tool results and earlier calls (tool role, tool_call_id) to the template', async () => {
    scriptText('It is 18°C in Paris.');
    const history = [
      ...messages,
      { role: 'assistant' as const, content: null, tool_calls: [{ id: 'call_1', type: 'function' as const, function: { name: 'get_weather', arguments: '{"city": "Paris"}' } }] },
      { role: 'tool' as const, tool_call_id: 'call_1', content: '{"temperature": 18}' },
    ];
    const completion = await t.client.chat.completions.create({ model: 'fake-model', messages: history, tools });
    expect(t.service.renderedChats[0]!.messages).toEqual(history);
    expect(completion.choices[0]!.message.content).toBe('It is 18°C in Paris.');
  });

  it('refuses tools when no format is known, and --tool-call-parser overrides detection', async () => {
    t.service.chatTemplateSource = '{{ messages }}';
    const refused = await postJson(`${t.url}/v1/chat/completions`, { messages, tools });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: { param: string } }).error.param).toBe('tools');
    // tool_choice 'none' needs no parser.
    expect((await postJson(`${t.url}/v1/chat/completions`, { messages, tools, tool_choice: 'none' })).status).toBe(200);

    const forced = await startTestServer({}, { toolCallParser: 'llama3_json' });
    try {
      forced.service.chatTemplateSource = HERMES_TEMPLATE;
      forced.service.script = [{ text: '{"name": "get_time", "parameters": {}}', tokenIds: [100], finishReason: 'stop' }];
      const completion = await forced.client.chat.completions.create({ model: 'fake-model', messages, tools });
      const call = completion.choices[0]!.message.tool_calls?.[0];
      expect(call?.type === 'function' && call.function).toEqual({ name: 'get_time', arguments: '{}' });
    } finally {
      await forced.close();
    }
  });
});

describe('non-streaming tool calls', () => {
  it('Hermes: message.tool_calls with call ids, content before the calls, finish_reason tool_calls', async () => {
    scriptText(HERMES_TWO_CALLS);
    const completion = await t.client.chat.completions.create({ model: 'fake-model', messages, tools });
    const choice = completion.choices[0]!;
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.role).toBe('assistant');
    expect(choice.message.content).toBe('I will look both up.');
    const calls = choice.message.tool_calls!;
    expect(calls).toHaveLength(2);
    for (const call of calls) {
      expect(call.id).toMatch(/^call_[A-Za-z0-9]{24}$/);
      expect(call.type).toBe('function');
    }
    expect(calls[0]!.id).not.toBe(calls[1]!.id);
    expect(calls.map((call) => call.type === 'function' && call.function)).toEqual([
      { name: 'get_weather', arguments: '{"city": "Paris", "unit": "celsius"}' },
      { name: 'get_time', arguments: '{"timezone": "Europe/Paris"}' },
    ]);
    expect(JSON.parse((calls[0] as { function: { arguments: string } }).function.arguments)).toEqual({ city: 'Paris', unit: 'celsius' });
  });

  it('Llama 3 JSON: content null and the call parsed from {"name", "parameters"}', async () => {
    t.service.chatTemplateSource = LLAMA_TEMPLATE;
    scriptText('<|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris"}}');
    const completion = await t.client.chat.completions.create({ model: 'fake-model', messages, tools });
    const choice = completion.choices[0]!;
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.content).toBeNull();
    expect(choice.message.tool_calls!.map((call) => call.type === 'function' && call.function)).toEqual([{ name: 'get_weather', arguments: '{"city": "Paris"}' }]);
  });

  it('keeps only the first call with parallel_tool_calls: false', async () => {
    scriptText(HERMES_TWO_CALLS);
    const completion = await t.client.chat.completions.create({ model: 'fake-model', messages, tools, parallel_tool_calls: false });
    expect(completion.choices[0]!.message.tool_calls!.map((call) => call.type === 'function' && call.function.name)).toEqual(['get_weather']);
  });

  it("keeps 'length' and returns the text when max_tokens cuts a call", async () => {
    const cut = HERMES_TWO_CALLS.slice(0, 60);
    scriptText(cut, 7, 'length');
    const completion = await t.client.chat.completions.create({ model: 'fake-model', messages, tools });
    expect(completion.choices[0]!.finish_reason).toBe('length');
    expect(completion.choices[0]!.message.content).toBe(cut);
    expect(completion.choices[0]!.message.tool_calls).toBeUndefined();
  });

  it('parses every choice of n > 1 on its own', async () => {
    scriptText(HERMES_TWO_CALLS);
    const completion = await t.client.chat.completions.create({ model: 'fake-model', messages, tools, n: 2 });
    expect(completion.choices.map((choice) => [choice.index, choice.finish_reason, choice.message.tool_calls?.length])).toEqual([
      [0, 'tool_calls', 2],
      [1, 'tool_calls', 2],
    ]);
  });
});

describe('streaming tool calls', () => {
  async function collect(stream: AsyncIterable<ChatCompletionChunk>): Promise<ChatCompletionChunk[]> {
    const chunks: ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    return chunks;
  }

  /** What a client accumulates from the deltas (as the OpenAI SDK's stream helpers do). */
  function accumulate(chunks: ChatCompletionChunk[]) {
    let content = '';
    const calls: Array<{ id: string; type: string; name: string; arguments: string }> = [];
    let finishReason: string | null = null;
    for (const chunk of chunks) {
      for (const choice of chunk.choices) {
        content += choice.delta.content ?? '';
        for (const delta of choice.delta.tool_calls ?? []) {
          if (delta.id !== undefined) {
            expect(delta.index).toBe(calls.length);
            expect(delta.function?.arguments).toBe('');
            calls.push({ id: delta.id, type: delta.type!, name: delta.function!.name!, arguments: '' });
          } else {
            expect(delta.function?.name).toBeUndefined();
            calls[delta.index]!.arguments += delta.function?.arguments ?? '';
          }
        }
        finishReason = choice.finish_reason ?? finishReason;
      }
    }
    return { content, calls, finishReason };
  }

  for (const size of [1, 3, 11, 1000]) {
    it(`Hermes in pieces of ${size}: content, then each call announced with id/type/name, then argument fragments`, async () => {
      scriptText(HERMES_TWO_CALLS, size);
      const chunks = await collect(await t.client.chat.completions.create({ model: 'fake-model', messages, tools, stream: true }));
      const result = accumulate(chunks);
      expect(result.content).toBe('I will look both up.');
      expect(result.finishReason).toBe('tool_calls');
      expect(result.calls.map(({ name, arguments: args }) => ({ name, arguments: args }))).toEqual([
        { name: 'get_weather', arguments: '{"city": "Paris", "unit": "celsius"}' },
        { name: 'get_time', arguments: '{"timezone": "Europe/Paris"}' },
      ]);
      for (const call of result.calls) {
        expect(call.id).toMatch(/^call_[A-Za-z0-9]{24}$/);
        expect(call.type).toBe('function');
      }
      // Nothing of the tags or the JSON leaks into content; the finish chunk is alone with an empty delta.
      expect(chunks.at(-1)!.choices[0]!.delta).toEqual({});
      expect(chunks[0]!.choices[0]!.delta).toEqual({ role: 'assistant', content: '' });
    });
  }

  it('streams Llama 3 JSON calls as deltas and agrees with the non-streaming answer', async () => {
    t.service.chatTemplateSource = LLAMA_TEMPLATE;
    const text = '{"name": "get_weather", "parameters": {"city": "Paris"}}; {"name": "get_time", "parameters": {"timezone": "CET"}}';
    scriptText(text, 4);
    const whole = await t.client.chat.completions.create({ model: 'fake-model', messages, tools });
    const streamed = accumulate(await collect(await t.client.chat.completions.create({ model: 'fake-model', messages, tools, stream: true })));
    expect(streamed.finishReason).toBe(whole.choices[0]!.finish_reason);
    expect(streamed.content).toBe('');
    expect(streamed.calls.map(({ name, arguments: args }) => ({ name, arguments: args }))).toEqual(
      whole.choices[0]!.message.tool_calls!.map((call) => call.type === 'function' && call.function),
    );
  });

  it('streams plain text as content when the model does not call', async () => {
    t.service.chatTemplateSource = LLAMA_TEMPLATE;
    scriptText('The weather is fine.', 2);
    const result = accumulate(await collect(await t.client.chat.completions.create({ model: 'fake-model', messages, tools, stream: true })));
    expect(result).toEqual({ content: 'The weather is fine.', calls: [], finishReason: 'stop' });
  });

  it('sends the exact OpenAI delta shapes on the wire', async () => {
    scriptText('<tool_call>{"name": "get_time", "arguments": {"timezone": "UTC"}}</tool_call>', 1000);
    const response = await postJson(`${t.url}/v1/chat/completions`, { messages, tools, stream: true });
    const events = (await response.text())
      .split('\n\n')
      .filter((event) => event.startsWith('data: {'))
      .map((event) => JSON.parse(event.slice(6)) as { choices: Array<{ delta: unknown; finish_reason: string | null }> });
    const deltas = events.map((event) => event.choices[0]!.delta);
    expect(deltas[1]).toEqual({ tool_calls: [{ index: 0, id: expect.stringMatching(/^call_/), type: 'function', function: { name: 'get_time', arguments: '' } }] });
    expect(deltas[2]).toEqual({ tool_calls: [{ index: 0, function: { arguments: '{"timezone": "UTC"}' } }] });
    expect(events.at(-1)!.choices[0]!.finish_reason).toBe('tool_calls');
  });
});

describe('the fake service itself', () => {
  it('splits scripted text as told (guards the tests above against an empty script)', () => {
    const fake = new FakeInferenceService();
    expect(fake.chatTemplateSource).toBeNull();
    scriptText('abcdefgh', 3);
    expect(t.service.script!.map((output) => output.text)).toEqual(['abc', 'def', 'gh']);
  });
});
