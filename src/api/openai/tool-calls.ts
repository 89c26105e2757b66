/**
 * Tool calling in a chat request: what the template gets (tools, an instruction for `required` and
 * named tool_choice), which parser reads the model's answer, and the OpenAI shapes of the calls
 * (`message.tool_calls` and streamed `delta.tool_calls`).
 *
 * `tool_choice` without a grammar-constrained sampler: `none` leaves the tools out of the prompt and
 * nothing is parsed; `auto` renders them and parses; `required` and a named function render them (only
 * the named one), add a system instruction to call, and accept only calls to the offered functions.
 * If the model still answers in text, that text is returned with finish_reason 'stop'.
 */
import { randomBytes } from 'node:crypto';
import type { ChatMessage, InferenceService } from '../../engine/inference-service.ts';
import { createToolCallStream, detectToolCallParser, parseToolCalls, type ParsedToolCall, type ToolCallEvent, type ToolCallParserName, type ToolCallParserOptions, type ToolCallStream } from '../../tools/index.ts';
import { invalidRequest } from '../errors.ts';
import type { ToolChoiceInput, ToolInput } from './tool-schemas.ts';

export interface ToolPlan {
  /** Tools for the chat template; undefined renders none. */
  templateTools: ToolInput[] | undefined;
  /** The messages with the tool_choice instruction added (when there is one). */
  messages: ChatMessage[];
  /** How to read the answer; null: it is plain content. */
  parsing: { parser: ToolCallParserName; options: ToolCallParserOptions } | null;
}

export interface ToolRequestFields {
  tools?: ToolInput[] | null;
  tool_choice?: ToolChoiceInput | null;
  parallel_tool_calls?: boolean | null;
}

export function planTools(
  request: ToolRequestFields,
  messages: ChatMessage[],
  service: InferenceService,
  parserOverride: ToolCallParserName | null,
): ToolPlan {
  const tools = request.tools ?? [];
  const choice = request.tool_choice ?? 'auto';
  if (tools.length === 0 || choice === 'none') return { templateTools: undefined, messages, parsing: null };

  const parser = parserOverride ?? detectToolCallParser(service.chatTemplateSource ?? null);
  if (parser === null) {
    throw invalidRequest(
      "Tool calling is not available for this model: its chat template does not show a tool-call format Updraft can parse. Start the server with --tool-call-parser (llama3_json or hermes) or a --chat-template that supports tools.",
      'tools',
      'unsupported_value',
    );
  }
  const offered = typeof choice === 'object' ? tools.filter((tool) => tool.function.name === choice.function.name) : tools;
  const instruction =
    choice === 'required'
      ? 'You must answer by calling one or more of the provided functions.'
      : typeof choice === 'object'
        ? `You must answer by calling the function "${choice.function.name}".`
        : null;
  return {
    templateTools: offered,
    messages: instruction === null ? messages : withSystemInstruction(messages, instruction),
    parsing: {
      parser,
      options: {
        toolNames: new Set(offered.map((tool) => tool.function.name)),
        maxCalls: request.parallel_tool_calls === false ? 1 : Infinity,
      },
    },
  };
}

/** Appended to the first system (or developer) message, or given as a new first system message. */
function withSystemInstruction(messages: ChatMessage[], instruction: string): ChatMessage[] {
  const [first, ...rest] = messages;
  if (first !== undefined && (first.role === 'system' || first.role === 'developer') && typeof first.content === 'string') {
    return [{ ...first, content: first.content === '' ? instruction : `${first.content}\n\n${instruction}` }, ...rest];
  }
  return [{ role: 'system', content: instruction }, ...messages];
}

/** OpenAI's call ids: `call_` and 24 letters and digits. */
export function newToolCallId(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return `call_${Array.from(randomBytes(24), (byte) => alphabet[byte % alphabet.length]).join('')}`;
}

export interface OpenAIToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export function toOpenAIToolCalls(calls: ParsedToolCall[]): OpenAIToolCall[] {
  return calls.map((call) => ({ id: newToolCallId(), type: 'function', function: { name: call.name, arguments: call.arguments } }));
}

/** A whole answer read for tool calls: the message's content and calls. */
export function readToolCalls(text: string, parsing: NonNullable<ToolPlan['parsing']>): { content: string | null; calls: OpenAIToolCall[] } {
  const parsed = parseToolCalls(parsing.parser, text, parsing.options);
  return { content: parsed.content, calls: toOpenAIToolCalls(parsed.calls) };
}

/** One streamed tool-call fragment, as OpenAI sends them in `delta.tool_calls`. */
export type OpenAIToolCallDelta =
  | { index: number; id: string; type: 'function'; function: { name: string; arguments: string } }
  | { index: number; function: { arguments: string } };

/** What one piece of streamed text adds to a chat delta. */
export type StreamedDelta = { content: string } | { tool_calls: OpenAIToolCallDelta[] };

/**
 * A choice's streaming tool-call reader: pieces of text in, deltas out. A call is announced with its
 * id, type, name and empty arguments; its arguments follow as fragments. Consecutive content is merged.
 */
export class StreamingToolCalls {
  readonly #stream: ToolCallStream;
  /** Calls announced so far. */
  count = 0;

  constructor(parsing: NonNullable<ToolPlan['parsing']>) {
    this.#stream = createToolCallStream(parsing.parser, parsing.options);
  }

  push(text: string, finished: boolean): StreamedDelta[] {
    const events = this.#stream.push(text);
    if (finished) events.push(...this.#stream.finish());
    return this.#toDeltas(events);
  }

  #toDeltas(events: ToolCallEvent[]): StreamedDelta[] {
    const deltas: StreamedDelta[] = [];
    for (const event of events) {
      const last = deltas.at(-1);
      if (event.type === 'content') {
        if (last !== undefined && 'content' in last) last.content += event.text;
        else deltas.push({ content: event.text });
      } else if (event.type === 'call') {
        this.count++;
        deltas.push({ tool_calls: [{ index: event.index, id: newToolCallId(), type: 'function', function: { name: event.name, arguments: '' } }] });
      } else {
        const previous = last !== undefined && 'tool_calls' in last ? last.tool_calls.at(-1) : undefined;
        if (previous !== undefined && previous.index === event.index && !('id' in previous)) previous.function.arguments += event.fragment;
        else deltas.push({ tool_calls: [{ index: event.index, function: { arguments: event.fragment } }] });
      }
    }
    return deltas;
  }
}
