import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TextTokenizer } from '../../../src/tokenizer/tokenizer.ts';
import { readTokenizerFiles } from '../../../src/tokenizer/tokenizer-files.ts';
import { hasShared, loadTokenizer, NEEDS_SHARED, ROUND_TRIP_TEXTS, sharedPath, TOK512_DIR } from './helpers.ts';

interface GoldenCase {
  prompt: string;
  prompt_ids: number[];
  output_ids: number[];
  output_text: string;
}
const readGolden = (file: string): GoldenCase[] => (JSON.parse(readFileSync(file, 'utf8')) as { cases: GoldenCase[] }).cases;
const golden = readGolden(path.join(TOK512_DIR, 'golden-prompts.json'));

/** tok512 spells byte b as the token `<0xBB>`, id 3 + b (after <unk>, <s>, </s>). */
const byteToken = (byte: number): number => 3 + byte;

describe('TextTokenizer on the committed tok512 fixture', () => {
  it('encodes every golden prompt to its ids (BOS + tokens)', async () => {
    const tokenizer = await loadTokenizer(TOK512_DIR);
    expect(golden.length).toBeGreaterThanOrEqual(8);
    for (const { prompt, prompt_ids } of golden) {
      expect(tokenizer.encode(prompt), prompt).toEqual(prompt_ids);
    }
  });

  it('decodes every golden output to its text', async () => {
    const tokenizer = await loadTokenizer(TOK512_DIR);
    for (const { output_ids, output_text } of golden) {
      expect(tokenizer.decode(output_ids, { skipSpecialTokens: true })).toBe(output_text);
    }
  });

  it('round-trips Chinese, emoji and whitespace runs', async () => {
    const tokenizer = await loadTokenizer(TOK512_DIR);
    for (const text of ROUND_TRIP_TEXTS) {
      expect(tokenizer.decode(tokenizer.encode(text, { addSpecialTokens: false }))).toBe(text);
      const withBos = tokenizer.encode(text);
      expect(withBos[0]).toBe(1);
      expect(tokenizer.decode(withBos, { skipSpecialTokens: true })).toBe(text);
      expect(tokenizer.decode(withBos)).toBe(`<s> ${text}`);
    }
  });

  it('spells characters outside the 512 pieces with byte-fallback tokens', async () => {
    const tokenizer = await loadTokenizer(TOK512_DIR);
    // U+1F600 is F0 9F 98 80 in UTF-8.
    expect(tokenizer.encode('😀', { addSpecialTokens: false }).slice(-4)).toEqual([0xf0, 0x9f, 0x98, 0x80].map(byteToken));
  });

  it('knows its special tokens, BOS, EOS and size', async () => {
    const tokenizer = await loadTokenizer(TOK512_DIR);
    expect(tokenizer.bosToken).toBe('<s>');
    expect(tokenizer.bosTokenId).toBe(1);
    expect(tokenizer.eosToken).toBe('</s>');
    expect(tokenizer.eosTokenIds).toEqual([2]);
    expect([...tokenizer.specialTokenIds].sort()).toEqual([0, 1, 2]);
    expect(tokenizer.isSpecialToken(2)).toBe(true);
    expect(tokenizer.isSpecialToken(403)).toBe(false);
    expect(tokenizer.vocabSize).toBe(512);
    expect(tokenizer.cleanUpTokenizationSpaces).toBe(false);
  });

  it('decodes no ids to the empty string and ignores ids beyond the vocabulary', async () => {
    const tokenizer = await loadTokenizer(TOK512_DIR);
    expect(tokenizer.decode([])).toBe('');
    expect(tokenizer.decode([403, 512, 9999, -1, 407])).toBe(tokenizer.decode([403, 407]));
    expect(tokenizer.decode([403, 407])).toBe('Once upon');
  });

  it('skips special tokens only when asked', async () => {
    const tokenizer = await loadTokenizer(TOK512_DIR);
    const ids = [1, 403, 407, 2];
    expect(tokenizer.decode(ids)).toBe('<s> Once upon</s>');
    expect(tokenizer.decode(ids, { skipSpecialTokens: true })).toBe('Once upon');
  });

  it('shows a token as it reads mid-sequence (tokenText) and gives its bytes', async () => {
    const tokenizer = await loadTokenizer(TOK512_DIR);
    // '▁Once' decodes to 'Once' alone, but reads ' Once' inside a text, as OpenAI logprobs show it.
    expect(tokenizer.decode([403])).toBe('Once');
    expect(tokenizer.tokenText(403)).toBe(' Once');
    expect([...tokenizer.tokenBytes(403)]).toEqual([...new TextEncoder().encode(' Once')]);
    expect(tokenizer.tokenText(1)).toBe('<s>');
    // A byte that is only part of a character: escaped text, exact bytes.
    expect(tokenizer.tokenText(byteToken(0xf0))).toBe('\\xf0');
    expect([...tokenizer.tokenBytes(byteToken(0xf0))]).toEqual([0xf0]);
    // A byte-fallback token that is a whole character shows the character.
    expect(tokenizer.tokenText(byteToken(0x0a))).toBe('\n');
    expect(tokenizer.tokenText(600)).toBe('');
  });

  it('takes EOS ids from generation_config, config and the tokenizer, as numbers or lists', async () => {
    const files = await readTokenizerFiles(TOK512_DIR);
    const tokenizer = new TextTokenizer({
      ...files,
      generationConfig: { eos_token_id: [7, 2] },
      modelConfig: { eos_token_id: 9 },
    });
    expect(tokenizer.eosTokenIds).toEqual([7, 2, 9]);
    const withoutConfigs = new TextTokenizer({ ...files, generationConfig: null, modelConfig: null });
    expect(withoutConfigs.eosTokenIds).toEqual([2]);
  });

  it('accepts special tokens written as AddedToken objects in tokenizer_config', async () => {
    const files = await readTokenizerFiles(TOK512_DIR);
    const tokenizer = new TextTokenizer({
      ...files,
      tokenizerConfig: {
        ...files.tokenizerConfig,
        bos_token: { __type: 'AddedToken', content: '<s>', lstrip: false },
        eos_token: { __type: 'AddedToken', content: '</s>', lstrip: false },
      },
    });
    expect(tokenizer.bosToken).toBe('<s>');
    expect(tokenizer.bosTokenId).toBe(1);
    expect(tokenizer.eosTokenIds).toEqual([2]);
  });
});

