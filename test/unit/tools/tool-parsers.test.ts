/**
 * Tool-call parsers on realistic model outputs (the formats the Llama 3.1/3.2 and Qwen2.5 templates
 * teach): the non-streaming answer, and the streaming events for the same text cut at every possible
 * chunk boundary (one cut, and one character at a time), which must add up to the same calls.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createToolCallStream, detectToolCallParser, parseToolCalls, type ToolCallEvent, type ToolCallParserName, type ToolCallParserOptions } from '../../../src/tools/index.ts';
import { CallObjectScanner } from '../../../src/tools/json-call-scanner.ts';
import { detectCallStart } from '../../../src/tools/llama3-json.ts';
import { HAS_SHARED_MODELS, SHARED_MODELS } from '../../helpers/paths.ts';

const ANY: ToolCallParserOptions = { toolNames: null, maxCalls: Infinity };
const WEATHER: ToolCallParserOptions = { toolNames: new Set(['get_weather', 'get_time']), maxCalls: Infinity };

interface Assembled {
  content: string;
  calls: Array<{ name: string; arguments: string }>;
}

function assemble(events: ToolCallEvent[]): Assembled {
  const result: Assembled = { content: '', calls: [] };
  for (const event of events) {
    if (event.type === 'content') result.content += event.text;
    else if (event.type === 'call') {
      expect(event.index).toBe(result.calls.length);
      result.calls.push({ name: event.name, arguments: '' });
    } else {
      expect(event.index).toBe(result.calls.length - 1);
      result.calls[event.index]!.arguments += event.fragment;
    }
  }
  return result;
}

function streamChunks(parser: ToolCallParserName, chunks: string[], options: ToolCallParserOptions): { events: ToolCallEvent[]; malformed: boolean } {
  const stream = createToolCallStream(parser, options);
  const events: ToolCallEvent[] = [];
  for (const chunk of chunks) events.push(...stream.push(chunk));
  events.push(...stream.finish());
  return { events, malformed: stream.malformed };
}

/** Every way to cut the text once, plus one code point per chunk. */
function chunkings(text: string): string[][] {
  const points = Array.from(text);
  const result: string[][] = [points];
  for (let cut = 0; cut <= points.length; cut++) result.push([points.slice(0, cut).join(''), points.slice(cut).join('')]);
  // Three-way cuts around the interesting region (tags and braces), to catch state carried across pushes.
  for (let a = 0; a < points.length; a += 3) for (let b = a + 1; b < points.length; b += 5) result.push([points.slice(0, a).join(''), points.slice(a, b).join(''), points.slice(b).join('')]);
  return result;
}

/** The streamed events, however the text is cut, add up to what one push gives. */
function expectChunkingInvariant(parser: ToolCallParserName, text: string, options: ToolCallParserOptions = ANY): Assembled {
  const whole = streamChunks(parser, [text], options);
  const expected = assemble(whole.events);
  for (const chunks of chunkings(text)) {
    const streamed = streamChunks(parser, chunks, options);
    expect(assemble(streamed.events), JSON.stringify(chunks)).toEqual(expected);
    expect(streamed.malformed).toBe(whole.malformed);
  }
  return expected;
}

