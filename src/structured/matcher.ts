/**
 * One constrained request's position in its grammar: advanced by each sampled token, asked for the
 * allowed-token mask before each sampling step.
 */
import type { Grammar, State } from './grammar.ts';
import type { VocabularyTrie } from './vocabulary.ts';

export class GrammarMatcher {
  readonly grammar: Grammar;
  readonly #trie: VocabularyTrie;
  /** Ids that end the request (EOS, stop_token_ids): allowed once the document is complete. */
  readonly #endIds: readonly number[];
  #state: State | null;
  /** Tokens accepted so far. */
  numTokens = 0;

  constructor(grammar: Grammar, trie: VocabularyTrie, endIds: readonly number[]) {
    this.grammar = grammar;
    this.#trie = trie;
    this.#endIds = endIds.filter((id) => id >= 0 && id < trie.numTokens);
    this.#state = grammar.initial;
  }

  /** The document so far is complete: an end token may come now. */
  get accepting(): boolean {
    return this.#state !== null && this.#state.accepting;
  }

  /** False once a token the grammar did not allow was accepted (only end tokens are offered then). */
  get alive(): boolean {
    return this.#state !== null;
  }

  /**
   * Advances by one sampled token. End tokens and tokens the grammar rejects leave the matcher dead
   * (an end token ends the request anyway); returns whether the token was allowed.
   */
  accept(tokenId: number): boolean {
    this.numTokens++;
    if (this.#state === null) return false;
    const bytes = this.#trie.bytesOf(tokenId);
    if (bytes === null) {
      const ok = this.#endIds.includes(tokenId) && this.#state.accepting;
      this.#state = null;
      return ok;
    }
    this.#state = this.#state.stepBytes(bytes);
    return this.#state !== null;
  }

  /**
   * Writes the allowed tokens into `out` (trie.numWords words). End tokens are allowed once the
   * document is complete — and also when nothing else is (a dead end the vocabulary cannot get
   * out of, or a dead matcher), so the request ends instead of sampling a masked-out token.
   * Returns the number of allowed tokens other than end tokens.
   */
  fillMask(out: Uint32Array): number {
    let numAllowed = 0;
    if (this.#state !== null) numAllowed = this.#trie.fillMask(this.#state, out);
    else out.fill(0, 0, this.#trie.numWords);
    if (numAllowed === 0 || this.accepting) {
      for (const id of this.#endIds) out[id >>> 5]! |= 1 << (id & 31);
    }
    return numAllowed;
  }
}
