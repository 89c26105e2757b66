/**
 * What the GPU benchmarks feed the runtime: synthetic prompts (token ids from a seeded xorshift, the
 * dummy models have no vocabulary to respect) and greedy requests timed token by token.
 */
import { defaultSamplingParams } from '../../src/sampling/params.ts';
import type { Runtime } from '../../src/runtime.ts';

/** `length` token ids in [1000, 101000), the same for the same seed. */
export function syntheticPrompt(length: number, seed: number): number[] {
  let x = seed | 1;
  return Array.from({ length }, () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return 1000 + ((x >>> 0) % 100_000);
  });
}

/** Generates greedily and returns [time to first token, time of each later token] in ms. */
export async function timeRequest(runtime: Runtime, promptIds: number[], maxTokens: number): Promise<{ ttftMs: number; tokenMs: number[] }> {
  const start = performance.now();
  let last = start;
  let ttftMs = 0;
  const tokenMs: number[] = [];
  const stream = runtime.engine.addRequest({
    requestId: `bench-${Math.random()}`,
    promptTokenIds: promptIds,
    params: defaultSamplingParams({ temperature: 0, ignoreEos: true, maxTokens }),
  });
  for await (const output of stream) {
    const now = performance.now();
    if (output.tokenIds.length === 0) continue;
    if (ttftMs === 0) ttftMs = now - start;
    else for (let i = 0; i < output.tokenIds.length; i++) tokenMs.push((now - last) / output.tokenIds.length);
    last = now;
  }
  return { ttftMs, tokenMs };
}
