/**
 * The tokenizer's vocabulary as a byte trie, and the allowed-token mask of a recognizer state.
 *
 * The trie is stored in preorder (flat typed arrays): node i has a byte, a depth and the index just
 * past its subtree, and owns the tokens whose bytes end there. Computing a mask walks the array
 * once, keeping the recognizer state of each depth; a byte the state rejects skips the node's
 * whole subtree, so shared prefixes are walked once and dead prefixes cost one step. States memoize
 * their transitions (grammar.ts), so each trie node costs an array lookup, and a state's finished
 * mask is cached (the same state recurs, e.g. inside a long string value).
 *
 * Special tokens (the tokenizer's special / added-special ids) and tokens with no bytes are not in
 * the trie: a constrained request never samples them, except EOS once the document is complete.
 * One trie per tokenizer (WeakMap), built on first use.
 */
import type { State } from './grammar.ts';

/** What the trie needs of a tokenizer (TextTokenizer satisfies it). */
export interface TokenVocabulary {
  /** Ids the tokenizer knows: [0, vocabSize). */
  readonly vocabSize: number;
  tokenBytes(tokenId: number): Uint8Array;
  isSpecialToken(tokenId: number): boolean;
}

/** Masks kept per trie (each ceil(V / 32) words). */
const MASK_CACHE_ENTRIES = 512;

export class VocabularyTrie {
  /** Words per mask for a logits row of `numTokens` columns. */
  readonly numWords: number;
  /** Columns of the logits the masks are for (>= the tokenizer's vocabSize). */
  readonly numTokens: number;
  readonly numNodes: number;
  readonly maxDepth: number;
  readonly #byte: Uint8Array;
  readonly #depth: Uint16Array;
  readonly #end: Int32Array;
  readonly #tokenStart: Int32Array;
  readonly #tokens: Int32Array;
  readonly #plainRun: Int32Array;
  readonly #bytesOf: (Uint8Array | null)[];
  readonly #cache = new Map<State, { mask: Uint32Array; numAllowed: number }>();
  /** Reused between walks. */
  readonly #states: (State | null)[];

