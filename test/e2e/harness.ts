/**
 * Starts the real stack (model on the CPU backend → engine → Hono server on a free port) for
 * end-to-end tests, with the engine's integrity check after every step.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createApp, type AppOptions } from '../../src/api/app.ts';
import { startServer } from '../../src/api/server.ts';
import { guardOptions } from '../../src/cli/serve.ts';
import { defaultServeConfig } from '../../src/config.ts';
import type { ServeConfig } from '../../src/config.ts';
import { startRuntime } from '../../src/runtime.ts';
import type { Runtime, RuntimeOptions } from '../../src/runtime.ts';
import { HAS_SHARED_MODELS, SHARED_MODELS } from '../helpers/paths.ts';
import { tinyModelDir, TINY_MODEL_NAMES } from '../fixtures/tiny-models.ts';

export interface TestServer {
  url: string;
  runtime: Runtime;
  close(): Promise<void>;
}

/** `appOptions` add to (or override) what the config's flags set, as `updraft serve` builds it (guardOptions). */
export async function startTestServer(
  model: string,
  overrides: Partial<ServeConfig> = {},
  options: RuntimeOptions = {},
  appOptions: AppOptions = {},
): Promise<TestServer> {
  const config: ServeConfig = { ...defaultServeConfig(), model, port: 0, numThreads: 2, ...overrides };
  const runtime = await startRuntime(config, { checkIntegrity: true, ...options });
  const guards = guardOptions(config);
  const server = await startServer(createApp(runtime.service, { ...guards.app, ...appOptions }), { ...guards.server, host: '127.0.0.1', port: 0 });
  return {
    url: server.url,
    runtime,
    close: async () => {
      await server.close();
      await runtime.close();
    },
  };
}

export interface GoldenCase {
  prompt: string;
  prompt_ids: number[];
  output_ids: number[];
  output_text: string;
  /** Per generated step: the five most likely [tokenId, logprob]. */
  top5_logprobs: [number, number][][];
}

export interface GoldenModel {
  name: string;
  dir: string;
  /** A trained model reproduces HF exactly; random-weight models follow the near-tie rule. */
  exact: boolean;
  cases: GoldenCase[];
}

/** Every model with golden outputs available here: the committed tiny models, plus ../shared when present. */
export async function goldenModels(): Promise<GoldenModel[]> {
  const models: GoldenModel[] = [];
  for (const name of TINY_MODEL_NAMES) {
    const golden = JSON.parse(readFileSync(new URL(`../fixtures/golden/${name}.json`, import.meta.url), 'utf-8')) as { cases: GoldenCase[] };
    models.push({ name, dir: await tinyModelDir(name), exact: false, cases: golden.cases });
  }
  if (HAS_SHARED_MODELS) {
    for (const [name, exact] of [['stories260K', true], ['tiny-llama31-random', false]] as const) {
      const dir = join(SHARED_MODELS, name);
      const golden = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf-8')) as { cases: GoldenCase[] };
      models.push({ name, dir, exact, cases: golden.cases });
    }
  }
  return models;
}

/** Gap between the two most likely tokens under which a greedy pick is a coin toss for float rounding. */
export const NEAR_TIE = 1e-3;

/** A completions response's logprobs with `return_tokens_as_token_ids`: each step's token and top five. */
export function stepsFromLogprobs(logprobs: { tokens: string[]; top_logprobs: Record<string, number>[] }): GeneratedStep[] {
  const idOf = (token: string) => Number(token.slice('token_id:'.length));
  return logprobs.tokens.map((token, i) => ({
    tokenId: idOf(token),
    top5: Object.entries(logprobs.top_logprobs[i]!)
      .map(([t, lp]) => [idOf(t), lp] as [number, number])
      .sort((a, b) => b[1] - a[1]),
  }));
}

