/**
 * Tool calling: which format a model writes its calls in, and parsers for each (streaming state
 * machines; the non-streaming parse is the same machine fed everything at once).
 */
import { HERMES_CALL_START, HermesToolCallStream } from './hermes.ts';
import { Llama3JsonToolCallStream } from './llama3-json.ts';
import type { ParsedToolCall, ParsedToolCalls, ToolCallParserName, ToolCallParserOptions, ToolCallStream } from './types.ts';

export { TOOL_CALL_PARSER_NAMES } from './types.ts';
export type { ParsedToolCall, ParsedToolCalls, ToolCallEvent, ToolCallParserName, ToolCallParserOptions, ToolCallStream } from './types.ts';

export function createToolCallStream(parser: ToolCallParserName, options: ToolCallParserOptions): ToolCallStream {
  switch (parser) {
    case 'hermes':
      return new HermesToolCallStream(options);
    case 'llama3_json':
      return new Llama3JsonToolCallStream(options);
  }
}

/**
 * The calls in a finished generation. When the text holds no clean calls (none, or any of them broken:
 * invalid JSON, cut off, an unknown function, arguments that are not an object) the whole text is
 * content and there are no calls, as vLLM answers.
 */
export function parseToolCalls(parser: ToolCallParserName, text: string, options: ToolCallParserOptions): ParsedToolCalls {
  const stream = createToolCallStream(parser, options);
  const events = [...stream.push(text), ...stream.finish()];
  let content = '';
  const calls: ParsedToolCall[] = [];
  for (const event of events) {
    if (event.type === 'content') content += event.text;
    else if (event.type === 'call') calls[event.index] = { name: event.name, arguments: '' };
    else calls[event.index]!.arguments += event.fragment;
  }
  if (calls.length === 0 || stream.malformed) return { content: text === '' ? null : text, calls: [] };
  return { content: content === '' ? null : content, calls };
}

/**
 * The format a chat template teaches its model, from the template's source (vLLM makes the operator
 * name it with --tool-call-parser; Updraft guesses and the same flag overrides): the Hermes / Qwen2.5
 * templates spell out `<tool_call>` tags; the Llama 3.1 / 3.2 ones ask for `{"name": ..., "parameters": ...}`
 * under `<|start_header_id|>` headers (and know the `ipython` role). null: no format recognized.
 */
export function detectToolCallParser(templateSource: string | null): ToolCallParserName | null {
  if (templateSource === null) return null;
  if (templateSource.includes(HERMES_CALL_START)) return 'hermes';
  const llamaHeaders = templateSource.includes('<|start_header_id|>') || templateSource.includes('ipython');
  if (llamaHeaders && templateSource.includes('"parameters"')) return 'llama3_json';
  return null;
}
