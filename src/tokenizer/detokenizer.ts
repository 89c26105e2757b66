/**
 * Streaming detokenization: turns generated ids into text deltas, one token at a time, such that the
 * deltas concatenate to the full decode. No tokenizer library on npm does this, and decoding one token at
 * a time is wrong twice over: a token can hold part of a UTF-8 character (decodes to U+FFFD), and
 * SentencePiece decoders drop the leading space of the first piece of every decode call.
 *
 * The method is vLLM's prefix-offset / read-offset window. The window holds the tokens already turned
 * into text (the prefix, kept as context) and the tokens not yet turned into text. Each step decodes the
 * window; when the text grew past the prefix's text and does not end in U+FFFD (an incomplete
 * character), the growth is emitted and the window slides forward. Because the prefix always has text,
 * a dropped leading space can only be the prefix's own, never the new token's, and because the window
 * only slides at character boundaries, byte tokens are decoded together. The window stays a few tokens
 * long, so each step costs O(1) decoding, not a re-decode of the whole output.
 *
 * What the stream equals, exactly:
 * - no prompt given (or a prompt with no visible text, such as BOS alone with skipSpecialTokens):
 *   `decode(outputIds)` (so the first piece's leading space is dropped, as a standalone decode does);
 * - a prompt with visible text: the text the output adds after the prompt,
 *   `decode(tail + outputIds).slice(decode(tail).length)` for the prompt's last few visible ids:
 *   identical to `decode(outputIds)` for byte-level BPE, and for SentencePiece it keeps the first piece's
 *   leading space (" time" after "Once upon a"), as vLLM's output does.
 */

export interface TokenDecoder {
  decode(tokenIds: readonly number[], options: { skipSpecialTokens: boolean }): string;
  isSpecialToken(tokenId: number): boolean;
}

export interface DetokenizerOptions {
  /** Leave special tokens out of the text (vLLM and OpenAI default: true). */
  skipSpecialTokens: boolean;
  /** The prompt's ids (only the last few visible ones are read), so the first output token reads in context. */
  promptTokenIds?: readonly number[];
}

const REPLACEMENT_CHAR = '\uFFFD';
/** Visible prompt tokens kept as context: vLLM's INITIAL_INCREMENTAL_DETOKENIZATION_OFFSET. */
const PROMPT_CONTEXT_TOKENS = 5;
/**
 * Longest wait for a character to complete before text is released anyway. A UTF-8 character spans
 * at most 4 tokens, so a longer wait means the model emits invalid bytes; without a cap, a stream of them
 * would grow the window without bound.
 */
const MAX_UNREAD_TOKENS = 16;
/** Tokens kept back when releasing anyway: an incomplete character at the end spans at most 3. */
const INCOMPLETE_CHAR_TOKENS = 3;

/**
 * decode([id]) per decoder and skipSpecialTokens, shared by every stream. After each emitted token the
 * window's new prefix is that one token, whose text must be decoded again: half the decode calls per
 * token, and a tokenizer's decode costs microseconds (Llama 3's library decode scans its 256 special
 * tokens per id). Decoders are pure functions of the ids, so the text of one id never changes; the
 * maps grow at most to the vocabulary.
 */
const singleTokenTexts = new WeakMap<TokenDecoder, [keep: Map<number, string>, skip: Map<number, string>]>();

function singleTokenTextsOf(decoder: TokenDecoder, skipSpecialTokens: boolean): Map<number, string> {
  let maps = singleTokenTexts.get(decoder);
  if (maps === undefined) {
    maps = [new Map(), new Map()];
    singleTokenTexts.set(decoder, maps);
  }
  return maps[skipSpecialTokens ? 1 : 0];
}

export class IncrementalDetokenizer {
  readonly #decoder: TokenDecoder;
  readonly #skipSpecialTokens: boolean;
  readonly #singleTokenTexts: Map<number, string>;
  /** The window: ids[0, readOffset) are the prefix (already emitted), ids[readOffset, end) are unread. */
  #ids: number[];
  #readOffset: number;
  #prefixText: string;

