/**
 * One steady decode workload for a kernel profiler: `batch` greedy requests with `prompt`-token
 * prompts, `tokens` tokens each, on a dummy-weight model — the shape of one serving-suite run
 * (c1: --batch 1 --prompt 512) without HTTP. bench/gpu/kernel-profile.sh runs it under Nsight Compute,
 * which times every kernel of a window of decode steps; this script prints the step count and
 * wall time per step so the profile's kernel sum can be set against it.
 *
 *   node bench/gpu/decode-case.ts --model DIR --batch 1 --prompt 512 --tokens 300 [--enforce-eager]
 */
import { parseArgs } from 'node:util';
import { defaultServeConfig } from '../../src/config.ts';
import { defaultSamplingParams } from '../../src/sampling/params.ts';
import { startRuntime } from '../../src/runtime.ts';
import { syntheticPrompt } from './requests.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    device: { type: 'string', default: 'cuda' },
    batch: { type: 'string', default: '1' },
    prompt: { type: 'string', default: '512' },
    tokens: { type: 'string', default: '300' },
    'enforce-eager': { type: 'boolean', default: false },
  },
});
if (!values.model) throw new Error('--model DIR is required');
const batch = Number(values.batch);
const promptLen = Number(values.prompt);
const maxTokens = Number(values.tokens);

const runtime = await startRuntime(
  { ...defaultServeConfig(), model: values.model, device: values.device, loadFormat: 'dummy', maxModelLen: 4096, enforceEager: values['enforce-eager'] },
  { log: (m) => console.error(m) },
);
const engine = runtime.engine;
const startSteps = engine.numSteps;
const start = performance.now();
await Promise.all(
  Array.from({ length: batch }, async (_, i) => {
    const stream = engine.addRequest({
      requestId: `case-${i}`,
      promptTokenIds: syntheticPrompt(promptLen, 2000 + i),
      params: defaultSamplingParams({ temperature: 0, ignoreEos: true, maxTokens }),
    });
    for await (const _output of stream);
  }),
);
const steps = engine.numSteps - startSteps;
const wallMs = performance.now() - start;
console.log(
  JSON.stringify({ batch, promptLen, maxTokens, steps, wallMsPerStep: wallMs / steps, deviceMsPerStep: engine.deviceTimeMs / Math.max(1, engine.numSteps) }),
);
await runtime.close();
