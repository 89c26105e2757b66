import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { IncrementalDetokenizer, type TokenDecoder } from '../../../src/tokenizer/detokenizer.ts';
import type { TextTokenizer } from '../../../src/tokenizer/tokenizer.ts';
import { hasShared, loadTokenizer, NEEDS_SHARED, randomInt, ROUND_TRIP_TEXTS, seededRandom, sharedPath, TOK512_DIR } from './helpers.ts';

interface GoldenCase {
  prompt: string;
  prompt_ids: number[];
  output_ids: number[];
  output_text: string;
}
const golden = (JSON.parse(readFileSync(path.join(TOK512_DIR, 'golden-prompts.json'), 'utf8')) as { cases: GoldenCase[] }).cases;

const byteToken = (byte: number): number => 3 + byte; // tok512: <0xBB> is id 3 + b

interface StreamResult {
  deltas: string[];
  text: string;
  maxWindow: number;
}

function stream(
  decoder: TokenDecoder,
  ids: readonly number[],
  options: { skipSpecialTokens: boolean; promptTokenIds?: readonly number[] },
): StreamResult {
  const detokenizer = new IncrementalDetokenizer(decoder, options);
  const deltas: string[] = [];
  let maxWindow = detokenizer.windowSize;
  for (const id of ids) {
    deltas.push(detokenizer.push(id));
    maxWindow = Math.max(maxWindow, detokenizer.windowSize);
  }
  deltas.push(detokenizer.flush());
  return { deltas, text: deltas.join(''), maxWindow };
}

/** What the stream must equal when seeded with a prompt: the text the output adds after it. */
function continuation(tokenizer: TextTokenizer, prompt: readonly number[], output: readonly number[], skipSpecialTokens: boolean): string {
  const before = tokenizer.decode(prompt, { skipSpecialTokens });
  const after = tokenizer.decode([...prompt, ...output], { skipSpecialTokens });
  expect(after.startsWith(before)).toBe(true);
  return after.slice(before.length);
}

/** Random id sequences over the whole vocabulary (specials and lone bytes included) stream to the full decode. */
function checkRandomSequences(tokenizer: TextTokenizer, seed: number, sequences: number, maxLength: number): void {
  const random = seededRandom(seed);
  for (let n = 0; n < sequences; n++) {
    const ids = Array.from({ length: 1 + randomInt(random, maxLength) }, () => randomInt(random, tokenizer.vocabSize));
    for (const skipSpecialTokens of [true, false]) {
      const expected = tokenizer.decode(ids, { skipSpecialTokens });
      expect(stream(tokenizer, ids, { skipSpecialTokens }).text, `ids ${JSON.stringify(ids)}`).toBe(expected);
    }
  }
}

/** Counts what the detokenizer asks of the tokenizer, to show it decodes a bounded window per token. */
class CountingDecoder implements TokenDecoder {
  calls = 0;
  idsDecoded = 0;
  longestCall = 0;
  readonly #inner: TokenDecoder;
  constructor(inner: TokenDecoder) {
    this.#inner = inner;
  }
  decode(ids: readonly number[], options: { skipSpecialTokens: boolean }): string {
    this.calls++;
    this.idsDecoded += ids.length;
    this.longestCall = Math.max(this.longestCall, ids.length);
    return this.#inner.decode(ids, options);
  }
  isSpecialToken(id: number): boolean {
    return this.#inner.isSpecialToken(id);
  }
}

