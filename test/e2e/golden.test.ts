/**
 * Greedy decoding through the HTTP API reproduces Hugging Face transformers' outputs (golden files
 * computed by scripts/make-golden.py) — one request at a time, all at once (continuous batching must
 * not change results), and with a KV cache so small that requests get preempted and recomputed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareWithGolden, goldenModels, startTestServer, stepsFromLogprobs } from './harness.ts';
import type { GeneratedStep, GoldenCase, GoldenModel, TestServer } from './harness.ts';

const models = await goldenModels();

interface CompletionBody {
  choices: { text: string; finish_reason: string; logprobs: { tokens: string[]; top_logprobs: Record<string, number>[] } }[];
  usage: { prompt_tokens: number; completion_tokens: number };
}

async function generate(server: TestServer, golden: GoldenCase): Promise<{ steps: GeneratedStep[]; body: CompletionBody }> {
  const response = await fetch(`${server.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      prompt: golden.prompt,
      max_tokens: golden.output_ids.length,
      temperature: 0,
      ignore_eos: true,
      logprobs: 5,
      return_tokens_as_token_ids: true,
    }),
  });
  const body = (await response.json()) as CompletionBody;
  expect(response.status, JSON.stringify(body)).toBe(200);
  expect(body.usage.prompt_tokens).toBe(golden.prompt_ids.length);
  const steps = stepsFromLogprobs(body.choices[0]!.logprobs);
  return { steps, body };
}

function expectGolden(model: GoldenModel, golden: GoldenCase, steps: GeneratedStep[]): void {
  expect(compareWithGolden(golden, steps, model.exact), `${model.name} ${JSON.stringify(golden.prompt)}`).toBeNull();
}

describe.each(models)('golden outputs of $name', (model) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(model.dir);
  });
  afterAll(async () => server?.close());

  it('one request at a time', async () => {
    for (const golden of model.cases) {
      const { steps, body } = await generate(server, golden);
      expectGolden(model, golden, steps);
      expect(body.choices[0]!.finish_reason).toBe('length');
    }
    expect(server.runtime.engine.scheduler.kv.usage()).toBe(0);
  });

  it('all cases at once (continuous batching is batch-invariant)', async () => {
    const results = await Promise.all(model.cases.map((golden) => generate(server, golden)));
    results.forEach(({ steps }, i) => expectGolden(model, model.cases[i]!, steps));
    expect(server.runtime.engine.scheduler.kv.usage()).toBe(0);
  });
});

describe.each(models)('golden outputs of $name under preemption', (model) => {
  let server: TestServer;
  beforeAll(async () => {
    // Room for about two full requests (prompt ≤ 15 + 64 generated tokens ≈ 5 blocks of 16) at a time,
    // while eight arrive at once: with vLLM's admission policy (no decode headroom) the scheduler must
    // preempt and recompute.
    const blocks = 11;
    const probe = await startTestServer(model.dir, { maxModelLen: 128 });
    const bytesPerBlock = probe.runtime.model.memory.state / (probe.runtime.model.numKvBlocks);
    await probe.close();
    server = await startTestServer(model.dir, { maxModelLen: 128, kvCacheMemoryBytes: Math.ceil(bytesPerBlock * blocks), scheduleConservativeness: 0 });
  });
  afterAll(async () => server?.close());

  it('reproduces the golden outputs although requests are preempted', async () => {
    const before = server.runtime.engine.numPreemptions;
    const results = await Promise.all(model.cases.map((golden) => generate(server, golden)));
    results.forEach(({ steps }, i) => expectGolden(model, model.cases[i]!, steps));
    expect(server.runtime.engine.numPreemptions - before).toBeGreaterThan(0);
    expect(server.runtime.engine.scheduler.kv.usage()).toBe(0);
  });
});

describe.each(models.filter((m) => m.name === 'tiny-llama3' || m.name === 'stories260K'))('golden outputs of $name with graph-bucket padding', (model) => {
  // Decode steps padded to graph buckets (as on CUDA) must give the same tokens: padding rows touch nothing.
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(model.dir, {}, { runner: { useGraphs: true } });
  });
  afterAll(async () => server?.close());

  it.each([7, 3])('%i cases at once (padded to the next bucket)', async (count) => {
    const cases = model.cases.slice(0, count);
    const results = await Promise.all(cases.map((golden) => generate(server, golden)));
    results.forEach(({ steps }, i) => expectGolden(model, cases[i]!, steps));
    expect(server.runtime.engine.scheduler.kv.usage()).toBe(0);
  });
});

describe.each(models.filter((m) => m.name === 'tiny-qwen2' || m.name === 'stories260K'))('golden outputs of $name, one step at a time (no async scheduling)', (model) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(model.dir, { asyncScheduling: false });
  });
  afterAll(async () => server?.close());

  it('all cases at once', async () => {
    const results = await Promise.all(model.cases.map((golden) => generate(server, golden)));
    results.forEach(({ steps }, i) => expectGolden(model, model.cases[i]!, steps));
    expect(server.runtime.engine.scheduler.config.maxStepsInFlight).toBe(1);
  });
});