describe.skipIf(!hasShared('models/stories260K'))(`tok512 fixture matches ../shared/models ${NEEDS_SHARED}`, () => {
  it('is the stories260K tokenizer and golden data, unchanged', () => {
    for (const file of ['tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja']) {
      expect(readFileSync(path.join(TOK512_DIR, file), 'utf8'), file).toBe(readFileSync(sharedPath('models/stories260K', file), 'utf8'));
    }
    const shared = readGolden(sharedPath('models/stories260K/golden.json'));
    expect(golden).toEqual(shared.map(({ prompt, prompt_ids, output_ids, output_text }) => ({ prompt, prompt_ids, output_ids, output_text })));
  });

  it('reads EOS from generation_config.json and config.json of the model folder', async () => {
    const tokenizer = await loadTokenizer(sharedPath('models/stories260K'));
    expect(tokenizer.eosTokenIds).toEqual([2]);
    expect(tokenizer.chatTemplateSource).toContain('{{ bos_token }}');
  });

  it('decodes random-weight output like the reference, up to how invalid UTF-8 is replaced', async () => {
    // tiny-llama31-random emits byte tokens that do not form UTF-8. The reference (SentencePiece) writes
    // U+FFFD per invalid byte and ' ⁇ ' for <unk>; @huggingface/tokenizers writes one U+FFFD per
    // invalid sequence (WHATWG, which keeps streamed text equal to a full decode) and skips <unk> as a
    // special token. Everything else must agree.
    const tokenizer = await loadTokenizer(TOK512_DIR);
    const collapse = (text: string): string => text.replace(/\uFFFD+/g, '\uFFFD');
    for (const { output_ids, output_text } of readGolden(sharedPath('models/tiny-llama31-random/golden.json'))) {
      const decoded = tokenizer.decode(output_ids, { skipSpecialTokens: true });
      expect(collapse(decoded)).toBe(collapse(output_text.replaceAll(' ⁇ ', '')));
    }
  });
});