/** Greedy completion of a golden case's prompt (ignore_eos), with each step's top five logprobs. */
export async function greedySteps(url: string, golden: GoldenCase, maxTokens = golden.output_ids.length): Promise<GeneratedStep[]> {
  const response = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: golden.prompt, max_tokens: maxTokens, temperature: 0, ignore_eos: true, logprobs: 5, return_tokens_as_token_ids: true }),
  });
  const body = (await response.json()) as { choices: { logprobs: { tokens: string[]; top_logprobs: Record<string, number>[] } }[] };
  if (response.status !== 200) throw new Error(`HTTP ${response.status}: ${JSON.stringify(body)}`);
  return stepsFromLogprobs(body.choices[0]!.logprobs);
}

export interface GeneratedStep {
  tokenId: number;
  /** The five most likely [tokenId, logprob] at this step. */
  top5: [number, number][];
}

/**
 * The comparison the leaders use for random-weight models (../shared/models/README.md): tokens equal
 * until the first step where either side's two best logprobs are within NEAR_TIE; from then on each
 * side's token must be among the other's top five. Returns null when the outputs agree, else why not.
 */
export function compareWithGolden(golden: GoldenCase, ours: GeneratedStep[], exact: boolean): string | null {
  if (ours.length !== golden.output_ids.length) return `generated ${ours.length} tokens, golden has ${golden.output_ids.length}`;
  let tied = false;
  for (let step = 0; step < ours.length; step++) {
    const expected = golden.output_ids[step]!;
    const got = ours[step]!;
    const goldenTop = golden.top5_logprobs[step]!;
    if (!tied && got.tokenId === expected) continue;
    if (exact) return `step ${step}: token ${got.tokenId}, golden ${expected}`;
    if (!tied) {
      const gap = (top: [number, number][]) => top[0]![1] - top[1]![1];
      if (gap(goldenTop) > NEAR_TIE && gap(got.top5) > NEAR_TIE) {
        return `step ${step}: token ${got.tokenId}, golden ${expected}, and neither side is near a tie (gaps ${gap(goldenTop)}, ${gap(got.top5)})`;
      }
      tied = true;
    }
    if (!goldenTop.some(([id]) => id === got.tokenId)) return `step ${step} (after a near-tie): our token ${got.tokenId} is not in the golden top-5`;
    if (!got.top5.some(([id]) => id === expected)) return `step ${step} (after a near-tie): golden token ${expected} is not in our top-5`;
  }
  return null;
}

/** float32 on an accelerator against HF's float32 goldens: best logprobs this close (the CPU measures ≤ 1e-5). */
export const FLOAT32_LOGPROB_TOLERANCE = 1e-4;

/**
 * A backend computing in float32 (`--dtype float32` on a GPU or ascend-sim) against the golden outputs,
 * over the first `tokens` tokens of every case of the model: compareWithGolden's rule (exact tokens on
 * the trained model), and the best logprob within FLOAT32_LOGPROB_TOLERANCE on every step before the
 * first differing token. Returns the failures (empty when all agree).
 */
export async function float32GoldenFailures(server: TestServer, model: GoldenModel, tokens: number): Promise<string[]> {
  const failures: string[] = [];
  for (const golden of model.cases) {
    const steps = await greedySteps(server.url, golden, tokens);
    const head = { ...golden, output_ids: golden.output_ids.slice(0, tokens), top5_logprobs: golden.top5_logprobs.slice(0, tokens) };
    const what = `${model.name} ${JSON.stringify(golden.prompt)}`;
    const mismatch = compareWithGolden(head, steps, model.exact);
    if (mismatch !== null) failures.push(`${what}: ${mismatch}`);
    for (let step = 0; step < steps.length && steps[step]!.tokenId === head.output_ids[step]; step++) {
      const error = Math.abs(steps[step]!.top5[0]![1] - head.top5_logprobs[step]![0]![1]);
      if (error > FLOAT32_LOGPROB_TOLERANCE) {
        failures.push(`${what}: step ${step} best logprob off by ${error.toExponential(2)}`);
        break;
      }
    }
  }
  return failures;
}
