/**
 * The Llama 3.1 / 3.2 JSON tool-call format: the whole answer is one or more JSON objects,
 *
 *   <|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris"}}; {"name": "get_time", "parameters": {}}
 *
 * `<|python_tag|>` is optional (a special token, usually skipped when detokenizing), calls are separated
 * by `;`, and the arguments key is `parameters` (`arguments` is accepted too). As in vLLM's llama3_json
 * parser, an answer is a tool call only when it starts with one: text that begins otherwise is plain
 * content. The decision waits until the answer has shown `{"name":` (or clearly has not).
 */
import { CallCollector } from './call-collector.ts';
import { isJsonWhitespace } from './json-call-scanner.ts';
import type { ToolCallEvent, ToolCallParserOptions, ToolCallStream } from './types.ts';

export const LLAMA3_PYTHON_TAG = '<|python_tag|>';

type State = 'detect' | 'content' | 'inCall' | 'afterCall' | 'ignore';

export class Llama3JsonToolCallStream implements ToolCallStream {
  readonly #calls: CallCollector;
  #state: State = 'detect';
  #pending = '';
  /** Everything received while the first call is unconfirmed: it becomes content if the call is rejected. */
  #unconfirmed = '';

  constructor(options: ToolCallParserOptions) {
    this.#calls = new CallCollector(options, ['parameters', 'arguments']);
  }

  get malformed(): boolean {
    return this.#calls.malformed;
  }

  push(text: string): ToolCallEvent[] {
    const events: ToolCallEvent[] = [];
    if (this.#state === 'content') {
      if (text !== '') events.push({ type: 'content', text });
      return events;
    }
    if (this.#calls.count === 0) this.#unconfirmed += text;
    this.#pending += text;
    while (this.#step(events));
    return events;
  }

  finish(): ToolCallEvent[] {
    const events: ToolCallEvent[] = [];
    if (this.#calls.count === 0) {
      // Undecided or unannounced at the end (e.g. '{"name": "get_wea' cut off by max_tokens): it was text.
      if (this.#unconfirmed !== '') events.push({ type: 'content', text: this.#unconfirmed });
      this.#unconfirmed = '';
    } else {
      this.#calls.abandon();
    }
    this.#pending = '';
    this.#state = 'ignore';
    return events;
  }

  #step(events: ToolCallEvent[]): boolean {
    switch (this.#state) {
      case 'detect': {
        const verdict = detectCallStart(this.#pending);
        if (verdict === 'wait') return false;
        if (verdict === 'content') return this.#toContent(events);
        this.#pending = this.#pending.slice(verdict);
        this.#calls.begin();
        this.#state = 'inCall';
        return true;
      }
      case 'inCall': {
        if (this.#pending === '') return false;
        const { consumed, state } = this.#calls.feed(this.#pending, events);
        this.#pending = this.#pending.slice(consumed);
        if (this.#calls.count > 0) this.#unconfirmed = '';
        if (state === 'open') return false;
        if (this.#calls.count === 0) {
          // Nothing was announced: the answer is JSON text, not a call to an offered function (e.g.
          // the user asked for JSON), so it streams as the content it is.
          this.#calls.malformed = false;
          return this.#toContent(events);
        }
        this.#state = state === 'closed' && !this.#calls.isFull ? 'afterCall' : 'ignore';
        return true;
      }
      case 'afterCall': {
        const next = firstNonWhitespace(this.#pending);
        if (next < 0) {
          this.#pending = '';
          return false;
        }
        if (this.#pending[next] !== ';') {
          // Text after the calls is not part of them; vLLM drops it too.
          this.#state = 'ignore';
          return true;
        }
        const open = firstNonWhitespace(this.#pending, next + 1);
        if (open < 0) return false;
        if (this.#pending[open] !== '{') {
          this.#state = 'ignore';
          return true;
        }
        this.#pending = this.#pending.slice(open);
        this.#calls.begin();
        this.#state = 'inCall';
        return true;
      }
      case 'content':
      case 'ignore':
        this.#pending = '';
        return false;
    }
  }

  #toContent(events: ToolCallEvent[]): false {
    if (this.#unconfirmed !== '') events.push({ type: 'content', text: this.#unconfirmed });
    this.#unconfirmed = '';
    this.#pending = '';
    this.#state = 'content';
    return false;
  }
}

/**
 * Does the answer start with a call: optional whitespace, an optional `<|python_tag|>`, then
 * `{"name":` (whitespace allowed between the pieces)? Returns the offset of the `{` when it does,
 * 'content' when it cannot, 'wait' while the text is a prefix of such a start.
 */
export function detectCallStart(text: string): number | 'content' | 'wait' {
  let i = skipWhitespace(text, 0);
  if (i === text.length) return 'wait';
  const rest = text.slice(i);
  if (rest.startsWith(LLAMA3_PYTHON_TAG)) {
    i = skipWhitespace(text, i + LLAMA3_PYTHON_TAG.length);
    if (i === text.length) return 'wait';
  } else if (LLAMA3_PYTHON_TAG.startsWith(rest)) {
    return 'wait';
  }
  if (text[i] !== '{') return 'content';
  const brace = i;
  i = skipWhitespace(text, i + 1);
  const key = text.slice(i, i + '"name"'.length);
  if (!'"name"'.startsWith(key)) return 'content';
  if (key.length < '"name"'.length) return 'wait';
  i = skipWhitespace(text, i + key.length);
  if (i === text.length) return 'wait';
  return text[i] === ':' ? brace : 'content';
}

function skipWhitespace(text: string, from: number): number {
  let i = from;
  while (i < text.length && isJsonWhitespace(text[i])) i++;
  return i;
}

function firstNonWhitespace(text: string, from = 0): number {
  const i = skipWhitespace(text, from);
  return i < text.length ? i : -1;
}