describe('hermes (Qwen2.5) format', () => {
  const single = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}\n</tool_call>';

  it('parses one call with nothing before it', () => {
    expect(parseToolCalls('hermes', single, WEATHER)).toEqual({
      content: null,
      calls: [{ name: 'get_weather', arguments: '{"city": "Paris", "unit": "celsius"}' }],
    });
    expectChunkingInvariant('hermes', single, WEATHER);
  });

  it('keeps the text before the first call as content and parses parallel calls', () => {
    const text =
      'Let me look that up for you.\n\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n' +
      '<tool_call>\n{"name": "get_time", "arguments": {"timezone": "Europe/Paris", "format": "24h"}}\n</tool_call>';
    const parsed = parseToolCalls('hermes', text, WEATHER);
    expect(parsed.content).toBe('Let me look that up for you.');
    expect(parsed.calls).toEqual([
      { name: 'get_weather', arguments: '{"city": "Paris"}' },
      { name: 'get_time', arguments: '{"timezone": "Europe/Paris", "format": "24h"}' },
    ]);
    const streamed = expectChunkingInvariant('hermes', text, WEATHER);
    expect(streamed.calls).toEqual(parsed.calls);
    expect(streamed.content).toBe(parsed.content);
  });

  it('handles nested arguments, escapes, unicode and braces inside strings', () => {
    const args = '{"query": "SELECT * FROM t WHERE a = \\"{x}\\" AND b = \'}\'", "filters": [{"k": "città", "v": [1, 2.5e3, -0.1, true, null]}], "emoji": "🌧️\\u00e9"}';
    const text = `<tool_call>\n{"name": "search", "arguments": ${args}}\n</tool_call>`;
    const parsed = parseToolCalls('hermes', text, ANY);
    expect(parsed.calls).toEqual([{ name: 'search', arguments: args }]);
    expect(JSON.parse(parsed.calls[0]!.arguments)).toMatchObject({ filters: [{ k: 'città' }] });
    expect(expectChunkingInvariant('hermes', text).calls).toEqual(parsed.calls);
  });

  it('accepts arguments before the name, "parameters", and a call without arguments ({})', () => {
    const text = '<tool_call>{"arguments": {"a": 1}, "name": "f"}</tool_call><tool_call>{"name": "g"}</tool_call><tool_call>{"name": "h", "parameters": {"b": [2]}}</tool_call>';
    expect(parseToolCalls('hermes', text, ANY).calls).toEqual([
      { name: 'f', arguments: '{"a": 1}' },
      { name: 'g', arguments: '{}' },
      { name: 'h', arguments: '{"b": [2]}' },
    ]);
    expectChunkingInvariant('hermes', text);
  });

  it('returns plain text untouched, including a lone "<" and text that only looks like the tag', () => {
    const text = 'The answer is x < 3 and <tool_cal is not a tag.  \n';
    expect(parseToolCalls('hermes', text, ANY)).toEqual({ content: text, calls: [] });
    expect(expectChunkingInvariant('hermes', text)).toEqual({ content: text, calls: [] });
  });

  it('falls back to content when a call is broken, cut off, or names an unknown function', () => {
    const broken = 'Sure.<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"]}\n</tool_call>';
    const cutOff = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Par';
    const unknown = '<tool_call>\n{"name": "launch_rocket", "arguments": {}}\n</tool_call>';
    const notAnObject = '<tool_call>\n{"name": "get_weather", "arguments": "Paris"}\n</tool_call>';
    const noName = '<tool_call>\n{"arguments": {}}\n</tool_call>';
    const noObject = '<tool_call>\nget_weather(Paris)\n</tool_call>';
    for (const text of [broken, cutOff, unknown, notAnObject, noName, noObject]) {
      expect(parseToolCalls('hermes', text, WEATHER), text).toEqual({ content: text, calls: [] });
      expect(streamChunks('hermes', [text], WEATHER).malformed, text).toBe(true);
      expectChunkingInvariant('hermes', text, WEATHER);
    }
  });

  it('announces a call as soon as its name is known and streams argument fragments in order', () => {
    const stream = createToolCallStream('hermes', ANY);
    expect(stream.push('I will check. <tool')).toEqual([{ type: 'content', text: 'I will check.' }]);
    expect(stream.push('_call>\n{"name": "get_wea')).toEqual([]);
    expect(stream.push('ther", "arguments": {"ci')).toEqual([
      { type: 'call', index: 0, name: 'get_weather' },
      { type: 'arguments', index: 0, fragment: '{"ci' },
    ]);
    expect(stream.push('ty": "Oslo"}}\n</tool_call>')).toEqual([{ type: 'arguments', index: 0, fragment: 'ty": "Oslo"}' }]);
    expect(stream.finish()).toEqual([]);
    expect(stream.malformed).toBe(false);
  });

  it('keeps only the first call when parallel calls are off', () => {
    const text = '<tool_call>{"name": "get_weather", "arguments": {}}</tool_call>\n<tool_call>{"name": "get_time", "arguments": {}}</tool_call>';
    expect(parseToolCalls('hermes', text, { toolNames: null, maxCalls: 1 }).calls).toEqual([{ name: 'get_weather', arguments: '{}' }]);
    expectChunkingInvariant('hermes', text, { toolNames: null, maxCalls: 1 });
  });
});

