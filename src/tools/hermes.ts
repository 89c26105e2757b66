/**
 * The Hermes / Qwen2.5 tool-call format: calls are JSON objects wrapped in tags,
 *
 *   Let me check.<tool_call>
 *   {"name": "get_weather", "arguments": {"city": "Paris"}}
 *   </tool_call>
 *   <tool_call>
 *   {"name": "get_time", "arguments": {}}
 *   </tool_call>
 *
 * Text before the first `<tool_call>` is content (its trailing whitespace dropped); text between and
 * after calls is dropped, as vLLM's hermes parser does. States: content → (tag) → call → (object
 * closed) → after call → (`</tool_call>`) → between calls → (tag) → call ...
 */
import { CallCollector } from './call-collector.ts';
import { isJsonWhitespace, partialTagSuffix } from './json-call-scanner.ts';
import type { ToolCallEvent, ToolCallParserOptions, ToolCallStream } from './types.ts';

export const HERMES_CALL_START = '<tool_call>';
export const HERMES_CALL_END = '</tool_call>';

type State = 'content' | 'beforeObject' | 'inCall' | 'afterCall' | 'betweenCalls' | 'ignore';

export class HermesToolCallStream implements ToolCallStream {
  readonly #calls: CallCollector;
  #state: State = 'content';
  /** Text received but not yet accounted for (a possible tag start, trailing whitespace). */
  #pending = '';

  constructor(options: ToolCallParserOptions) {
    this.#calls = new CallCollector(options, ['arguments', 'parameters']);
  }

  get malformed(): boolean {
    return this.#calls.malformed;
  }

  push(text: string): ToolCallEvent[] {
    const events: ToolCallEvent[] = [];
    this.#pending += text;
    // Each pass consumes some pending text or changes state; it stops when it needs more text.
    while (this.#step(events));
    return events;
  }

  finish(): ToolCallEvent[] {
    const events: ToolCallEvent[] = [];
    if (this.#state === 'content' && this.#pending !== '') events.push({ type: 'content', text: this.#pending });
    if (this.#state === 'beforeObject') this.#calls.malformed = true; // a tag with no call after it
    this.#calls.abandon();
    this.#pending = '';
    this.#state = 'ignore';
    return events;
  }

  /** One transition; false when nothing more can happen until more text arrives. */
  #step(events: ToolCallEvent[]): boolean {
    switch (this.#state) {
      case 'content': {
        const tag = this.#pending.indexOf(HERMES_CALL_START);
        if (tag >= 0) {
          const content = this.#pending.slice(0, tag).trimEnd();
          if (content !== '') events.push({ type: 'content', text: content });
          this.#pending = this.#pending.slice(tag + HERMES_CALL_START.length);
          this.#state = 'beforeObject';
          return true;
        }
        // Hold back what may still become the tag, and trailing whitespace (dropped if a call follows).
        let cut = this.#pending.length - partialTagSuffix(this.#pending, HERMES_CALL_START);
        while (cut > 0 && isJsonWhitespace(this.#pending[cut - 1])) cut--;
        if (cut > 0) {
          events.push({ type: 'content', text: this.#pending.slice(0, cut) });
          this.#pending = this.#pending.slice(cut);
        }
        return false;
      }
      case 'beforeObject': {
        const start = firstNonWhitespace(this.#pending);
        if (start < 0) {
          this.#pending = '';
          return false;
        }
        if (this.#pending[start] !== '{') {
          this.#calls.malformed = true;
          this.#state = 'ignore';
          return true;
        }
        this.#pending = this.#pending.slice(start);
        this.#calls.begin();
        this.#state = 'inCall';
        return true;
      }
      case 'inCall': {
        if (this.#pending === '') return false;
        const { consumed, state } = this.#calls.feed(this.#pending, events);
        this.#pending = this.#pending.slice(consumed);
        if (state === 'open') return false;
        // After an unknown function's call, skip to its end tag; after broken JSON, nothing more can be trusted.
        if (state === 'invalid' || (state === 'closed' && this.#calls.isFull)) this.#state = 'ignore';
        else this.#state = 'afterCall';
        return true;
      }
      case 'afterCall': {
        const end = this.#pending.indexOf(HERMES_CALL_END);
        if (end < 0) {
          this.#pending = this.#pending.slice(this.#pending.length - partialTagSuffix(this.#pending, HERMES_CALL_END));
          return false;
        }
        this.#pending = this.#pending.slice(end + HERMES_CALL_END.length);
        this.#state = this.#calls.isFull ? 'ignore' : 'betweenCalls';
        return true;
      }
      case 'betweenCalls': {
        const tag = this.#pending.indexOf(HERMES_CALL_START);
        if (tag < 0) {
          this.#pending = this.#pending.slice(this.#pending.length - partialTagSuffix(this.#pending, HERMES_CALL_START));
          return false;
        }
        this.#pending = this.#pending.slice(tag + HERMES_CALL_START.length);
        this.#state = 'beforeObject';
        return true;
      }
      case 'ignore':
        this.#pending = '';
        return false;
    }
  }
}

function firstNonWhitespace(text: string): number {
  for (let i = 0; i < text.length; i++) if (!isJsonWhitespace(text[i])) return i;
  return -1;
}
