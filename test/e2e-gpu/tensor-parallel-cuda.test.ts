/**
 * Tensor parallelism on CUDA with NCCL (issue 10): greedy tokens at TP=2 equal TP=1 on the same GPUs in
 * bf16, on every reference model, one request at a time and all at once. Skipped, saying why, where two
 * CUDA devices cannot be opened as a group (the device tool's single-GPU machine; CI): it has NOT run yet.
 *
 * Both sides run in bf16, but TP=2 sums two bf16 partial products through NCCL where TP=1 sums inside
 * one GEMM, so logits differ by bf16 rounding. Tokens are compared up to the first step where TP=1's own
 * two best logprobs are within the near-tie band golden-cuda.test.ts uses for bf16 (0.1 for the trained
 * stories260K, 0.3 for random weights); past it, a flip is rounding, not a bug.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDeviceGroup } from '../../src/device/device.ts';
import { readDecoderConfig } from '../../src/model/hf-config.ts';
import { validateTensorParallel } from '../../src/model/tensor-parallel.ts';
import { goldenModels, greedySteps, startTestServer } from '../e2e/harness.ts';
import type { GeneratedStep, GoldenCase, TestServer } from '../e2e/harness.ts';

const SIZE = 2;
const NEAR_TIE_TRAINED = 0.1;
const NEAR_TIE_RANDOM = 0.3;
/** Logprob agreement where the tokens are compared (bf16 rounding of two partial sums). */
const LOGPROB_TOLERANCE = 0.05;

function groupSkipReason(): string | null {
  try {
    openDeviceGroup('cuda', { size: SIZE }).close();
    return null;
  } catch (error) {
    return `cannot open ${SIZE} CUDA devices as a group: ${(error as Error).message}`;
  }
}
const skipReason = groupSkipReason();
/** The reference models whose heads and MLP split in two (the others cannot run at TP=2). */
async function splittableModels() {
  const splittable = [];
  for (const model of await goldenModels()) {
    try {
      validateTensorParallel(await readDecoderConfig(model.dir), SIZE);
      splittable.push(model);
    } catch {
      // not divisible by SIZE: nothing to compare
    }
  }
  return splittable;
}
const models = skipReason === null ? await splittableModels() : [];

const generate = (server: TestServer, golden: GoldenCase): Promise<GeneratedStep[]> => greedySteps(server.url, golden, 32);

/** Steps before TP=1's first near-tie (its own top-2 gap under the band). */
function comparedLength(reference: GeneratedStep[], band: number): number {
  const tie = reference.findIndex((step) => step.top5.length > 1 && step.top5[0]![1] - step.top5[1]![1] < band);
  return tie < 0 ? reference.length : tie;
}

function expectSameGreedy(reference: GeneratedStep[], sharded: GeneratedStep[], band: number, what: string): void {
  const n = comparedLength(reference, band);
  expect(sharded.slice(0, n).map((s) => s.tokenId), `${what}: the first ${n} tokens`).toEqual(reference.slice(0, n).map((s) => s.tokenId));
  for (let i = 0; i < n; i++) {
    expect(Math.abs(sharded[i]!.top5[0]![1] - reference[i]!.top5[0]![1]), `${what}: step ${i} best logprob`).toBeLessThanOrEqual(LOGPROB_TOLERANCE);
  }
}

describe.skipIf(skipReason !== null)(`tensor parallelism on cuda (NCCL), TP=${SIZE} vs TP=1${skipReason ? ` — skipped: ${skipReason}` : ''}`, () => {
  describe.each(models)('$name', (model) => {
    let reference: GeneratedStep[][] = [];
    let server: TestServer | undefined;
    const band = model.exact ? NEAR_TIE_TRAINED : NEAR_TIE_RANDOM;
    beforeAll(async () => {
      const single = await startTestServer(model.dir, { device: 'cuda' });
      reference = [];
      for (const golden of model.cases) reference.push(await generate(single, golden));
      await single.close();
      server = await startTestServer(model.dir, { device: 'cuda', tensorParallelSize: SIZE });
    });
    afterAll(async () => server?.close());

    it('one request at a time, then all at once', async () => {
      for (const [i, golden] of model.cases.entries()) expectSameGreedy(reference[i]!, await generate(server!, golden), band, `case ${i}`);
      const batched = await Promise.all(model.cases.map((golden) => generate(server!, golden)));
      batched.forEach((steps, i) => expectSameGreedy(reference[i]!, steps, band, `case ${i}, batched`));
    });
  });
});

if (skipReason !== null) it.skip(`tensor parallelism on cuda — ${skipReason}`, () => {});