describe('IncrementalDetokenizer on the committed tok512 fixture (SentencePiece BPE, byte fallback)', () => {
  it('streams random id sequences to exactly the full decode', async () => {
    checkRandomSequences(await loadTokenizer(TOK512_DIR), 1, 300, 60);
  });

  it('streams random sequences of byte tokens (mostly invalid UTF-8) to the full decode', async () => {
    const tokenizer = await loadTokenizer(TOK512_DIR);
    const random = seededRandom(2);
    const interesting = [0x20, 0x41, 0x80, 0x9f, 0xa9, 0xbf, 0xc3, 0xe2, 0xe4, 0xf0, 0xff];
    for (let n = 0; n < 300; n++) {
      const ids = Array.from({ length: 1 + randomInt(random, 20) }, () =>
        random() < 0.8 ? byteToken(interesting[randomInt(random, interesting.length)]!) : 300 + randomInt(random, 200),
      );
      expect(stream(tokenizer, ids, { skipSpecialTokens: true }).text, JSON.stringify(ids)).toBe(tokenizer.decode(ids, { skipSpecialTokens: true }));
    }
  });

  it('holds back a character split over byte tokens and emits it whole, never U+FFFD', async () => {
    const tokenizer = await loadTokenizer(TOK512_DIR);
    const text = 'Lily saw 😀 and 你好 on the 🚀.';
    const ids = tokenizer.encode(text, { addSpecialTokens: false });
    const { deltas, text: streamed } = stream(tokenizer, ids, { skipSpecialTokens: true });
    expect(streamed).toBe(text);
    expect(deltas.join('|')).not.toContain('\uFFFD');
    // The four byte tokens of 😀 give '', '', '' and then the whole emoji.
    const emojiStart = ids.indexOf(byteToken(0xf0));
    expect(deltas.slice(emojiStart, emojiStart + 4)).toEqual(['', '', '', '😀']);
  });

  it('without a prompt, streams decode(outputIds): the first piece loses its leading space', () => {
    return loadTokenizer(TOK512_DIR).then((tokenizer) => {
      for (const { output_ids, output_text } of golden) {
        const { deltas, text } = stream(tokenizer, output_ids, { skipSpecialTokens: true });
        expect(text).toBe(output_text);
        expect(deltas[0]).toBe(output_text.slice(0, deltas[0]!.length));
        expect(deltas[0]!.startsWith(' ')).toBe(false);
      }
    });
  });

  it('seeded with the prompt, streams the text the output adds after it (leading space kept)', async () => {
    const tokenizer = await loadTokenizer(TOK512_DIR);
    for (const { prompt, prompt_ids, output_ids, output_text } of golden) {
      const { text } = stream(tokenizer, output_ids, { skipSpecialTokens: true, promptTokenIds: prompt_ids });
      expect(text).toBe(continuation(tokenizer, prompt_ids, output_ids, true));
      // A prompt that is only BOS has no text to continue: the output starts the text.
      const firstPieceHasSpace = tokenizer.tokenText(output_ids[0]!).startsWith(' ');
      expect(text).toBe(prompt !== '' && firstPieceHasSpace ? ` ${output_text}` : output_text);
    }
    const lily = golden.find((c) => c.prompt.startsWith('Lily'))!;
    expect(stream(tokenizer, lily.output_ids, { skipSpecialTokens: true, promptTokenIds: lily.prompt_ids }).text).toMatch(/^ a big box/);
  });

  it('with special tokens kept, a BOS-only prompt is text to continue', async () => {
    const tokenizer = await loadTokenizer(TOK512_DIR);
    const output = [403, 407, 2];
    expect(stream(tokenizer, output, { skipSpecialTokens: false, promptTokenIds: [1] }).text).toBe(' Once upon</s>');
    expect(stream(tokenizer, output, { skipSpecialTokens: true, promptTokenIds: [1] }).text).toBe('Once upon');
    expect(stream(tokenizer, output, { skipSpecialTokens: false }).text).toBe('Once upon</s>');
  });

  it('keeps the space after a skipped special token inside the output', async () => {
    const tokenizer = await loadTokenizer(TOK512_DIR);
    const ids = [403, 2, 407];
    expect(stream(tokenizer, ids, { skipSpecialTokens: true }).text).toBe(tokenizer.decode(ids, { skipSpecialTokens: true }));
    expect(stream(tokenizer, ids, { skipSpecialTokens: true }).text).toBe('Once upon');
  });

  it('releases an incomplete character at the end on flush, as U+FFFD like the full decode', async () => {
    const tokenizer = await loadTokenizer(TOK512_DIR);
    const ids = [403, byteToken(0xf0), byteToken(0x9f)];
    const detokenizer = new IncrementalDetokenizer(tokenizer, { skipSpecialTokens: true });
    expect(ids.map((id) => detokenizer.push(id))).toEqual(['Once', '', '']);
    expect(detokenizer.flush()).toBe('\uFFFD');
    expect(detokenizer.flush()).toBe('');
    expect(tokenizer.decode(ids)).toBe('Once\uFFFD');
  });

  it('drops a prompt tail that ends inside a character instead of splitting it', async () => {
    const tokenizer = await loadTokenizer(TOK512_DIR);
    const prompt = [1, 403, byteToken(0xf0)];
    const output = [0x9f, 0x98, 0x80].map(byteToken).concat([407]);
    const { text } = stream(tokenizer, output, { skipSpecialTokens: true, promptTokenIds: prompt });
    expect(text).toBe(tokenizer.decode(output));
    expect(text.isWellFormed()).toBe(true);
  });

  it('decodes a bounded window per token, not the whole output', async () => {
    const tokenizer = await loadTokenizer(TOK512_DIR);
    const ids = Array.from({ length: 40 }, () => golden.flatMap((c) => c.output_ids)).flat(); // ~20k tokens
    const counter = new CountingDecoder(tokenizer);
    const { text, maxWindow } = stream(counter, ids, { skipSpecialTokens: true });
    expect(text).toBe(tokenizer.decode(ids, { skipSpecialTokens: true }));
    expect(maxWindow).toBeLessThanOrEqual(8);
    expect(counter.longestCall).toBeLessThanOrEqual(8);
    expect(counter.calls).toBeLessThanOrEqual(2 * ids.length + 2);
  });

  it("decodes about once per token: a token's own text is remembered per decoder, across streams", async () => {
    const tokenizer = await loadTokenizer(TOK512_DIR);
    const ids = Array.from({ length: 20 }, () => golden.flatMap((c) => c.output_ids)).flat();
    const counter = new CountingDecoder(tokenizer);
    const first = stream(counter, ids, { skipSpecialTokens: true });
    expect(first.text).toBe(tokenizer.decode(ids, { skipSpecialTokens: true }));
    // Each emitted token becomes the next window's prefix, whose text is the token's own: remembered.
    expect(counter.calls).toBeLessThan(1.2 * ids.length);
    const before = counter.calls;
    const second = stream(counter, ids, { skipSpecialTokens: false });
    expect(second.text).toBe(tokenizer.decode(ids, { skipSpecialTokens: false }));
    // The other skipSpecialTokens setting has texts of its own (a special token reads differently).
    expect(counter.calls - before).toBeGreaterThanOrEqual(ids.length);
    const third = stream(counter, ids, { skipSpecialTokens: true });
    expect(third.text).toBe(first.text);
  });

  it('stays bounded on an endless run of invalid bytes, still equal to the full decode', async () => {
    const tokenizer = await loadTokenizer(TOK512_DIR);
    const ids = [403, ...Array.from({ length: 500 }, (_, i) => byteToken(i % 3 === 0 ? 0xf0 : 0x9f))];
    const { text, maxWindow } = stream(tokenizer, ids, { skipSpecialTokens: true });
    expect(text).toBe(tokenizer.decode(ids));
    // Released in chunks: at most 16 unread tokens wait on top of the previous chunk (the prefix).
    expect(maxWindow).toBeLessThanOrEqual(32);
  });
});

