/**
 * Op conformance: every op of kernels/ops.h on every available backend, against the naive
 * TypeScript reference (reference.ts) on fresh seeded random inputs, with NaN-poisoned outputs.
 * A backend joins by being compiled in and openable; unsupported dtype combinations are skipped
 * per test (supportsOp), everything else must match.
 */
import { afterAll, beforeAll } from 'vitest';
import { loadNativeAddon, type NativeDevice } from '../../src/device/binding.ts';
import { describeEachBackend } from './backends.ts';
import { defineAllReduceTests } from './conformance/all-reduce.ts';
import { defineAttentionTests } from './conformance/attention.ts';
import { defineElementwiseTests } from './conformance/elementwise.ts';
import { defineErrorTests } from './conformance/errors.ts';
import { defineFillRandomTests } from './conformance/fill-random.ts';
import { defineMatmulTests } from './conformance/matmul.ts';
import { defineRmsNormTests } from './conformance/rmsnorm.ts';
import { defineRopeKvWriteTests } from './conformance/rope-kv-write.ts';
import { defineProcessLogitsTests } from './conformance/process-logits.ts';
import { defineSampleTests } from './conformance/sample.ts';
import { defineSelectTokensTests } from './conformance/select-tokens.ts';

describeEachBackend('op conformance', (backend) => {
  let device: NativeDevice | undefined;
  beforeAll(() => {
    device = loadNativeAddon().openDevice(backend);
  });
  afterAll(() => device?.close());
  const getDevice = (): NativeDevice => {
    if (!device) throw new Error('device not open');
    return device;
  };

  defineElementwiseTests(getDevice); // embedding, gather_rows, silu_mul
  defineMatmulTests(getDevice);
  defineRmsNormTests(getDevice);
  defineRopeKvWriteTests(getDevice);
  defineAttentionTests(getDevice);
  defineSampleTests(getDevice);
  defineFillRandomTests(getDevice);
  defineSelectTokensTests(getDevice);
  defineProcessLogitsTests(getDevice);
  defineAllReduceTests(backend, getDevice);
  defineErrorTests(getDevice);
});
