/**
 * The encode pool (src/tokenizer/encode-pool.ts): worker threads give exactly the ids the main thread's
 * tokenizer gives (special tokens in the text, add_special_tokens off, chat prompts through the
 * service), aborted jobs leave nothing behind, and close() ends the workers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineCore } from '../../../src/engine/engine.ts';
import type { ChatMessage } from '../../../src/engine/inference-service.ts';
import { LocalInferenceService } from '../../../src/engine/local-service.ts';
import { EncodePool, TextTokenizer } from '../../../src/tokenizer/index.ts';
import { hasShared, NEEDS_SHARED, ROUND_TRIP_TEXTS, seededRandom, sharedPath, TOK512_DIR } from './helpers.ts';

const CARD = { id: 'm', root: '/m', created: 0, maxModelLen: 1 << 20 };
/** renderChat and encode never touch the engine. */
const NO_ENGINE = {} as unknown as EngineCore;

/** Texts with the tokenizers' special tokens written out, odd whitespace and a long random one. */
function textsFor(specials: string[]): string[] {
  const random = seededRandom(7);
  const alphabet = 'abcdefghij klmnopq rstuvwxyz.,;!? \n\t你好🦊é';
  const long = Array.from({ length: 6000 }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
  return [
    ...ROUND_TRIP_TEXTS,
    '',
    ' leading space',
    ...specials.map((special) => `${special}Hello${special} world ${special}`),
    specials.join(''),
    long,
    `${specials[0] ?? ''}${long}`,
  ];
}

const CASES = [
  { name: 'tok512 fixture', dir: TOK512_DIR, specials: ['<s>', '</s>', '<unk>'], shared: false },
  { name: 'llama3.2', dir: sharedPath('tokenizers/llama3.2'), specials: ['<|begin_of_text|>', '<|eot_id|>', '<|start_header_id|>'], shared: true },
  { name: 'qwen2.5', dir: sharedPath('tokenizers/qwen2.5'), specials: ['<|im_start|>', '<|im_end|>', '<|endoftext|>'], shared: true },
  { name: 'phi3-mini', dir: sharedPath('tokenizers/phi3-mini'), specials: ['<s>', '<|user|>', '<|end|>'], shared: true },
  { name: 'llama2', dir: sharedPath('tokenizers/llama2'), specials: ['<s>', '</s>'], shared: true },
];

for (const c of CASES) {
  const present = !c.shared || hasShared(c.dir.slice(sharedPath().length + 1));
  describe.skipIf(!present)(`encode pool on ${c.name}${c.shared ? ` ${NEEDS_SHARED}` : ''}`, () => {
    let tokenizer: TextTokenizer;
    let pool: EncodePool;
    beforeAll(async () => {
      tokenizer = await TextTokenizer.fromDirectory(c.dir);
      // inlineBelowChars 0: every text goes to a worker.
      pool = await EncodePool.start({ source: c.dir, tokenizer, size: 2, inlineBelowChars: 0 });
    });
    afterAll(async () => {
      await pool.close();
    });

    it('gives the main thread ids, with and without special tokens', async () => {
      expect(pool.size).toBe(2);
      const texts = textsFor(c.specials);
      for (const addSpecialTokens of [true, false]) {
        const fromPool = await Promise.all(texts.map((text) => pool.encode(text, { addSpecialTokens })));
        fromPool.forEach((ids, i) => expect(ids, JSON.stringify(texts[i]!.slice(0, 40))).toEqual(tokenizer.encode(texts[i]!, { addSpecialTokens })));
      }
      expect(await pool.encode('Hello')).toEqual(tokenizer.encode('Hello'));
    });

    it('renders chats through the service exactly as without workers', async () => {
      const template = "{{ bos_token }}{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
      const noBos = "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}";
      for (const chatTemplate of [template, noBos]) {
        const local = await TextTokenizer.fromDirectory(c.dir, { chatTemplate });
        const pooled = new LocalInferenceService(CARD, NO_ENGINE, local, { maxQueuedRequests: Infinity, encodePool: pool });
        const plain = new LocalInferenceService(CARD, NO_ENGINE, local);
        const messages: ChatMessage[] = [
          { role: 'system', content: `Be brief. ${c.specials.join(' ')}` },
          { role: 'user', content: textsFor(c.specials).at(-2)! },
        ];
        for (const addGenerationPrompt of [true, false]) {
          const a = await pooled.renderChat(messages, { addGenerationPrompt });
          const b = await plain.renderChat(messages, { addGenerationPrompt });
          expect(a).toEqual(b);
          expect(a.promptTokenIds).toEqual(local.renderChat(messages, { addGenerationPrompt }).promptTokenIds);
        }
        expect(await pooled.encode('x '.repeat(400), { addSpecialTokens: false })).toEqual(local.encode('x '.repeat(400), { addSpecialTokens: false }));
      }
    });
  });
}

describe('encode pool jobs', () => {
  let tokenizer: TextTokenizer;
  beforeAll(async () => {
    tokenizer = await TextTokenizer.fromDirectory(TOK512_DIR);
  });

  it('drops a job aborted while it waits, and rejects one aborted while a worker encodes it', async () => {
    const pool = await EncodePool.start({ source: TOK512_DIR, tokenizer, size: 1, inlineBelowChars: 0 });
    try {
      const text = 'Once upon a time there was a little dog. '.repeat(2000);
      const running = new AbortController();
      const waiting = new AbortController();
      const first = pool.encode(text, { signal: running.signal });
      const second = pool.encode(text, { signal: waiting.signal });
      const third = pool.encode(text);
      expect(pool.numRunning).toBe(1);
      expect(pool.numQueued).toBe(2);
      waiting.abort(new Error('client left'));
      expect(pool.numQueued).toBe(1);
      await expect(second).rejects.toThrow('client left');
      running.abort();
      await expect(first).rejects.toMatchObject({ name: 'AbortError' });
      // The worker carries on with the next job.
      expect(await third).toEqual(tokenizer.encode(text));
      expect(pool.numRunning).toBe(0);
      expect(pool.numQueued).toBe(0);
      // An already aborted signal never reaches a worker.
      await expect(pool.encode(text, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
      expect(pool.numQueued + pool.numRunning).toBe(0);
    } finally {
      await pool.close();
    }
  });

  it('encodes short texts on the main thread and everything after close()', async () => {
    const pool = await EncodePool.start({ source: TOK512_DIR, tokenizer, size: 1, inlineBelowChars: 100 });
    const short = pool.encode('Hi there');
    expect(pool.numRunning + pool.numQueued).toBe(0);
    expect(await short).toEqual(tokenizer.encode('Hi there'));
    const long = 'word '.repeat(100);
    const pending = pool.encode(long);
    await pool.close();
    expect(pool.size).toBe(0);
    // A job the closed pool had is answered on the main thread, and so are later ones.
    expect(await pending).toEqual(tokenizer.encode(long));
    expect(await pool.encode(long, { addSpecialTokens: false })).toEqual(tokenizer.encode(long, { addSpecialTokens: false }));
  });

  it('refuses to start when a worker cannot load the tokenizer', async () => {
    await expect(EncodePool.start({ source: '/nonexistent-tokenizer-dir', tokenizer, size: 1 })).rejects.toThrow(/could not load the tokenizer/);
  });
});