  constructor(decoder: TokenDecoder, options: DetokenizerOptions) {
    this.#decoder = decoder;
    this.#skipSpecialTokens = options.skipSpecialTokens;
    this.#singleTokenTexts = singleTokenTextsOf(decoder, options.skipSpecialTokens);
    this.#ids = this.#promptContext(options.promptTokenIds ?? []);
    this.#readOffset = this.#ids.length;
    this.#prefixText = this.#decode(this.#ids);
  }

  /** Adds one generated token; returns the new text it completes ('' while a character is incomplete). */
  push(tokenId: number): string {
    // A skipped special token contributes nothing to any decode, so it need not enter the window.
    if (this.#skipSpecialTokens && this.#decoder.isSpecialToken(tokenId)) return '';
    this.#ids.push(tokenId);
    const text = this.#decode(this.#ids);
    if (text.length > this.#prefixText.length && !text.endsWith(REPLACEMENT_CHAR)) {
      return this.#emit(text, this.#ids.length);
    }
    if (this.#ids.length - this.#readOffset > MAX_UNREAD_TOKENS) {
      const end = this.#ids.length - INCOMPLETE_CHAR_TOKENS;
      const released = this.#decode(this.#ids.slice(0, end));
      if (released.length > this.#prefixText.length) return this.#emit(released, end);
    }
    return '';
  }

  /** Adds several tokens; returns the concatenated new text. */
  pushAll(tokenIds: Iterable<number>): string {
    let text = '';
    for (const id of tokenIds) text += this.push(id);
    return text;
  }

  /**
   * Releases text held back at the end of generation: an incomplete character, which decodes to U+FFFD
   * just as the full decode shows it. Call once, after the last push.
   */
  flush(): string {
    if (this.#readOffset === this.#ids.length) return '';
    const text = this.#decode(this.#ids);
    return text.length > this.#prefixText.length ? this.#emit(text, this.#ids.length) : '';
  }

  /** Tokens in the window now; stays small (tests check it is bounded). */
  get windowSize(): number {
    return this.#ids.length;
  }

  /** Emits the text past the prefix and slides the window: ids[readOffset, end) become the new prefix. */
  #emit(text: string, end: number): string {
    const delta = text.slice(this.#prefixText.length);
    this.#ids = this.#ids.slice(this.#readOffset);
    this.#readOffset = end - this.#readOffset;
    this.#prefixText = this.#decode(this.#ids.slice(0, this.#readOffset));
    return delta;
  }

  #decode(ids: readonly number[]): string {
    if (ids.length !== 1) return this.#decoder.decode(ids, { skipSpecialTokens: this.#skipSpecialTokens });
    const id = ids[0]!;
    let text = this.#singleTokenTexts.get(id);
    if (text === undefined) {
      text = this.#decoder.decode(ids, { skipSpecialTokens: this.#skipSpecialTokens });
      this.#singleTokenTexts.set(id, text);
    }
    return text;
  }

  /**
   * The prompt's last few visible ids. Invisible ones (skipped specials) are left out: a prompt that is
   * only BOS has no text to continue. A prompt ending inside a character (possible only for prompts given
   * as ids) loses those ids, so the output's own bytes decode the way decode(outputIds) shows them.
   */
  #promptContext(promptTokenIds: readonly number[]): number[] {
    const context: number[] = [];
    for (let i = promptTokenIds.length - 1; i >= 0 && context.length < PROMPT_CONTEXT_TOKENS; i--) {
      const id = promptTokenIds[i]!;
      if (!(this.#skipSpecialTokens && this.#decoder.isSpecialToken(id))) context.unshift(id);
    }
    while (context.length > 0 && this.#decode(context).endsWith(REPLACEMENT_CHAR)) context.pop();
    return context;
  }
}
