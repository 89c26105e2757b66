/**
 * An incremental scanner for one tool-call object, `{"name": "...", "arguments": {...}}`, fed as the
 * model writes it.
 *
 * It validates JSON syntax character by character (a stack of open containers, string escapes and
 * literals) and records, for the object's own members, where the `name` string and the arguments
 * value start and end. Each character is looked at once, so a long call costs O(length) however
 * finely it is streamed. The parsers read `name` as soon as its string closes and stream the
 * arguments' raw text as it grows: every partial slice is a prefix of the final one.
 */

export type ScannerStatus = 'partial' | 'complete' | 'invalid';

type Mode =
  | 'start' // before the object's opening brace
  | 'value' // a value is expected (after ':' or, in an array, after ',')
  | 'arrayValueOrEnd' // just after '['
  | 'keyOrEnd' // just after '{'
  | 'key' // after ',' in an object
  | 'colon'
  | 'objectCommaOrEnd'
  | 'arrayCommaOrEnd'
  | 'done';

const WHITESPACE = new Set([' ', '\t', '\n', '\r']);
const LITERAL_CHAR = /[A-Za-z0-9.+-]/;
const NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;
const KEYWORDS = ['true', 'false', 'null'];
/** Deeper arguments than this are treated as invalid (no model writes them; it bounds the stack). */
const MAX_DEPTH = 256;

export class CallObjectScanner {
  /** Every character fed so far that belongs to the object (nothing after its closing brace). */
  text = '';
  status: ScannerStatus = 'partial';
  /** The `name` member's value, once its string has closed; null before (or when it is not a string). */
  name: string | null = null;
  /** Offsets in `text` of the arguments value (the first of `argumentKeys` present); end is null while it is open. */
  argumentsStart: number | null = null;
  argumentsEnd: number | null = null;

  readonly #argumentKeys: readonly string[];
  #mode: Mode = 'start';
  readonly #stack: Array<'{' | '['> = [];
  #inString = false;
  #stringIsKey = false;
  #escape = false;
  #unicodeDigitsLeft = 0;
  #stringStart = 0;
  #literal: string | null = null;
  /** The member of the top-level object whose value is being read, and where that value started. */
  #memberKey: string | null = null;
  #memberStart = 0;

  constructor(argumentKeys: readonly string[]) {
    this.#argumentKeys = argumentKeys;
  }

  /**
   * Feeds more text; returns how many of its characters belong to the object (all of them unless the
   * object closed or turned invalid within this chunk).
   */
  feed(chunk: string): number {
    let consumed = 0;
    for (const char of chunk) {
      if (this.status !== 'partial') break;
      this.#step(char);
      consumed += char.length;
    }
    return consumed;
  }

  /** The arguments' raw text so far ('' when no arguments member has started). */
  get argumentsText(): string {
    if (this.argumentsStart === null) return '';
    return this.text.slice(this.argumentsStart, this.argumentsEnd ?? this.text.length);
  }

