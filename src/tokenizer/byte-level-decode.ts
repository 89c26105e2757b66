/**
 * decode for byte-level BPE tokenizers (Llama 3, Qwen2) from per-id cached pieces, equal to
 * @huggingface/tokenizers' decode. Streaming detokenization decodes a window of a few ids per streamed
 * token, and the library's decode costs microseconds each time: it maps every id to its string, scans
 * the special-token list per token (256 for Llama 3) and the added-token list per token again in the
 * decoder, then re-spells the joined string as bytes character by character.
 *
 * What the library does, and this module repeats (test/unit/tokenizer/byte-level-decode.test.ts checks
 * it against the library on random ids):
 * - each id becomes its vocabulary string; with skip_special_tokens, strings that are special (added
 *   tokens marked special, plus additional_special_tokens) are dropped, by string, not by id;
 * - the ByteLevel decoder writes a string equal to an added token's content (special or not) as it is,
 *   and every run of other strings as its bytes decoded by one non-fatal TextDecoder (ignoreBOM): an
 *   added token ends the run, so a character split around it decodes to U+FFFD on both sides, while a
 *   dropped special token joins the runs on its two sides.
 * The normalizer, pre-tokenizer and post-processor take no part in decode. Callers fall back to the
 * library for everything else: other decoders, an end-of-word suffix, the clean-up heuristic.
 */

/** What one id contributes to a decode (one object shape for all, so the decode loop stays monomorphic). */
interface Piece {
  /** An added token: `text` is written as it is and ends the run of byte pieces before it. */
  readonly added: boolean;
  /** Dropped with skipSpecialTokens. */
  readonly special: boolean;
  /** A byte-level token's bytes (empty for an added token). */
  readonly bytes: Uint8Array;
  /** An added token's content, or the bytes' text when `complete`. */
  readonly text: string;
  /**
   * Whether the bytes are complete UTF-8 on their own (false when the token holds part of a character).
   * Complete pieces decode independently of their neighbours (UTF-8 is self-synchronising), so a run of
   * them is the concatenation of their texts.
   */
  readonly complete: boolean;
}

/** An id the tokenizer does not know: no bytes, so it neither adds text nor splits a run, as if dropped. */
const NONE: Piece = { added: false, special: false, bytes: new Uint8Array(), text: '', complete: true };

/** The library's decoder, byte for byte: invalid and incomplete sequences become U+FFFD, a BOM stays. */
const lenientUtf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export interface ByteLevelVocabulary {
  /** The id's vocabulary string (added tokens included), or undefined when the tokenizer does not know it. */
  tokenOf(id: number): string | undefined;
  /** Every added token's content. */
  addedContents: ReadonlySet<string>;
  /** The strings skip_special_tokens drops. */
  specialContents: ReadonlySet<string>;
  /** The bytes of a byte-level token string, or null when a character has no byte (see token-bytes.ts). */
  bytesOf(token: string): Uint8Array | null;
}

export class ByteLevelDecoder {
  readonly #vocabulary: ByteLevelVocabulary;
  /** Pieces by id, filled on first use; null for a string outside the byte alphabet (library only). */
  readonly #pieces = new Map<number, Piece | null>();
  /** Bytes of the current run, when it holds a partial character; grows, never shrinks. */
  #scratch = new Uint8Array(64);

  constructor(vocabulary: ByteLevelVocabulary) {
    this.#vocabulary = vocabulary;
  }

  /**
   * The library's decode of `tokenIds`, or null when a token is outside what this module repeats
   * exactly (a non-added string with characters outside the byte alphabet: the library spells each as
   * byte 0, and a surrogate pair split across two tokens would join into one character there).
   */
  decode(tokenIds: readonly number[], skipSpecialTokens: boolean): string | null {
    let text = '';
    // The current run of byte pieces: its text while every piece is complete; once one is not, the run
    // is decoded from its pieces' bytes when it ends.
    let runText = '';
    let runLength = 0;
    let runComplete = true;
    const run: Uint8Array[] = [];
    for (const id of tokenIds) {
      const piece = this.#piece(id);
      if (piece === null) return null;
      if (skipSpecialTokens && piece.special) continue;
      if (piece.added) {
        if (run.length > 0) {
          text += runComplete ? runText : this.#decodeRun(run, runLength);
          run.length = 0;
          runText = '';
          runLength = 0;
          runComplete = true;
        }
        text += piece.text;
        continue;
      }
      run.push(piece.bytes);
      runLength += piece.bytes.length;
      if (!piece.complete) runComplete = false;
      else if (runComplete) runText += piece.text;
    }
    if (run.length > 0) text += runComplete ? runText : this.#decodeRun(run, runLength);
    return text;
  }

  #decodeRun(run: readonly Uint8Array[], length: number): string {
    if (this.#scratch.length < length) this.#scratch = new Uint8Array(Math.max(length, 2 * this.#scratch.length));
    let offset = 0;
    for (const bytes of run) {
      this.#scratch.set(bytes, offset);
      offset += bytes.length;
    }
    return lenientUtf8.decode(this.#scratch.subarray(0, length));
  }

  #piece(id: number): Piece | null {
    let piece = this.#pieces.get(id);
    if (piece === undefined) {
      piece = this.#computePiece(id);
      // Only ids the tokenizer knows are kept, so the map grows at most to the vocabulary.
      if (piece !== NONE) this.#pieces.set(id, piece);
    }
    return piece;
  }

  #computePiece(id: number): Piece | null {
    const vocabulary = this.#vocabulary;
    const token = Number.isInteger(id) && id >= 0 ? vocabulary.tokenOf(id) : undefined;
    if (token === undefined) return NONE;
    const special = vocabulary.specialContents.has(token);
    if (vocabulary.addedContents.has(token)) return { added: true, special, bytes: NONE.bytes, text: token, complete: true };
    const bytes = vocabulary.bytesOf(token);
    if (bytes === null) return null;
    const text = completeText(bytes);
    return { added: false, special, bytes, text: text ?? '', complete: text !== null };
  }
}

function completeText(bytes: Uint8Array): string | null {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return null;
  }
}