interface FamilyExpectations {
  dir: string;
  vocabSize: number;
  bos: string | null;
  /** Whether encode() adds BOS (the tokenizer's post-processor). */
  addsBos: boolean;
  eosTokenIds: number[];
}

const FAMILIES: FamilyExpectations[] = [
  { dir: 'tokenizers/llama3.2', vocabSize: 128256, bos: '<|begin_of_text|>', addsBos: true, eosTokenIds: [128009] },
  { dir: 'tokenizers/qwen2.5', vocabSize: 151665, bos: null, addsBos: false, eosTokenIds: [151645] },
  { dir: 'tokenizers/phi3-mini', vocabSize: 32011, bos: '<s>', addsBos: false, eosTokenIds: [32000] },
  { dir: 'tokenizers/llama2', vocabSize: 32000, bos: '<s>', addsBos: true, eosTokenIds: [2] },
];

for (const family of FAMILIES) {
  describe.skipIf(!hasShared(family.dir))(`TextTokenizer on ${family.dir} ${NEEDS_SHARED}`, () => {
    const load = (): Promise<TextTokenizer> => loadTokenizer(sharedPath(family.dir));

    it('round-trips Chinese, emoji and whitespace runs', async () => {
      const tokenizer = await load();
      for (const text of ROUND_TRIP_TEXTS) {
        const ids = tokenizer.encode(text);
        expect(tokenizer.decode(ids, { skipSpecialTokens: true })).toBe(text);
        expect(tokenizer.decode(tokenizer.encode(text, { addSpecialTokens: false }))).toBe(text);
      }
    });

    it('adds BOS exactly when the tokenizer does, and knows BOS/EOS/vocabulary size', async () => {
      const tokenizer = await load();
      expect(tokenizer.bosToken).toBe(family.bos);
      const ids = tokenizer.encode('Hello');
      expect(ids[0] === tokenizer.bosTokenId).toBe(family.addsBos);
      expect(tokenizer.encode('Hello', { addSpecialTokens: false })).toEqual(family.addsBos ? ids.slice(1) : ids);
      expect(tokenizer.eosTokenIds).toEqual(family.eosTokenIds);
      expect(tokenizer.vocabSize).toBe(family.vocabSize);
      for (const eos of family.eosTokenIds) expect(tokenizer.isSpecialToken(eos)).toBe(true);
    });

    it('shows each token of a sentence with its own leading space, so they join to the text', async () => {
      const tokenizer = await load();
      const text = 'Once upon a time, 你好 😀!';
      const ids = tokenizer.encode(text, { addSpecialTokens: false });
      expect(ids.map((id) => tokenizer.tokenText(id)).join('')).toMatch(/^ ?Once upon a time, 你好 /);
      const bytes = ids.flatMap((id) => [...tokenizer.tokenBytes(id)]);
      // SentencePiece models add a space before the first word (the ▁ prefix); byte-level ones do not.
      expect(new TextDecoder().decode(Uint8Array.from(bytes))).toMatch(new RegExp(`^ ?${text}$`));
    });
  });
}

describe.skipIf(!hasShared('tokenizers/llama3.2'))(`clean-up of tokenization spaces ${NEEDS_SHARED}`, () => {
  it('is off by default even though llama3.2 asks for it, and available on request', async () => {
    const tokenizer = await loadTokenizer(sharedPath('tokenizers/llama3.2'));
    expect(tokenizer.cleanUpTokenizationSpaces).toBe(true);
    const ids = tokenizer.encode("x = a .b , do n't", { addSpecialTokens: false });
    expect(tokenizer.decode(ids)).toBe("x = a .b , do n't");
    expect(tokenizer.decode(ids, { cleanUpTokenizationSpaces: true })).toBe("x = a.b, don't");
  });
});

describe.skipIf(!hasShared('tokenizers/qwen2.5'))(`ids past the tokenizer in a padded vocabulary ${NEEDS_SHARED}`, () => {
  it('decode to nothing (Qwen2.5: 151,665 ids, model vocabulary 151,936)', async () => {
    const tokenizer = await loadTokenizer(sharedPath('tokenizers/qwen2.5'));
    const hello = tokenizer.encode('Hello');
    expect(tokenizer.decode([...hello, 151_900])).toBe('Hello');
    expect(tokenizer.tokenText(151_900)).toBe('');
  });
});
