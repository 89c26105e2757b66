/**
 * Penalties, logit_bias and min_tokens through the HTTP API on real models: each moves the output in
 * the direction it should (greedy, so nothing but the processing differs), async scheduling (the
 * previous sample still on the device) gives exactly what synchronous steps give, and requests
 * without processing are untouched by their neighbours' processing.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyModelDir } from '../fixtures/tiny-models.ts';
import { HAS_SHARED_MODELS, SHARED_MODELS } from '../helpers/paths.ts';
import { startTestServer, type TestServer } from './harness.ts';

interface Completion {
  text: string;
  tokens: number[];
  finishReason: string;
}

async function complete(server: TestServer, body: Record<string, unknown>): Promise<Completion> {
  const response = await fetch(`${server.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ max_tokens: 40, temperature: 0, logprobs: 0, return_tokens_as_token_ids: true, ...body }),
  });
  const json = (await response.json()) as { choices: { text: string; finish_reason: string; logprobs: { tokens: string[] } }[]; error?: { message: string } };
  if (response.status !== 200) throw new Error(`HTTP ${response.status}: ${json.error?.message}`);
  const choice = json.choices[0]!;
  return { text: choice.text, tokens: choice.logprobs.tokens.map((t) => Number(t.replace('token_id:', ''))), finishReason: choice.finish_reason };
}

/** Tokens that repeat an earlier token of the output. */
function repeats(tokens: number[]): number {
  return tokens.length - new Set(tokens).size;
}

const PROMPTS = ['Once upon a time', 'The little dog', 'Lily and Ben went to the park. They', 'One day'];