const BYTE_LEVEL = ['tokenizers/llama3.2', 'tokenizers/qwen2.5'];
const SENTENCEPIECE = ['tokenizers/phi3-mini', 'tokenizers/llama2'];

for (const dir of [...BYTE_LEVEL, ...SENTENCEPIECE]) {
  describe.skipIf(!hasShared(dir))(`IncrementalDetokenizer on ${dir} ${NEEDS_SHARED}`, () => {
    const load = (): Promise<TextTokenizer> => loadTokenizer(sharedPath(dir));

    it('streams random id sequences to exactly the full decode', async () => {
      checkRandomSequences(await load(), 7, 150, 40);
    });

    it('streams Chinese, emoji and whitespace text token by token to the full decode, never U+FFFD', async () => {
      const tokenizer = await load();
      let splitCharacters = 0;
      for (const text of ROUND_TRIP_TEXTS) {
        const ids = tokenizer.encode(text);
        const { deltas, text: streamed } = stream(tokenizer, ids, { skipSpecialTokens: true });
        expect(streamed).toBe(text);
        expect(deltas.join('')).not.toContain('\uFFFD');
        splitCharacters += ids.filter((id) => tokenizer.tokenText(id).includes('\\x')).length;
      }
      // The texts must exercise tokens holding part of a character, or this test proves nothing.
      expect(splitCharacters).toBeGreaterThan(0);
    });

    it('seeded with a prompt, streams the continuation of the prompt text', async () => {
      const tokenizer = await load();
      const full = tokenizer.encode('The quick brown fox jumps over the lazy dog. 你好 🦊');
      const promptLength = tokenizer.encode('The quick brown fox').length;
      const [prompt, output] = [full.slice(0, promptLength), full.slice(promptLength)];
      const { text } = stream(tokenizer, output, { skipSpecialTokens: true, promptTokenIds: prompt });
      expect(text).toBe(continuation(tokenizer, prompt, output, true));
      expect(text).toMatch(/^ jumps over the lazy dog\. 你好 🦊$/);
    });
  });
}