describe('llama3_json (Llama 3.1 / 3.2) format', () => {
  it('parses a call with and without <|python_tag|>', () => {
    for (const text of [
      '{"name": "get_weather", "parameters": {"city": "San Francisco, CA", "unit": "fahrenheit"}}',
      '<|python_tag|>{"name": "get_weather", "parameters": {"city": "San Francisco, CA", "unit": "fahrenheit"}}',
      '\n\n  {"name" : "get_weather" , "parameters" : {"city": "San Francisco, CA", "unit": "fahrenheit"} }',
    ]) {
      const parsed = parseToolCalls('llama3_json', text, WEATHER);
      expect(parsed.content).toBeNull();
      expect(parsed.calls).toHaveLength(1);
      expect(parsed.calls[0]!.name).toBe('get_weather');
      expect(JSON.parse(parsed.calls[0]!.arguments)).toEqual({ city: 'San Francisco, CA', unit: 'fahrenheit' });
      expect(expectChunkingInvariant('llama3_json', text, WEATHER).calls).toEqual(parsed.calls);
    }
  });

  it('parses calls separated by ";" and accepts "arguments" as the key', () => {
    const text = '{"name": "get_weather", "parameters": {"city": "Tokyo"}}; {"name": "get_time", "arguments": {"timezone": "Asia/Tokyo"}}';
    expect(parseToolCalls('llama3_json', text, WEATHER).calls).toEqual([
      { name: 'get_weather', arguments: '{"city": "Tokyo"}' },
      { name: 'get_time', arguments: '{"timezone": "Asia/Tokyo"}' },
    ]);
    expectChunkingInvariant('llama3_json', text, WEATHER);
  });

  it('treats an answer that does not start with a call as content, even if it has JSON later', () => {
    const texts = [
      'The weather in Paris is sunny.',
      'Here it is: {"name": "get_weather", "parameters": {}}',
      '{"city": "Paris", "temperature": 21}',
      '[1, 2, 3]',
      '',
      '   ',
    ];
    for (const text of texts) {
      expect(parseToolCalls('llama3_json', text, WEATHER), text).toEqual({ content: text === '' ? null : text, calls: [] });
      expect(expectChunkingInvariant('llama3_json', text, WEATHER).content, text).toBe(text);
    }
  });

  it('streams JSON that names an unknown function (or is cut off before its name) as content', () => {
    for (const text of ['{"name": "Alice", "age": 7}', '{"name": "get_wea', '{"name": 5, "parameters": {}}']) {
      expect(parseToolCalls('llama3_json', text, WEATHER)).toEqual({ content: text, calls: [] });
      const streamed = expectChunkingInvariant('llama3_json', text, WEATHER);
      expect(streamed).toEqual({ content: text, calls: [] });
    }
  });

  it('falls back to content in the non-streaming answer when a call breaks after its name', () => {
    for (const text of ['{"name": "get_weather", "parameters": {"city": "Paris"', '{"name": "get_weather", "parameters": {"city" "Paris"}}']) {
      expect(parseToolCalls('llama3_json', text, WEATHER)).toEqual({ content: text, calls: [] });
      expect(streamChunks('llama3_json', [text], WEATHER).malformed).toBe(true);
      expectChunkingInvariant('llama3_json', text, WEATHER);
    }
  });

  it('drops text after the calls, like vLLM', () => {
    const text = '{"name": "get_time", "parameters": {}} I called the tool.';
    expect(parseToolCalls('llama3_json', text, WEATHER)).toEqual({ content: null, calls: [{ name: 'get_time', arguments: '{}' }] });
    expectChunkingInvariant('llama3_json', text, WEATHER);
  });

  it('decides early: content streams at once when the first character rules out a call', () => {
    const stream = createToolCallStream('llama3_json', WEATHER);
    expect(stream.push('  ')).toEqual([]);
    expect(stream.push('Hi')).toEqual([{ type: 'content', text: '  Hi' }]);
    expect(stream.push(' there')).toEqual([{ type: 'content', text: ' there' }]);
    const calls = createToolCallStream('llama3_json', WEATHER);
    expect(calls.push('{"name": "get_time", "parameters": {"tz"')).toEqual([
      { type: 'call', index: 0, name: 'get_time' },
      { type: 'arguments', index: 0, fragment: '{"tz"' },
    ]);
  });

  it('detectCallStart: waits on prefixes, decides on the first impossible character', () => {
    expect(detectCallStart('')).toBe('wait');
    expect(detectCallStart(' <|python')).toBe('wait');
    expect(detectCallStart('<|python_tag|> {')).toBe('wait');
    expect(detectCallStart('{ "na')).toBe('wait');
    expect(detectCallStart('{ "name" ')).toBe('wait');
    expect(detectCallStart(' { "name": ')).toBe(1);
    expect(detectCallStart('{"nam"')).toBe('content');
    expect(detectCallStart('<|eot_id|>')).toBe('content');
    expect(detectCallStart('x')).toBe('content');
  });
});

