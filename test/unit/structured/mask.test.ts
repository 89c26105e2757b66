/**
 * The vocabulary mask (src/structured/vocabulary.ts) against brute force — every token's bytes
 * stepped through the recognizer on their own — on the 512-token test tokenizer and, when
 * ../shared is there, on the Llama 3.2 (128k), Qwen2.5 (151k) and Llama 2 (32k, SentencePiece)
 * tokenizers; plus the matcher's end-token rules.
 */
import { describe, expect, it } from 'vitest';
import { compileJsonObject, compileJsonSchema, GrammarMatcher, VocabularyTrie, vocabularyTrie } from '../../../src/structured/index.ts';
import type { Grammar, State, TokenVocabulary } from '../../../src/structured/index.ts';
import { TextTokenizer } from '../../../src/tokenizer/index.ts';
import { TOK512_DIR } from '../../fixtures/tiny-models.ts';
import { HAS_SHARED_MODELS, SHARED_SKIP_REASON } from '../../helpers/paths.ts';
import { Rand, randomSchema, randomWalk } from './random-schemas.ts';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const utf8 = new TextEncoder();
const SHARED_TOKENIZERS = fileURLToPath(new URL('../../../../shared/tokenizers/', import.meta.url));

function bruteForce(vocab: TokenVocabulary, state: State, numWords: number): Uint32Array {
  const mask = new Uint32Array(numWords);
  for (let id = 0; id < vocab.vocabSize; id++) {
    if (vocab.isSpecialToken(id)) continue;
    const bytes = vocab.tokenBytes(id);
    if (bytes.length > 0 && state.stepBytes(bytes) !== null) mask[id >>> 5]! |= 1 << (id & 31);
  }
  return mask;
}

/** States along documents of a few grammars: every prefix of some, random ones of others. */
function sampleStates(rand: Rand, count: number): { grammar: Grammar; state: State; where: string }[] {
  const out: { grammar: Grammar; state: State; where: string }[] = [];
  const fixed: [Grammar, string][] = [
    [compileJsonObject(), '{"name": "Ada \\u00e9😀", "n": [1, -2.5e3, true, null, {"x": "y"}]}'],
    [compileJsonSchema({ type: 'object', properties: { id: { type: 'integer', minimum: 0, maximum: 999 }, tag: { enum: ['red', 'green'] }, s: { type: 'string', maxLength: 4 } }, required: ['id', 'tag'] }), '{"id": 42, "tag": "green", "s": "abcd"}'],
  ];
  for (const [grammar, text] of fixed) {
    const bytes = utf8.encode(text);
    for (let i = 0; i <= bytes.length; i++) {
      const state = grammar.initial.stepBytes(bytes.subarray(0, i));
      if (state !== null) out.push({ grammar, state, where: JSON.stringify(text.slice(0, i)) });
    }
  }
  while (out.length < count) {
    const grammar = compileJsonSchema(randomSchema(rand, true));
    const walk = randomWalk(rand, grammar.initial);
    if (walk === null) continue;
    const cut = rand.int(0, walk.length);
    out.push({ grammar, state: grammar.initial.stepBytes(walk.subarray(0, cut))!, where: `random walk, ${cut} bytes` });
  }
  return out;
}

function checkTokenizer(vocab: TokenVocabulary, numStates: number, seed: number, padded = 0): void {
  const trie = new VocabularyTrie(vocab, vocab.vocabSize + padded);
  const out = new Uint32Array(trie.numWords);
  const rand = new Rand(seed);
  const states = sampleStates(rand, numStates);
  for (const { state, where } of states) {
    const expected = bruteForce(vocab, state, trie.numWords);
    let allowed = 0;
    for (const word of expected) for (let w = word; w !== 0; w &= w - 1) allowed++;
    for (const useCache of [false, true, true]) {
      const n = trie.fillMask(state, out, useCache);
      if (!out.every((w, i) => w === expected[i])) {
        const diff = [...out].findIndex((w, i) => w !== expected[i]);
        throw new Error(`${where}: mask differs in word ${diff} (${out[diff]!.toString(2)} vs ${expected[diff]!.toString(2)})`);
      }
      expect(n, where).toBe(allowed);
    }
  }
}

describe('vocabulary mask vs brute force', () => {
  it('tok512 (byte-level BPE, 512 tokens), also with padded logits', async () => {
    const tok = await TextTokenizer.fromDirectory(TOK512_DIR);
    checkTokenizer(tok, 300, 1);
    checkTokenizer(tok, 40, 2, 37);
  });

  for (const name of ['llama3.2', 'qwen2.5', 'llama2']) {
    const dir = join(SHARED_TOKENIZERS, name);
    it.skipIf(!HAS_SHARED_MODELS || !existsSync(dir))(`${name} from ../shared/tokenizers${HAS_SHARED_MODELS ? '' : ` (${SHARED_SKIP_REASON})`}`, async () => {
      const tok = await TextTokenizer.fromDirectory(dir);
      checkTokenizer(tok, 24, 3);
    }, 180_000);
  }

  it('the trie leaves out special tokens and empty ones; the cache returns copies', async () => {
    const tok = await TextTokenizer.fromDirectory(TOK512_DIR);
    const trie = vocabularyTrie(tok);
    expect(vocabularyTrie(tok)).toBe(trie);
    for (const id of tok.specialTokenIds) expect(trie.bytesOf(id)).toBeNull();
    const state = compileJsonObject().initial;
    const a = new Uint32Array(trie.numWords);
    trie.fillMask(state, a);
    a.fill(0);
    const b = new Uint32Array(trie.numWords);
    trie.fillMask(state, b);
    expect(b.some((w) => w !== 0)).toBe(true);
  });
});

describe('GrammarMatcher', () => {
  it('allows end tokens only once the document is complete, and advances token by token', async () => {
    const tok = await TextTokenizer.fromDirectory(TOK512_DIR);
    const trie = vocabularyTrie(tok);
    const eos = tok.eosTokenIds[0]!;
    const matcher = new GrammarMatcher(compileJsonSchema({ type: 'object', properties: { a: { type: 'integer' } }, required: ['a'] }), trie, [eos]);
    const words = new Uint32Array(trie.numWords);
    const has = (id: number) => ((words[id >>> 5]! >>> (id & 31)) & 1) === 1;
    matcher.fillMask(words);
    expect(has(eos)).toBe(false);
    for (const id of tok.encode('{"a": 12}', { addSpecialTokens: false })) {
      matcher.fillMask(words);
      expect(has(id), tok.decode([id])).toBe(true);
      expect(matcher.accept(id)).toBe(true);
    }
    expect(matcher.accepting).toBe(true);
    matcher.fillMask(words);
    expect(has(eos)).toBe(true);
    expect(matcher.accept(eos)).toBe(true);
    expect(matcher.alive).toBe(false);
  });

  it('a token the grammar rejects kills the matcher; then only end tokens are offered', async () => {
    const tok = await TextTokenizer.fromDirectory(TOK512_DIR);
    const trie = vocabularyTrie(tok);
    const eos = tok.eosTokenIds[0]!;
    const matcher = new GrammarMatcher(compileJsonObject(), trie, [eos]);
    const bad = tok.encode('x', { addSpecialTokens: false }).at(-1)!; // after the leading space token
    expect(matcher.accept(bad)).toBe(false);
    const words = new Uint32Array(trie.numWords);
    expect(matcher.fillMask(words)).toBe(0);
    expect([...words].reduce((n, w) => n + (w === 0 ? 0 : 1), 0)).toBe(1);
    expect((words[eos >>> 5]! >>> (eos & 31)) & 1).toBe(1);
  });
});
