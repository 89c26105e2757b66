/**
 * Tensor parallelism on the CPU backend, every rank in this process (one thread per rank, the host
 * communicator): greedy outputs at TP=2 and TP=4 are the same tokens as TP=1 on every reference model
 * (the committed tiny models and ../shared's), one request at a time and all at once, and the
 * logprobs agree within LOGPROB_TOLERANCE (the ranks sum partial products in another order than one
 * matmul does, so logits differ by float rounding, never by more).
 * Sizes a model's heads or MLP do not allow are skipped; KV heads fewer than the ranks are replicated.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateTensorParallel } from '../../src/model/tensor-parallel.ts';
import { readDecoderConfig } from '../../src/model/hf-config.ts';
import { compareWithGolden, goldenModels, greedySteps, startTestServer } from './harness.ts';
import type { GeneratedStep, GoldenCase, TestServer } from './harness.ts';

/** Largest difference allowed between a logprob at TP=N and at TP=1. */
const LOGPROB_TOLERANCE = 1e-4;
const SIZES = [2, 4];

const models = await goldenModels();

const generate = (server: TestServer, golden: GoldenCase): Promise<GeneratedStep[]> => greedySteps(server.url, golden);

/** Same tokens; the same top-5 ids with logprobs within the tolerance. Returns the largest logprob difference. */
function expectSameGreedy(reference: GeneratedStep[], sharded: GeneratedStep[], what: string): number {
  expect(sharded.map((s) => s.tokenId), `${what}: tokens`).toEqual(reference.map((s) => s.tokenId));
  let largest = 0;
  reference.forEach((step, i) => {
    const other = new Map(sharded[i]!.top5);
    for (const [id, logprob] of step.top5) {
      const theirs = other.get(id);
      // A top-5 id may drop out only at a near-tie for fifth place.
      if (theirs === undefined) continue;
      largest = Math.max(largest, Math.abs(theirs - logprob));
    }
    expect(Math.abs(sharded[i]!.top5[0]![1] - step.top5[0]![1]), `${what}: step ${i} best logprob`).toBeLessThanOrEqual(LOGPROB_TOLERANCE);
  });
  expect(largest, `${what}: largest top-5 logprob difference`).toBeLessThanOrEqual(LOGPROB_TOLERANCE);
  return largest;
}

describe.each(models)('tensor parallelism on the cpu backend: $name', (model) => {
  let single: TestServer;
  let reference: GeneratedStep[][] = [];
  let sizes: number[] = [];
  beforeAll(async () => {
    const cfg = await readDecoderConfig(model.dir);
    sizes = SIZES.filter((size) => {
      try {
        validateTensorParallel(cfg, size);
        return true;
      } catch {
        return false;
      }
    });
    single = await startTestServer(model.dir, { numThreads: 1 });
    reference = [];
    for (const golden of model.cases) reference.push(await generate(single, golden));
    await single.close();
  });
  afterAll(async () => single?.close());

  for (const size of SIZES) {
    describe(`TP=${size}`, () => {
      let server: TestServer | undefined;
      beforeAll(async () => {
        if (sizes.includes(size)) server = await startTestServer(model.dir, { numThreads: 1, tensorParallelSize: size });
      });
      afterAll(async () => server?.close());

      it('one request at a time: the TP=1 tokens (and the golden outputs)', async (context) => {
        if (!server) return context.skip(`${model.name}'s heads or MLP do not split ${size} ways`);
        expect(server.runtime.model.device.ranks).toBe(size);
        let largest = 0;
        for (const [i, golden] of model.cases.entries()) {
          const steps = await generate(server, golden);
          largest = Math.max(largest, expectSameGreedy(reference[i]!, steps, `${model.name} TP=${size} case ${i}`));
          expect(compareWithGolden(golden, steps, model.exact)).toBeNull();
        }
        console.log(`${model.name} TP=${size}: largest top-5 logprob difference from TP=1: ${largest.toExponential(2)}`);
        expect(server.runtime.engine.scheduler.kv.usage()).toBe(0);
      });

      it('all cases at once (continuous batching over the ranks)', async (context) => {
        if (!server) return context.skip(`${model.name}'s heads or MLP do not split ${size} ways`);
        const results = await Promise.all(model.cases.map((golden) => generate(server!, golden)));
        results.forEach((steps, i) => expectSameGreedy(reference[i]!, steps, `${model.name} TP=${size} batched case ${i}`));
      });
    });
  }
});

describe('tensor parallelism: a size the model cannot split', () => {
  it('fails at start with the reason', async () => {
    const tiny = models.find((m) => m.name === 'tiny-llama')!; // 4 heads
    await expect(startTestServer(tiny.dir, { numThreads: 1, tensorParallelSize: 3 })).rejects.toThrow(
      /--tensor-parallel-size 3 does not divide the model's 4 attention heads/,
    );
  });
});