describe('CallObjectScanner', () => {
  it('validates JSON and finds name and arguments wherever the members are', () => {
    const scanner = new CallObjectScanner(['arguments']);
    const text = '{"id": [1, {"x": "}"}], "arguments": {"a": "b\\"c"}, "name": "f\\u0041"} trailing';
    const consumed = scanner.feed(text);
    expect(scanner.status).toBe('complete');
    expect(consumed).toBe(text.indexOf(' trailing'));
    expect(scanner.name).toBe('fA');
    expect(scanner.argumentsText).toBe('{"a": "b\\"c"}');
  });

  it('rejects what JSON.parse rejects', () => {
    for (const bad of ['{"a" 1}', '{"a": 01}', '{"a": tru}', '{"a": [1,]}', '{a: 1}', '{"a": "\u0001"}', '{"a": "\\x"}', '{"a": 1,}', '{"a": 1]']) {
      const scanner = new CallObjectScanner(['arguments']);
      scanner.feed(bad);
      expect(scanner.status, bad).toBe('invalid');
      expect(() => JSON.parse(bad), bad).toThrow();
    }
  });
});

describe('detectToolCallParser', () => {
  it('recognizes the shipped templates and returns null for templates without tools', () => {
    expect(detectToolCallParser(null)).toBeNull();
    expect(detectToolCallParser('{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}')).toBeNull();
    expect(detectToolCallParser('...<tool_call>\\n{"name": <function-name>, "arguments": <args-json-object>}\\n</tool_call>...')).toBe('hermes');
  });

  it.skipIf(!HAS_SHARED_MODELS)('detects llama3_json for Llama 3.2 and hermes for Qwen2.5 (../shared/tokenizers)', () => {
    const template = (family: string) => (JSON.parse(readFileSync(join(SHARED_MODELS, '..', 'tokenizers', family, 'tokenizer_config.json'), 'utf8')) as { chat_template: string }).chat_template;
    expect(detectToolCallParser(template('llama3.2'))).toBe('llama3_json');
    expect(detectToolCallParser(template('qwen2.5'))).toBe('hermes');
    expect(detectToolCallParser(template('phi3-mini'))).toBeNull();
  });
});