  /** `numTokens`: the logits' width (the model's vocabulary, maybe padded past the tokenizer's). */
  constructor(vocab: TokenVocabulary, numTokens = vocab.vocabSize) {
    if (numTokens < vocab.vocabSize) throw new Error(`the logits have ${numTokens} columns, fewer than the tokenizer's ${vocab.vocabSize} ids`);
    this.numTokens = numTokens;
    this.numWords = Math.ceil(numTokens / 32);
    const entries: { id: number; key: string }[] = [];
    this.#bytesOf = new Array(vocab.vocabSize).fill(null);
    for (let id = 0; id < vocab.vocabSize; id++) {
      if (vocab.isSpecialToken(id)) continue;
      const bytes = vocab.tokenBytes(id);
      if (bytes.length === 0) continue;
      this.#bytesOf[id] = bytes;
      entries.push({ id, key: latin1(bytes) });
    }
    // Byte order = code unit order of the latin1 strings.
    entries.sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : x.id - y.id));

    // Preorder nodes: each entry adds the nodes past its common prefix with the previous entry.
    const bytes: number[] = [0];
    const depths: number[] = [0];
    const ends: number[] = [0];
    const tokenNode: number[] = [];
    const path: number[] = [0]; // node index per depth along the current key
    let previous = '';
    for (const entry of entries) {
      const key = entry.key;
      let common = 0;
      while (common < key.length && common < previous.length && key.charCodeAt(common) === previous.charCodeAt(common)) common++;
      // Nodes deeper than `common` on the previous path are closed now.
      for (let d = common + 1; d < path.length; d++) ends[path[d]!] = bytes.length;
      path.length = common + 1;
      for (let d = common; d < key.length; d++) {
        path.push(bytes.length);
        bytes.push(key.charCodeAt(d));
        depths.push(d + 1);
        ends.push(-1);
      }
      tokenNode.push(path[key.length]!);
      previous = key;
    }
    for (let d = 1; d < path.length; d++) ends[path[d]!] = bytes.length;
    ends[0] = bytes.length;

    this.numNodes = bytes.length;
    this.#byte = Uint8Array.from(bytes);
    this.#depth = Uint16Array.from(depths);
    this.#end = Int32Array.from(ends);
    // Tokens grouped by node (CSR).
    const counts = new Int32Array(this.numNodes + 1);
    for (const node of tokenNode) counts[node + 1]!++;
    for (let i = 0; i < this.numNodes; i++) counts[i + 1]! += counts[i]!;
    this.#tokenStart = counts;
    this.#tokens = new Int32Array(entries.length);
    const fill = counts.slice(0, this.numNodes);
    entries.forEach((entry, k) => {
      this.#tokens[fill[tokenNode[k]!]!++] = entry.id;
    });
    // plainRun[i]: when node i and everything below it are plain string bytes (printable ASCII but
    // " and \\), the longest byte run from node i down (its subtree's height); else 0.
    // A node's parent is the last node before it one level up (preorder).
    const parent = new Int32Array(this.numNodes);
    const lastAtDepth: number[] = [0];
    for (let i = 1; i < this.numNodes; i++) {
      parent[i] = lastAtDepth[depths[i]! - 1]!;
      lastAtDepth[depths[i]!] = i;
    }
    const height = new Int32Array(this.numNodes).fill(1);
    for (let i = this.numNodes - 1; i >= 1; i--) height[parent[i]!] = Math.max(height[parent[i]!]!, height[i]! + 1);
    this.#plainRun = new Int32Array(this.numNodes);
    let nextNotPlain = this.numNodes;
    for (let i = this.numNodes - 1; i >= 1; i--) {
      if (!isPlainStringByte(bytes[i]!)) nextNotPlain = i;
      this.#plainRun[i] = nextNotPlain >= ends[i]! ? height[i]! : 0;
    }
    let maxDepth = 0;
    for (const d of depths) maxDepth = Math.max(maxDepth, d);
    this.maxDepth = maxDepth;
    this.#states = new Array(maxDepth + 1).fill(null);
  }

  /** The bytes of a token in the trie, or null (special, empty, unknown). */
  bytesOf(tokenId: number): Uint8Array | null {
    return this.#bytesOf[tokenId] ?? null;
  }

  /**
   * The tokens whose bytes `state` accepts, as bits in `out` (numWords words; bits past the trie's
   * tokens are 0). EOS is not included (the caller adds it when state.accepting). Returns how many
   * tokens are allowed.
   */
  fillMask(state: State, out: Uint32Array, useCache = true): number {
    const cached = useCache ? this.#cache.get(state) : undefined;
    if (cached !== undefined) {
      out.set(cached.mask);
      return cached.numAllowed;
    }
    out.fill(0, 0, this.numWords);
    const byte = this.#byte;
    const depth = this.#depth;
    const end = this.#end;
    const tokenStart = this.#tokenStart;
    const tokens = this.#tokens;
    const states = this.#states;
    states[0] = state;
    let numAllowed = 0;
    const n = this.numNodes;
    let i = 1;
    const plainRun = this.#plainRun;
    while (i < n) {
      const parent = states[depth[i]! - 1]!;
      // Inside a string, a subtree of plain bytes no deeper than the string has room for is allowed
      // whole, without stepping through it.
      const run = plainRun[i]!;
      if (run > 0 && run <= parent.plainRunBudget) {
        const last = tokenStart[end[i]!]!;
        for (let k = tokenStart[i]!; k < last; k++) {
          const id = tokens[k]!;
          out[id >>> 5]! |= 1 << (id & 31);
        }
        numAllowed += last - tokenStart[i]!;
        i = end[i]!;
        continue;
      }
      const b = byte[i]!;
      let next = parent.next[b];
      if (next === undefined) next = parent.step(b);
      if (next === null) {
        i = end[i]!;
        continue;
      }
      states[depth[i]!] = next;
      for (let k = tokenStart[i]!, last = tokenStart[i + 1]!; k < last; k++) {
        const id = tokens[k]!;
        out[id >>> 5]! |= 1 << (id & 31);
        numAllowed++;
      }
      i++;
    }
    states.fill(null);
    if (this.#cache.size >= MASK_CACHE_ENTRIES) this.#cache.delete(this.#cache.keys().next().value!);
    this.#cache.set(state, { mask: out.slice(0, this.numWords), numAllowed });
    return numAllowed;
  }

  /** Number of cached masks (tests). */
  get numCachedMasks(): number {
    return this.#cache.size;
  }
}

/** Bytes that a JSON string holds as themselves: printable ASCII except the quote and the backslash. */
export function isPlainStringByte(b: number): boolean {
  return b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x5c;
}

function latin1(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 4096) s += String.fromCharCode(...bytes.subarray(i, i + 4096));
  return s;
}

const tries = new WeakMap<TokenVocabulary, Map<number, VocabularyTrie>>();

/** The trie of a tokenizer for logits of `numTokens` columns, built once. */
export function vocabularyTrie(vocab: TokenVocabulary, numTokens = vocab.vocabSize): VocabularyTrie {
  let byWidth = tries.get(vocab);
  if (byWidth === undefined) {
    byWidth = new Map();
    tries.set(vocab, byWidth);
  }
  let trie = byWidth.get(numTokens);
  if (trie === undefined) {
    trie = new VocabularyTrie(vocab, numTokens);
    byWidth.set(numTokens, trie);
  }
  return trie;
}
