/**
 * The part every format shares: reading one call object at a time with a CallObjectScanner and turning
 * what it learns into events. A call is announced once its name is known (and offered by the request),
 * then its arguments stream as raw JSON fragments; a call without arguments gets `{}`.
 */
import { CallObjectScanner } from './json-call-scanner.ts';
import type { ToolCallEvent, ToolCallParserOptions } from './types.ts';

/** What happened to the open call after a feed. */
export type CallFeedState =
  /** Still being written. */
  | 'open'
  /** Closed, a valid call. */
  | 'closed'
  /** Not valid JSON, no string name, or arguments that are not an object (sets `malformed`). */
  | 'invalid'
  /** Its name is not one the request offered; nothing was emitted for it and reading stopped. */
  | 'rejected';

export class CallCollector {
  readonly #options: ToolCallParserOptions;
  readonly #argumentKeys: readonly string[];
  #scanner: CallObjectScanner | null = null;
  #index: number | null = null;
  #sentArguments = 0;
  /** Calls announced so far. */
  count = 0;
  malformed = false;

  constructor(options: ToolCallParserOptions, argumentKeys: readonly string[]) {
    this.#options = options;
    this.#argumentKeys = argumentKeys;
  }

  get isFull(): boolean {
    return this.count >= this.#options.maxCalls;
  }

  get isOpen(): boolean {
    return this.#scanner !== null;
  }

  /** Starts reading a call object (the next character fed should be its opening brace). */
  begin(): void {
    this.#scanner = new CallObjectScanner(this.#argumentKeys);
    this.#index = null;
    this.#sentArguments = 0;
  }

  /** Feeds text to the open call; returns how much of it the call consumed and the call's state. */
  feed(text: string, events: ToolCallEvent[]): { consumed: number; state: CallFeedState } {
    const scanner = this.#scanner;
    if (scanner === null) throw new Error('CallCollector.feed without an open call');
    const consumed = scanner.feed(text);
    // The name and the arguments so far are reported before a syntax error is, so that the events do
    // not depend on how the text was cut into pieces.
    if (this.#index === null && scanner.name !== null) {
      if (this.#options.toolNames !== null && !this.#options.toolNames.has(scanner.name)) {
        this.#scanner = null;
        this.malformed = true;
        return { consumed, state: 'rejected' };
      }
      this.#index = this.count++;
      events.push({ type: 'call', index: this.#index, name: scanner.name });
    }
    if (this.#index !== null) {
      const argumentsText = scanner.argumentsText;
      if (argumentsText.length > this.#sentArguments) {
        events.push({ type: 'arguments', index: this.#index, fragment: argumentsText.slice(this.#sentArguments) });
        this.#sentArguments = argumentsText.length;
      }
    }
    if (scanner.status === 'invalid') return { consumed, state: this.#invalid() };
    if (scanner.status !== 'complete') return { consumed, state: 'open' };
    // An object without a string `name`, or arguments that are not an object, is not a call.
    if (this.#index === null || (scanner.argumentsStart !== null && !scanner.argumentsText.startsWith('{'))) {
      return { consumed, state: this.#invalid() };
    }
    this.#scanner = null;
    if (scanner.argumentsStart === null) events.push({ type: 'arguments', index: this.#index, fragment: '{}' });
    return { consumed, state: 'closed' };
  }

  #invalid(): 'invalid' {
    this.#scanner = null;
    this.malformed = true;
    return 'invalid';
  }

  /** The generation ended inside a call: it was cut off. */
  abandon(): void {
    if (this.#scanner === null) return;
    this.#scanner = null;
    this.malformed = true;
  }
}
