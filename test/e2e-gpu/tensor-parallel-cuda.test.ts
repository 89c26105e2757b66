/**
 * Tensor parallelism on CUDA with NCCL (issue 10): greedy output at TP=2 against TP=1 on the same GPUs,
 * on every reference model whose heads and MLP split in two, one request at a time and all at once.
 * Skipped, saying why, where two CUDA devices cannot be opened as a group (single-GPU machines; CI).
 *
 * Two checks, because bf16 alone cannot tell a sharding bug from rounding:
 *  - float32 (`--dtype float32` on cuda): TP=2 differs from TP=1 only in the order of its sums (two
 *    partial products all-reduced instead of one GEMM), so every token must match and every top-5
 *    logprob agree within F32_LOGPROB_TOLERANCE — the check that the shards are right.
 *  - bf16 (the GPU default): TP=2 rounds each row-parallel output three times (the two partials, then
 *    their sum) where TP=1 rounds it once, so it drifts further from the exact result. Tokens must match
 *    TP=1's up to TP=1's first near-tie (golden-cuda.test.ts's bands), and, measured against the float32
 *    run on the steps where all three agree, TP=2's mean best-logprob error may be at most BF16_ERROR_RATIO
 *    (those three roundings to TP=1's one) times TP=1's, or BF16_ERROR_FLOOR where TP=1's is tiny. The
 *    first GPU run showed why not a fixed bound between the two bf16 runs: single steps part by up to
 *    0.145 on the trained model while the tokens all agree (bench/NOTES.md, issue 10 on two GPUs).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { openDeviceGroup } from '../../src/device/device.ts';
import { readDecoderConfig } from '../../src/model/hf-config.ts';
import { validateTensorParallel } from '../../src/model/tensor-parallel.ts';
import type { ServeConfig } from '../../src/config.ts';
import { goldenModels, greedySteps, startTestServer } from '../e2e/harness.ts';
import type { GeneratedStep, GoldenModel } from '../e2e/harness.ts';

const SIZE = 2;
const STEPS = 32;
/** float32: summation order only (the CPU backend's TP test measures ≤ 1e-5). */
const F32_LOGPROB_TOLERANCE = 1e-3;
/** float32: a top-2 gap this small could flip on summation order alone. */
const F32_NEAR_TIE = 2e-3;
const BF16_NEAR_TIE_TRAINED = 0.1;
const BF16_NEAR_TIE_RANDOM = 0.3;
const BF16_ERROR_RATIO = 3;
const BF16_ERROR_FLOOR = 0.01;

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
async function splittableModels(): Promise<GoldenModel[]> {
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

/** Every case of the model, one at a time, then all at once, on a server started with `overrides`. */
async function runCases(model: GoldenModel, overrides: Partial<ServeConfig>): Promise<{ single: GeneratedStep[][]; batched: GeneratedStep[][] }> {
  const server = await startTestServer(model.dir, { device: 'cuda', ...overrides });
  try {
    const single = [];
    for (const golden of model.cases) single.push(await greedySteps(server.url, golden, STEPS));
    const batched = await Promise.all(model.cases.map((golden) => greedySteps(server.url, golden, STEPS)));
    expect(server.runtime.engine.scheduler.kv.usage()).toBe(0);
    return { single, batched };
  } finally {
    await server.close();
  }
}

/** Steps before the reference's first top-2 gap under `band` (past it a flip is rounding, not a bug). */
function comparedLength(reference: GeneratedStep[], band: number): number {
  const tie = reference.findIndex((step) => step.top5.length > 1 && step.top5[0]![1] - step.top5[1]![1] < band);
  return tie < 0 ? reference.length : tie;
}

/** Steps on which two runs chose the same tokens so far. */
function agreeingLength(a: GeneratedStep[], b: GeneratedStep[]): number {
  const differ = a.findIndex((step, i) => step.tokenId !== b[i]?.tokenId);
  return differ < 0 ? a.length : differ;
}

/** Tokens equal up to the reference's first near-tie under `band`; returns how many steps were compared. */
function expectSameTokens(reference: GeneratedStep[], sharded: GeneratedStep[], band: number, what: string): number {
  const n = comparedLength(reference, band);
  expect(sharded.slice(0, n).map((s) => s.tokenId), `${what}: the first ${n} tokens`).toEqual(reference.slice(0, n).map((s) => s.tokenId));
  return n;
}

describe.skipIf(skipReason !== null)(`tensor parallelism on cuda (NCCL), TP=${SIZE} vs TP=1${skipReason ? ` — skipped: ${skipReason}` : ''}`, () => {
  describe.each(models)('$name', (model) => {
    type Runs = Awaited<ReturnType<typeof runCases>>;
    let f32: { tp1: Runs; tp2: Runs };
    let bf16: { tp1: Runs; tp2: Runs };
    beforeAll(async () => {
      f32 = { tp1: await runCases(model, { dtype: 'float32' }), tp2: await runCases(model, { dtype: 'float32', tensorParallelSize: SIZE }) };
      bf16 = { tp1: await runCases(model, { dtype: 'bfloat16' }), tp2: await runCases(model, { dtype: 'bfloat16', tensorParallelSize: SIZE }) };
    });

    it('float32: every token equal, every top-5 logprob within 1e-3, one at a time and all at once', () => {
      for (const [runs, how] of [[f32.tp2.single, 'one at a time'], [f32.tp2.batched, 'all at once']] as const) {
        runs.forEach((steps, i) => {
          const reference = f32.tp1.single[i]!;
          const n = expectSameTokens(reference, steps, F32_NEAR_TIE, `case ${i}, ${how}`);
          // Every top-5 entry both sides list (the chosen token among them: the tokens are equal).
          for (let s = 0; s < n; s++) {
            const want = new Map(reference[s]!.top5);
            for (const [token, logprob] of steps[s]!.top5) {
              if (want.has(token)) expect(Math.abs(logprob - want.get(token)!), `case ${i}, ${how}: step ${s} token ${token}`).toBeLessThanOrEqual(F32_LOGPROB_TOLERANCE);
            }
          }
        });
      }
      // Not vacuous: near-ties cut few steps in float32.
      const compared = f32.tp1.single.reduce((sum, steps) => sum + comparedLength(steps, F32_NEAR_TIE), 0);
      expect(compared).toBeGreaterThanOrEqual(model.cases.length * STEPS * 0.75);
    });

    it("bf16: tokens equal up to TP=1's first near-tie; mean error against float32 at most 3x TP=1's", () => {
      const band = model.exact ? BF16_NEAR_TIE_TRAINED : BF16_NEAR_TIE_RANDOM;
      for (const [runs, how] of [[bf16.tp2.single, 'one at a time'], [bf16.tp2.batched, 'all at once']] as const) {
        runs.forEach((steps, i) => expectSameTokens(bf16.tp1.single[i]!, steps, band, `case ${i}, ${how}`));
      }
      // Distance to the exact (float32, TP=1) result, on the steps where all three runs chose the same tokens.
      let tp1Error = 0;
      let tp2Error = 0;
      let largestGap = 0;
      let steps = 0;
      f32.tp1.single.forEach((exact, i) => {
        const one = bf16.tp1.single[i]!;
        const two = bf16.tp2.single[i]!;
        const n = Math.min(agreeingLength(exact, one), agreeingLength(exact, two));
        for (let s = 0; s < n; s++) {
          const truth = exact[s]!.top5[0]![1];
          tp1Error += Math.abs(one[s]!.top5[0]![1] - truth);
          tp2Error += Math.abs(two[s]!.top5[0]![1] - truth);
          largestGap = Math.max(largestGap, Math.abs(two[s]!.top5[0]![1] - one[s]!.top5[0]![1]));
        }
        steps += n;
      });
      expect(steps, 'steps where bf16 TP=1, bf16 TP=2 and float32 agree').toBeGreaterThanOrEqual(model.cases.length * 4);
      const meanTp1 = tp1Error / steps;
      const meanTp2 = tp2Error / steps;
      console.log(`${model.name} bf16 against float32 over ${steps} steps: mean best-logprob error TP=1 ${meanTp1.toFixed(4)}, TP=2 ${meanTp2.toFixed(4)}; largest TP=2 - TP=1 gap ${largestGap.toFixed(4)}`);
      expect(meanTp2, `mean error of TP=2 (TP=1: ${meanTp1.toFixed(4)})`).toBeLessThanOrEqual(Math.max(BF16_ERROR_FLOOR, BF16_ERROR_RATIO * meanTp1));
    });
  });
});

if (skipReason !== null) it.skip(`tensor parallelism on cuda — ${skipReason}`, () => {});
