/**
 * TextTokenizer.decode's byte-level fast path (ByteLevelDecoder) against the library's decode, on every
 * byte-level tokenizer in ../shared/tokenizers: random id sequences that mix ordinary tokens, byte
 * fragments that make invalid or incomplete UTF-8, special and added tokens, and ids outside the
 * vocabulary, with and without skipSpecialTokens, must decode to exactly the same text.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { Tokenizer } from '@huggingface/tokenizers';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { TextTokenizer } from '../../../src/tokenizer/tokenizer.ts';
import { readTokenizerFiles, type TokenizerFiles } from '../../../src/tokenizer/tokenizer-files.ts';
import { hasShared, loadTokenizer, NEEDS_SHARED, randomInt, ROUND_TRIP_TEXTS, seededRandom, sharedPath, TOK512_DIR } from './helpers.ts';

const SEQUENCES = 4000;
const MAX_LENGTH = 8;

/** The folders under ../shared/tokenizers whose decoder is ByteLevel (empty without ../shared). */
function byteLevelTokenizers(): string[] {
  if (!hasShared('tokenizers')) return [];
  return readdirSync(sharedPath('tokenizers'), { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && hasShared('tokenizers', entry.name, 'tokenizer.json'))
    .map((entry) => entry.name)
    .filter((name) => {
      const json = JSON.parse(readFileSync(sharedPath('tokenizers', name, 'tokenizer.json'), 'utf8')) as { decoder?: { type?: unknown } | null };
      return json.decoder?.type === 'ByteLevel';
    })
    .sort();
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const isCompleteUtf8 = (bytes: Uint8Array): boolean => {
  try {
    strictUtf8.decode(bytes);
    return true;
  } catch {
    return false;
  }
};

interface Pools {
  /** Ids below this are ordinary vocabulary tokens (added tokens follow them in both vocabularies). */
  ordinaryBelow: number;
  /** The id of each single-byte token, by byte. */
  byteIds: Map<number, number>;
  /** Tokens whose bytes are not complete UTF-8 on their own: single bytes ≥ 0x80 and partial characters. */
  fragments: number[];
  special: number[];
  /** Added tokens not marked special (Qwen2.5's <tool_call>...). */
  addedPlain: number[];
  /** Ids that decode to nothing: past the vocabulary, negative, not integers. */
  unknown: number[];
  /** Real text, sliced into windows, so characters split across tokens also complete. */
  text: number[];
}

function poolsOf(tokenizer: TextTokenizer, files: TokenizerFiles): Pools {
  const added = files.tokenizerJson.added_tokens as { id: number; special: boolean }[];
  const ordinaryBelow = Math.min(...added.map((token) => token.id));
  const byteIds = new Map<number, number>();
  const fragments: number[] = [];
  for (let id = 0; id < ordinaryBelow; id++) {
    const bytes = tokenizer.tokenBytes(id);
    if (bytes.length === 1) byteIds.set(bytes[0]!, id);
    if (!isCompleteUtf8(bytes)) fragments.push(id);
  }
  const v = tokenizer.vocabSize;
  return {
    ordinaryBelow,
    byteIds,
    fragments,
    special: added.filter((token) => token.special).map((token) => token.id),
    addedPlain: added.filter((token) => !token.special).map((token) => token.id),
    unknown: [v, v + 1, v + 1000, -1, 1.5, Number.NaN, 2 ** 31],
    text: ROUND_TRIP_TEXTS.flatMap((text) => tokenizer.encode(text, { addSpecialTokens: false })),
  };
}

function randomSequence(random: () => number, pools: Pools): number[] {
  const length = 1 + randomInt(random, MAX_LENGTH);
  const ids: number[] = [];
  const pick = (pool: readonly number[]): number => pool[randomInt(random, pool.length)]!;
  while (ids.length < length) {
    const kind = randomInt(random, 11);
    if (kind < 2) ids.push(randomInt(random, pools.ordinaryBelow));
    else if (kind < 5) ids.push(pick(pools.fragments));
    else if (kind < 6) ids.push(pick(pools.special));
    else if (kind < 7 && pools.addedPlain.length > 0) ids.push(pick(pools.addedPlain));
    else if (kind < 8) ids.push(pick(pools.unknown));
    else if (kind < 9) {
      const start = randomInt(random, pools.text.length);
      ids.push(...pools.text.slice(start, start + 1 + randomInt(random, 4)));
    } else {
      // A UTF-8 BOM in single-byte tokens: the library's TextDecoder keeps it at the start of a run.
      ids.push(...[0xef, 0xbb, 0xbf].map((b) => pools.byteIds.get(b)!));
    }
  }
  return ids.slice(0, length);
}

afterEach(() => {
  vi.restoreAllMocks();
});

const tokenizers = byteLevelTokenizers();

describe.skipIf(!hasShared('tokenizers'))(`byte-level tokenizers in ../shared/tokenizers ${NEEDS_SHARED}`, () => {
  it('include Llama 3 and Qwen2.5', () => {
    expect(tokenizers).toEqual(expect.arrayContaining(['llama3.2', 'qwen2.5']));
  });
});

for (const name of tokenizers) {
  describe(`decode's byte-level fast path on ${name} ${NEEDS_SHARED}`, () => {
    const load = async (): Promise<{ fast: TextTokenizer; library: TextTokenizer; pools: Pools }> => {
      const files = await readTokenizerFiles(sharedPath('tokenizers', name));
      const fast = new TextTokenizer(files);
      return { fast, library: new TextTokenizer(files, { libraryDecode: true }), pools: poolsOf(fast, files) };
    };

    it('equals the library on random id sequences, never calling it', async () => {
      const { fast, library, pools } = await load();
      expect(pools.special.length).toBeGreaterThan(0);
      expect(pools.fragments.length).toBeGreaterThan(256);
      const libraryDecode = vi.spyOn(Tokenizer.prototype, 'decode');
      const random = seededRandom(0x5eed + name.length);
      let fastCalls = 0;
      for (let i = 0; i < SEQUENCES; i++) {
        const ids = randomSequence(random, pools);
        for (const skipSpecialTokens of [false, true]) {
          const before = libraryDecode.mock.calls.length;
          const text = fast.decode(ids, { skipSpecialTokens });
          fastCalls += libraryDecode.mock.calls.length - before;
          expect(text, `${JSON.stringify(ids)} skipSpecialTokens=${skipSpecialTokens}`).toBe(library.decode(ids, { skipSpecialTokens }));
        }
      }
      // Equality proves nothing if the fast path was never taken.
      expect(fastCalls).toBe(0);
      expect(libraryDecode.mock.calls.length).toBeGreaterThan(SEQUENCES);
    });

    it('replaces invalid and incomplete UTF-8 as the library does, and keeps a BOM', async () => {
      const { fast, library, pools } = await load();
      const [e4, bd, a0, x80, ef, bb, bf] = [0xe4, 0xbd, 0xa0, 0x80, 0xef, 0xbb, 0xbf].map((b) => pools.byteIds.get(b)!);
      const special = fast.eosTokenIds[0]!;
      const cases: [number[], string, string][] = [
        [[x80], '\uFFFD', '\uFFFD'], // a lone continuation byte
        [[e4, bd], '\uFFFD', '\uFFFD'], // an incomplete trailing sequence: one U+FFFD for both bytes
        [[e4, bd, a0], '你', '你'],
        [[x80, x80, e4], '\uFFFD\uFFFD\uFFFD', '\uFFFD\uFFFD\uFFFD'],
        [[ef, bb, bf], '\uFEFF', '\uFEFF'], // the library's TextDecoder keeps a leading BOM
        // An added token ends the byte run (the lead byte before it, and each continuation byte after
        // it, decode to U+FFFD); a skipped special token does not, so the character completes.
        [[e4, special, bd, a0], `\uFFFD${fast.tokenText(special)}\uFFFD\uFFFD`, '你'],
      ];
      for (const [ids, keep, skip] of cases) {
        expect(fast.decode(ids), JSON.stringify(ids)).toBe(library.decode(ids));
        expect(fast.decode(ids, { skipSpecialTokens: true }), JSON.stringify(ids)).toBe(library.decode(ids, { skipSpecialTokens: true }));
        expect(fast.decode(ids)).toBe(keep);
        expect(fast.decode(ids, { skipSpecialTokens: true })).toBe(skip);
      }
    });
  });
}

describe('decode on tokenizers that are not byte-level', () => {
  it('uses the library (tok512: SentencePiece with byte fallback)', async () => {
    const tokenizer = await loadTokenizer(TOK512_DIR);
    const libraryDecode = vi.spyOn(Tokenizer.prototype, 'decode');
    expect(tokenizer.decode([1, 300, 301], { skipSpecialTokens: true })).not.toBe('');
    expect(libraryDecode).toHaveBeenCalled();
  });
});