function defineTests(name: string, dir: () => Promise<string>): void {
  describe(`penalties, logit_bias and min_tokens on ${name}`, () => {
    let server: TestServer;
    let sync: TestServer;
    let eos: number;
    beforeAll(async () => {
      server = await startTestServer(await dir(), { asyncScheduling: true, maxNumSeqs: 16 });
      sync = await startTestServer(await dir(), { asyncScheduling: false, maxNumSeqs: 16 });
      eos = server.runtime.model.tokenizer.eosTokenIds[0]!;
    });
    afterAll(async () => {
      await server?.close();
      await sync?.close();
    });

    it('frequency, presence and repetition penalties reduce repeats; a negative frequency penalty adds them', async () => {
      const total = { none: 0, frequency: 0, presence: 0, repetition: 0, negative: 0 };
      for (const prompt of PROMPTS) {
        const body = { prompt, ignore_eos: true, max_tokens: 48 };
        const [none, frequency, presence, repetition, negative] = await Promise.all([
          complete(server, body),
          complete(server, { ...body, frequency_penalty: 2 }),
          complete(server, { ...body, presence_penalty: 2 }),
          complete(server, { ...body, repetition_penalty: 3 }),
          complete(server, { ...body, frequency_penalty: -2 }),
        ]);
        total.none += repeats(none.tokens);
        total.frequency += repeats(frequency.tokens);
        total.presence += repeats(presence.tokens);
        total.repetition += repeats(repetition.tokens);
        total.negative += repeats(negative.tokens);
        // The penalties act from the first repeat on: outputs agree until then.
        expect(frequency.tokens[0]).toBe(none.tokens[0]);
        expect(presence.tokens[0]).toBe(none.tokens[0]);
      }
      expect(total.frequency).toBeLessThan(total.none);
      expect(total.presence).toBeLessThan(total.none);
      expect(total.repetition).toBeLessThan(total.none);
      expect(total.negative).toBeGreaterThan(total.none);
    }, 120_000);

    it('async scheduling (the pending sample counted on the device) gives exactly the synchronous output', async () => {
      const bodies = PROMPTS.flatMap((prompt, i) => [
        { prompt, ignore_eos: true, max_tokens: 32, frequency_penalty: 1.5, presence_penalty: 0.5 },
        { prompt, ignore_eos: true, max_tokens: 32, repetition_penalty: 1.8 },
        { prompt, ignore_eos: true, max_tokens: 32, temperature: 0.9, seed: 100 + i, frequency_penalty: 1, logit_bias: { '5': 3 } },
        { prompt, ignore_eos: true, max_tokens: 32, temperature: 0.9, seed: 200 + i },
      ]);
      const [asyncOut, syncOut] = await Promise.all([Promise.all(bodies.map((b) => complete(server, b))), Promise.all(bodies.map((b) => complete(sync, b)))]);
      expect(asyncOut.map((o) => o.tokens)).toEqual(syncOut.map((o) => o.tokens));
    }, 120_000);

    it('requests without processing are untouched by their batch neighbours', async () => {
      const plain = { prompt: 'Once upon a time', ignore_eos: true, max_tokens: 24 };
      const alone = await complete(server, plain);
      const [batched] = await Promise.all([
        complete(server, plain),
        complete(server, { ...plain, frequency_penalty: 2, logit_bias: { '7': 50 } }),
        complete(server, { ...plain, prompt: 'The dog', response_format: { type: 'json_object' } }),
      ]);
      expect(batched!.tokens).toEqual(alone.tokens);
    }, 120_000);

    it('logit_bias +100 forces a token, -100 bans one', async () => {
      const forced = 11;
      const out = await complete(server, { prompt: 'Once upon a time', temperature: 1, seed: 3, max_tokens: 12, logit_bias: { [forced]: 100 } });
      expect(out.tokens).toEqual(Array(12).fill(forced));
      const free = await complete(server, { prompt: 'Once upon a time', max_tokens: 12, ignore_eos: true });
      const banned = free.tokens[0]!;
      const without = await complete(server, { prompt: 'Once upon a time', max_tokens: 12, ignore_eos: true, logit_bias: { [banned]: -100 } });
      expect(without.tokens).not.toContain(banned);
    }, 60_000);

    it('min_tokens bans EOS and stop_token_ids until reached', async () => {
      // EOS pushed up: it ends the request at once, unless min_tokens holds it off.
      const eager = await complete(server, { prompt: 'Once upon a time', logit_bias: { [eos]: 100 } });
      expect(eager.tokens).toEqual([eos]);
      expect(eager.finishReason).toBe('stop');
      const held = await complete(server, { prompt: 'Once upon a time', logit_bias: { [eos]: 100 }, min_tokens: 5 });
      expect(held.tokens.slice(0, 5)).not.toContain(eos);
      expect(held.tokens).toHaveLength(6);
      expect(held.tokens[5]).toBe(eos);
      expect(held.finishReason).toBe('stop');
      // The same for a stop token id.
      const stopId = 13;
      const stopped = await complete(server, { prompt: 'Once upon a time', logit_bias: { [stopId]: 100 }, stop_token_ids: [stopId], min_tokens: 3 });
      expect(stopped.tokens.slice(0, 3)).not.toContain(stopId);
      expect(stopped.tokens).toEqual([...stopped.tokens.slice(0, 3), stopId]);
      // Identical with synchronous steps.
      expect((await complete(sync, { prompt: 'Once upon a time', logit_bias: { [eos]: 100 }, min_tokens: 5 })).tokens).toEqual(held.tokens);
    }, 60_000);

    it('rejects logit_bias ids outside the vocabulary with a 400 naming logit_bias', async () => {
      const vocab = server.runtime.model.config.vocabSize;
      const response = await fetch(`${server.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: 'x', logit_bias: { [vocab]: 1 } }),
      });
      expect(response.status).toBe(400);
      expect(((await response.json()) as { error: { param: string } }).error.param).toBe('logit_bias');
    });
  });
}

defineTests('tiny-llama3', () => tinyModelDir('tiny-llama3'));
if (HAS_SHARED_MODELS) defineTests('stories260K', async () => join(SHARED_MODELS, 'stories260K'));
