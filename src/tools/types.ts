/**
 * What the tool-call parsers produce, shared by every format.
 *
 * A parser is a streaming state machine: it is fed the generated text in whatever pieces the engine
 * produces and emits events: plain content to show as `content`, the start of a call (its name, once
 * known) and fragments of the call's arguments (raw JSON text, in order). The non-streaming answer is
 * the same machine fed the whole text at once, so both paths agree by construction.
 */

export const TOOL_CALL_PARSER_NAMES = ['llama3_json', 'hermes'] as const;
export type ToolCallParserName = (typeof TOOL_CALL_PARSER_NAMES)[number];

export type ToolCallEvent =
  | { type: 'content'; text: string }
  | { type: 'call'; index: number; name: string }
  | { type: 'arguments'; index: number; fragment: string };

export interface ToolCallParserOptions {
  /** Function names the request offered; a call to any other name is not a tool call. null: any name. */
  toolNames: ReadonlySet<string> | null;
  /** At most this many calls are reported (1 for parallel_tool_calls: false); later ones are dropped. */
  maxCalls: number;
}

export interface ToolCallStream {
  /** Feeds the next piece of generated text; returns what can be said about it now. */
  push(text: string): ToolCallEvent[];
  /** The generation ended: releases text held back (e.g. a possible start of a tag). */
  finish(): ToolCallEvent[];
  /**
   * True when the text cannot be read as clean tool calls: a call that is not valid JSON, was cut off,
   * names an unknown function or has arguments that are not an object. The non-streaming answer then
   * returns the whole text as content; a stream cannot take back what it already sent.
   */
  readonly malformed: boolean;
}

export interface ParsedToolCall {
  name: string;
  /** The arguments object as the model wrote it (a JSON text, as OpenAI's `function.arguments`). */
  arguments: string;
}

export interface ParsedToolCalls {
  /** Text outside the calls (before the first one), or the whole text when there are no calls; null when empty. */
  content: string | null;
  calls: ParsedToolCall[];
}