  #step(char: string): void {
    const pos = this.text.length;
    this.text += char;
    if (this.#inString) return this.#stringChar(char, pos);
    if (this.#literal !== null) {
      if (LITERAL_CHAR.test(char)) {
        this.#literal += char;
        return;
      }
      if (!isValidLiteral(this.#literal)) return this.#fail();
      this.#literal = null;
      this.#valueEnded(pos);
      if (this.status !== 'partial') return;
    }
    if (WHITESPACE.has(char)) return;
    switch (this.#mode) {
      case 'start':
        if (char !== '{') return this.#fail();
        this.#stack.push('{');
        this.#mode = 'keyOrEnd';
        return;
      case 'value':
      case 'arrayValueOrEnd':
        if (this.#mode === 'arrayValueOrEnd' && char === ']') return this.#close('[', pos);
        return this.#valueStart(char, pos);
      case 'keyOrEnd':
        if (char === '}') return this.#close('{', pos);
        return this.#keyStart(char, pos);
      case 'key':
        return this.#keyStart(char, pos);
      case 'colon':
        if (char !== ':') return this.#fail();
        this.#mode = 'value';
        return;
      case 'objectCommaOrEnd':
        if (char === ',') this.#mode = 'key';
        else if (char === '}') this.#close('{', pos);
        else this.#fail();
        return;
      case 'arrayCommaOrEnd':
        if (char === ',') this.#mode = 'value';
        else if (char === ']') this.#close('[', pos);
        else this.#fail();
        return;
      case 'done':
        return;
    }
  }

  #stringChar(char: string, pos: number): void {
    if (this.#unicodeDigitsLeft > 0) {
      if (!/[0-9a-fA-F]/.test(char)) return this.#fail();
      this.#unicodeDigitsLeft--;
      return;
    }
    if (this.#escape) {
      this.#escape = false;
      if (char === 'u') this.#unicodeDigitsLeft = 4;
      else if (!'"\\/bfnrt'.includes(char)) this.#fail();
      return;
    }
    if (char === '\\') {
      this.#escape = true;
      return;
    }
    // JSON strings may not hold raw control characters (JSON.parse would reject them later).
    if (char.charCodeAt(0) < 0x20) return this.#fail();
    if (char !== '"') return;
    this.#inString = false;
    const raw = this.text.slice(this.#stringStart, pos + 1);
    if (this.#stringIsKey) {
      if (this.#stack.length === 1) this.#memberKey = JSON.parse(raw) as string;
      this.#mode = 'colon';
      return;
    }
    if (this.#stack.length === 1 && this.#memberKey === 'name' && this.name === null) this.name = JSON.parse(raw) as string;
    this.#valueEnded(pos + 1);
  }

  #keyStart(char: string, pos: number): void {
    if (char !== '"') return this.#fail();
    this.#inString = true;
    this.#stringIsKey = true;
    this.#stringStart = pos;
  }

  #valueStart(char: string, pos: number): void {
    if (this.#stack.length === 1) {
      this.#memberStart = pos;
      if (this.argumentsStart === null && this.#memberKey !== null && this.#argumentKeys.includes(this.#memberKey)) this.argumentsStart = pos;
    }
    if (char === '{' || char === '[') {
      if (this.#stack.length >= MAX_DEPTH) return this.#fail();
      this.#stack.push(char);
      this.#mode = char === '{' ? 'keyOrEnd' : 'arrayValueOrEnd';
    } else if (char === '"') {
      this.#inString = true;
      this.#stringIsKey = false;
      this.#stringStart = pos;
    } else if (/[-0-9tfn]/.test(char)) {
      this.#literal = char;
    } else {
      this.#fail();
    }
  }

  #close(open: '{' | '[', pos: number): void {
    if (this.#stack.pop() !== open) return this.#fail();
    if (this.#stack.length === 0) {
      this.#mode = 'done';
      this.status = 'complete';
      return;
    }
    this.#valueEnded(pos + 1);
  }

  /** A value ended just before `end`; the container it sits in decides what comes next. */
  #valueEnded(end: number): void {
    if (this.#stack.length === 1) {
      if (this.argumentsStart === this.#memberStart && this.argumentsEnd === null && this.#memberKey !== null && this.#argumentKeys.includes(this.#memberKey)) {
        this.argumentsEnd = end;
      }
      this.#memberKey = null;
    }
    this.#mode = this.#stack.at(-1) === '[' ? 'arrayCommaOrEnd' : 'objectCommaOrEnd';
  }

  #fail(): void {
    this.status = 'invalid';
  }
}

function isValidLiteral(literal: string): boolean {
  return KEYWORDS.includes(literal) || NUMBER.test(literal);
}

/** Length of the longest suffix of `text` that is a proper prefix of `tag` (text that may still become the tag). */
export function partialTagSuffix(text: string, tag: string): number {
  for (let length = Math.min(tag.length - 1, text.length); length > 0; length--) {
    if (text.endsWith(tag.slice(0, length))) return length;
  }
  return 0;
}

export function isJsonWhitespace(char: string | undefined): boolean {
  return char !== undefined && WHITESPACE.has(char);
}
