/**
 * End to end on ascend-sim: the golden models (the committed tiny models, and stories260K where
 * ../shared has it) decoded greedily through the HTTP API with every op an AscendC kernel run through the
 * shim (bf16 weights and activations, 128-token KV blocks, decode steps replayed from captured graphs).
 * As the CUDA golden check (test/e2e-gpu/golden-cuda.test.ts): the first tokens of each case equal HF
 * transformers' float32 outputs up to the first near-tie of the golden logprobs (bf16 rounding moves
 * logits by a few hundredths, more for random-weight models).
 *
 * CI time: the shim runs every launch in three block orders, so this compares COMPARED_TOKENS = 16 tokens
 * per case (the CUDA check compares 32) and runs the batched pass on 3 cases.
 *
 * Then the same models with `--dtype float32` (f32 weights and activations through the AscendC
 * kernels): HF's float32 goldens reproduced as the CPU backend does — exact tokens on the trained
 * model, best logprobs within 1e-4 — which checks the kernels' arithmetic far more tightly than bf16 can.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeBackends } from '../../src/device/device.ts';
import { float32GoldenFailures, goldenModels, startTestServer } from '../e2e/harness.ts';
import type { GoldenCase, TestServer } from '../e2e/harness.ts';

const sim = probeBackends().find((b) => b.name === 'ascend-sim');
const skipReason = sim?.available ? null : `ascend-sim backend unavailable: ${sim?.reason ?? 'not known to this build'}`;

const COMPARED_TOKENS = 16;
const BF16_NEAR_TIE_TRAINED = 0.1;
const BF16_NEAR_TIE_RANDOM = 0.3;

function comparedLength(golden: GoldenCase, trained: boolean): number {
  const band = trained ? BF16_NEAR_TIE_TRAINED : BF16_NEAR_TIE_RANDOM;
  for (let step = 0; step < COMPARED_TOKENS; step++) {
    const top = golden.top5_logprobs[step]!;
    if (top[0]![1] - top[1]![1] < band) return step;
  }
  return COMPARED_TOKENS;
}

async function greedyIds(server: TestServer, golden: GoldenCase): Promise<number[]> {
  const response = await fetch(`${server.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: golden.prompt, max_tokens: COMPARED_TOKENS, temperature: 0, ignore_eos: true, logprobs: 0, return_tokens_as_token_ids: true }),
  });
  const body = (await response.json()) as { choices: { logprobs: { tokens: string[] } }[] };
  expect(response.status, JSON.stringify(body)).toBe(200);
  return body.choices[0]!.logprobs.tokens.map((t) => Number(t.slice('token_id:'.length)));
}

const models = skipReason === null ? await goldenModels() : [];

describe.skipIf(skipReason !== null)(`golden outputs on ascend-sim (bf16)${skipReason ? ` — skipped: ${skipReason}` : ''}`, () => {
  describe.each(models)('$name', (model) => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer(model.dir, { device: 'ascend-sim' });
    }, 120_000);
    afterAll(async () => server?.close());

    const check = (golden: GoldenCase, ids: number[]) => {
      const n = comparedLength(golden, model.exact);
      expect(ids.slice(0, n), `${model.name} ${JSON.stringify(golden.prompt)}: first ${n} tokens`).toEqual(golden.output_ids.slice(0, n));
    };

    it('runs on the Ascend defaults (bf16, 128-token KV blocks)', () => {
      expect(server.runtime.model.deviceInfo.preferredDtype).toBe('bf16');
      expect(server.runtime.model.blockSize).toBe(128);
    });

    it('one request at a time', async () => {
      for (const golden of model.cases) check(golden, await greedyIds(server, golden));
      if (model.exact) expect(model.cases.reduce((sum, g) => sum + comparedLength(g, true), 0)).toBeGreaterThanOrEqual(model.cases.length * 8);
    }, 300_000);

    it('three at once (batched decode steps)', async () => {
      const cases = model.cases.slice(0, 3);
      const results = await Promise.all(cases.map((golden) => greedyIds(server, golden)));
      results.forEach((ids, i) => check(cases[i]!, ids));
      expect(server.runtime.engine.scheduler.kv.usage()).toBe(0);
    }, 300_000);
  });
});

describe.skipIf(skipReason !== null)(`golden outputs on ascend-sim in float32 (--dtype float32)${skipReason ? ` — skipped: ${skipReason}` : ''}`, () => {
  it.each(models)('$name: every case as the CPU backend reproduces it', async (model) => {
    const server = await startTestServer(model.dir, { device: 'ascend-sim', dtype: 'float32' });
    try {
      expect(server.runtime.model.kvCacheDtype, 'activations (and so the cache) in f32').toBe('f32');
      expect(await float32GoldenFailures(server, model, COMPARED_TOKENS)).toEqual([]);
    } finally {
      await server.close();
    }
  }, 300_000);
});

if (skipReason !== null) it.skip(`ascend-sim golden checks — ${skipReason}`, () => {});
