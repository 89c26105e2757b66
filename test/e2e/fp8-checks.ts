/**
 * The FP8-against-auto checks of `--kv-cache-dtype fp8`, shared by the CPU e2e test
 * (test/e2e/fp8-kv-cache.test.ts, which explains the bounds) and the CUDA one
 * (test/e2e-gpu/fp8-kv-cache-cuda.test.ts): one server with the auto cache, one with FP8, the golden
 * prompts of a model through both.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ServeConfig } from '../../src/config.ts';
import { greedySteps, startTestServer, stepsFromLogprobs } from './harness.ts';
import type { GeneratedStep, GoldenCase, GoldenModel, TestServer } from './harness.ts';

/** The first generated token's best logprob, FP8 vs auto: 16x bf16's worst (0.029 there), 0.39 seen. */
const FIRST_TOKEN_LOGPROB_BOUND = 0.5;
/**
 * A top-2 gap (nats) under which the greedy token may flip: each of the two logprobs drifts by up to
 * ~0.95 (the worst seen at any position), so together they close gaps up to ~1.9. Flips were seen at
 * gaps up to 1.26.
 */
const FP8_NEAR_TIE = 2;
/** Average |best logprob FP8 - auto| over a model's teacher-forced positions: 0.06-0.16 seen. */
const MEAN_DRIFT_BOUND = 0.25;
/** Teacher forcing every 4th position of the 64-token outputs: positions up to prompt + 60, five 16-token KV blocks. */
const FORCED_STRIDE = 4;

const gap = (step: GeneratedStep) => step.top5[0]![1] - step.top5[1]![1];
const best = (step: GeneratedStep) => step.top5[0]![1];

/** The greedy next token after `promptIds`, with its top five. */
async function nextStep(server: TestServer, promptIds: number[]): Promise<GeneratedStep> {
  const response = await fetch(`${server.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: promptIds, max_tokens: 1, temperature: 0, ignore_eos: true, logprobs: 5, return_tokens_as_token_ids: true }),
  });
  const body = (await response.json()) as { choices: { logprobs: { tokens: string[]; top_logprobs: Record<string, number>[] } }[] };
  expect(response.status, JSON.stringify(body)).toBe(200);
  return stepsFromLogprobs(body.choices[0]!.logprobs)[0]!;
}

/** Registers the checks for one model; `overrides` picks the device (both servers get it). */
export function defineFp8Checks(model: GoldenModel, overrides: Partial<ServeConfig> = {}): void {
  let auto: TestServer;
  let fp8: TestServer;
  /** The auto cache's greedy output for each golden case: the reference. */
  let reference: GeneratedStep[][];
  beforeAll(async () => {
    [auto, fp8] = await Promise.all([startTestServer(model.dir, overrides), startTestServer(model.dir, { ...overrides, kvCacheDtype: 'fp8' })]);
    expect(fp8.runtime.model.kvCacheDtype).toBe('f8e4m3');
    reference = await Promise.all(model.cases.map((golden) => greedySteps(auto.url, golden)));
  }, 120_000);
  afterAll(async () => {
    await auto?.close();
    await fp8?.close();
  });

  it(`first token: logprob within ${FIRST_TOKEN_LOGPROB_BOUND} nats of auto's, the same token unless auto's top two are within ${2 * FIRST_TOKEN_LOGPROB_BOUND}`, async () => {
    const firsts = await Promise.all(model.cases.map((golden) => nextStep(fp8, golden.prompt_ids)));
    firsts.forEach((first, i) => {
      const ref = reference[i]![0]!;
      const what = `${model.name} ${JSON.stringify(model.cases[i]!.prompt)}`;
      expect(Math.abs(best(first) - best(ref)), `${what}: best logprob`).toBeLessThanOrEqual(FIRST_TOKEN_LOGPROB_BOUND);
      // Each of the two best logprobs moves by at most the bound: only a gap under twice it can close.
      if (gap(ref) >= 2 * FIRST_TOKEN_LOGPROB_BOUND) expect(first.tokenId, `${what}: first token (gap ${gap(ref)})`).toBe(ref.tokenId);
    });
  });

  it(`greedy output: the same tokens as auto's up to auto's first top-two gap under ${FP8_NEAR_TIE} nats`, async () => {
    const outputs = await Promise.all(model.cases.map((golden: GoldenCase) => greedySteps(fp8.url, golden)));
    outputs.forEach((output, i) => {
      const ref = reference[i]!;
      const compared = ref.findIndex((step) => gap(step) < FP8_NEAR_TIE);
      const n = compared < 0 ? ref.length : compared;
      expect(output.slice(0, n).map((s) => s.tokenId), `${model.name} ${JSON.stringify(model.cases[i]!.prompt)}: first ${n} tokens`).toEqual(
        ref.slice(0, n).map((s) => s.tokenId),
      );
    });
  });

  it(`along auto's output (every ${FORCED_STRIDE}th prefix): auto's token wherever its top two are ${FP8_NEAR_TIE}+ nats apart, mean drift under ${MEAN_DRIFT_BOUND}`, async () => {
    let drift = 0;
    let positions = 0;
    for (const [i, golden] of model.cases.entries()) {
      const ref = reference[i]!;
      const ks = Array.from({ length: Math.ceil(ref.length / FORCED_STRIDE) }, (_, j) => j * FORCED_STRIDE);
      const steps = await Promise.all(ks.map((k) => nextStep(fp8, [...golden.prompt_ids, ...ref.slice(0, k).map((s) => s.tokenId)])));
      ks.forEach((k, j) => {
        const [ours, theirs] = [steps[j]!, ref[k]!];
        if (gap(theirs) >= FP8_NEAR_TIE) expect(ours.tokenId, `${model.name} ${JSON.stringify(golden.prompt)} after ${k} tokens (gap ${gap(theirs)})`).toBe(theirs.tokenId);
        drift += Math.abs(best(ours) - best(theirs));
        positions++;
      });
    }
    expect(drift / positions, `${model.name}: mean |best logprob fp8 - auto| over ${positions} positions`).toBeLessThanOrEqual(MEAN_DRIFT_BOUND);
  });
}

