import { describe, expect, it } from 'vitest';
import { resolveModelDtypes } from '../../../src/model/model-dtypes.ts';

describe('resolveModelDtypes (--dtype)', () => {
  it('auto: a GPU computes and stores weights in its preferred dtype; the CPU keeps the checkpoint weights, computes in f32', () => {
    expect(resolveModelDtypes('auto', 'bf16')).toEqual({ computeDtype: 'bf16', weightDtype: 'bf16' });
    expect(resolveModelDtypes(undefined, 'bf16')).toEqual({ computeDtype: 'bf16', weightDtype: 'bf16' });
    expect(resolveModelDtypes('auto', 'f32')).toEqual({ computeDtype: 'f32', weightDtype: 'auto' });
  });

  it("on a GPU, an explicit dtype sets the activations too (vLLM's meaning)", () => {
    expect(resolveModelDtypes('float32', 'bf16')).toEqual({ computeDtype: 'f32', weightDtype: 'f32' });
    expect(resolveModelDtypes('float16', 'bf16')).toEqual({ computeDtype: 'f16', weightDtype: 'f16' });
    expect(resolveModelDtypes('bfloat16', 'bf16')).toEqual({ computeDtype: 'bf16', weightDtype: 'bf16' });
  });

  it('on the CPU, an explicit dtype sets the stored weights only', () => {
    expect(resolveModelDtypes('bfloat16', 'f32')).toEqual({ computeDtype: 'f32', weightDtype: 'bf16' });
    expect(resolveModelDtypes('float16', 'f32')).toEqual({ computeDtype: 'f32', weightDtype: 'f16' });
  });
});
