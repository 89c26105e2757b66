/**
 * `--kv-cache-dtype fp8` end to end on the CUDA backend: every golden model served with an FP8 E4M3
 * cache against the same model with the auto (bf16) cache, both on cuda, with the CPU test's bounds
 * (test/e2e/fp8-checks.ts; why they are what they are: test/e2e/fp8-kv-cache.test.ts). The kernels
 * themselves are held to the CPU reference by test/device's conformance cases. Skipped, with the
 * reason, where no CUDA device can be opened.
 */
import { describe, it } from 'vitest';
import { probeBackends } from '../../src/device/device.ts';
import { defineFp8Checks } from '../e2e/fp8-checks.ts';
import { goldenModels } from '../e2e/harness.ts';

const cuda = probeBackends().find((b) => b.name === 'cuda');
const skipReason = cuda?.available ? null : `cuda backend unavailable: ${cuda?.reason ?? 'not known to this build'}`;
const models = skipReason === null ? await goldenModels() : [];

describe.skipIf(skipReason !== null)(`--kv-cache-dtype fp8 against auto on cuda${skipReason ? ` — skipped: ${skipReason}` : ''}`, () => {
  describe.each(models)('$name', (model) => defineFp8Checks(model, { device: 'cuda' }));
});

if (skipReason !== null) it.skip(`cuda FP8 KV checks — ${skipReason}`, () => {});
