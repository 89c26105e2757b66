/**
 * --kv-cache-dtype on the model side: the option's storage dtype, the KV sizing at a fixed budget, the
 * program the decoder builds with an FP8 cache (only the cache tensors change), and the refusal a
 * device without FP8 kernels gives at load, with the flag named (a fake device, then ascend-sim for real).
 */
import { describe, expect, it } from 'vitest';
import { buildDecoderProgram } from '../../../models/llama.ts';
import type { DecoderBuildOptions } from '../../../models/llama.ts';
import { ConfigError } from '../../../src/config.ts';
import type { KvCacheDtypeOption } from '../../../src/config.ts';
import { probeBackends } from '../../../src/device/device.ts';
import type { OpCall } from '../../../src/device/device.ts';
import type { DType, ProgramSpec } from '../../../src/device/program.ts';
import { readDecoderConfig } from '../../../src/model/hf-config.ts';
import { explainKvCacheFailure, kvCacheDtypeFor, opCallsTouching, requireKvCacheSupport } from '../../../src/model/kv-cache-dtype.ts';
import { loadModel } from '../../../src/model/loader.ts';
import { kvBytesPerBlock, numBlocksForBudget, programMemory } from '../../../src/model/memory.ts';
import { openWeights } from '../../../src/model/weights.ts';
import { tinyModelDir } from '../../fixtures/tiny-models.ts';
import { checkProgram } from './program-check.ts';

const LIMITS = { maxNumTokens: 64, maxNumSeqs: 4, maxBlocksPerSeq: 8, maxTopLogprobs: 5 };

async function tinyLlama3Program(kvDtype: DType, numBlocks = 10): Promise<ProgramSpec> {
  const dir = await tinyModelDir('tiny-llama3');
  const options: DecoderBuildOptions = {
    weights: await openWeights(dir),
    computeDtype: 'bf16',
    weightDtype: 'auto',
    kv: { numBlocks, blockSize: 16, dtype: kvDtype },
    limits: LIMITS,
  };
  return buildDecoderProgram(await readDecoderConfig(dir), options);
}

const isKvCache = (name: string) => /\.self_attn\.[kv]_cache$/.test(name);

describe('the KV storage dtype of each option', () => {
  it('auto is the compute dtype; fp8 and fp8_e4m3 are FP8 E4M3 whatever the compute dtype', () => {
    expect(kvCacheDtypeFor('auto', 'f32')).toBe('f32');
    expect(kvCacheDtypeFor('auto', 'bf16')).toBe('bf16');
    for (const compute of ['f32', 'bf16', 'f16'] as const) {
      expect(kvCacheDtypeFor('fp8', compute)).toBe('f8e4m3');
      expect(kvCacheDtypeFor('fp8_e4m3', compute)).toBe('f8e4m3');
    }
  });
});

describe('KV sizing with an FP8 cache', () => {
  const llama3_8b = { numLayers: 32, numKvHeads: 8, headDim: 128 };

  it('holds twice the blocks of a bf16 cache (four times an f32 one) in the same memory', () => {
    expect(kvBytesPerBlock(llama3_8b, 16, 'f8e4m3')).toBe(2 * 32 * 16 * 8 * 128); // 1 MiB
    const budget = 8 * 1024 ** 3;
    const bf16 = numBlocksForBudget(llama3_8b, budget, 16, 'bf16');
    expect(bf16).toBe(4096);
    expect(numBlocksForBudget(llama3_8b, budget, 16, 'f8e4m3')).toBe(2 * bf16);
    expect(numBlocksForBudget(llama3_8b, budget, 16, 'f8e4m3')).toBe(4 * numBlocksForBudget(llama3_8b, budget, 16, 'f32'));
  });

  it("halves the program's KV state for the same blocks", async () => {
    const bf16 = programMemory(await tinyLlama3Program('bf16'));
    const fp8 = programMemory(await tinyLlama3Program('f8e4m3'));
    const sampledIds = LIMITS.maxNumSeqs * 4; // the other state tensor: the previous step's samples, i32
    const cfg = await readDecoderConfig(await tinyModelDir('tiny-llama3'));
    expect(fp8.state - sampledIds).toBe(10 * kvBytesPerBlock(cfg, 16, 'f8e4m3'));
    expect(2 * (fp8.state - sampledIds)).toBe(bf16.state - sampledIds);
    expect({ ...fp8, state: 0, total: 0 }).toEqual({ ...bf16, state: 0, total: 0 });
  });
});

describe('the decoder program with an FP8 cache', () => {
  it('has f8e4m3 k/v caches of the same shape, and every other tensor and every op unchanged', async () => {
    const bf16 = await tinyLlama3Program('bf16');
    const fp8 = await tinyLlama3Program('f8e4m3');
    expect(checkProgram(fp8)).toEqual([]);
    const caches = fp8.tensors.filter((t) => isKvCache(t.name));
    expect(caches).toHaveLength(2 * 3); // k and v of each of the three layers
    for (const cache of caches) expect(cache).toMatchObject({ dtype: 'f8e4m3', role: 'state', shape: [10, 16, 2, 32] });
    expect(fp8.tensors.map((t) => (isKvCache(t.name) ? { ...t, dtype: 'bf16' } : t))).toEqual(bf16.tensors);
    expect(fp8.ops).toEqual(bf16.ops);
    expect(fp8.dims).toEqual(bf16.dims);
  });

  it('refuses dtypes that are neither a float nor FP8', async () => {
    await expect(tinyLlama3Program('i32')).rejects.toThrow(/kv.dtype must be f32, f16 or bf16, or f8e4m3 \(FP8 storage\), got i32/);
  });
});

describe('asking a device whether it can store FP8 KV', () => {
  it('probes exactly the ops that touch the cache, once per distinct shape: rope_kv_write and attention', async () => {
    const spec = await tinyLlama3Program('f8e4m3');
    const calls = opCallsTouching(spec, 'f8e4m3');
    expect(calls.map((c) => c.op)).toEqual(['rope_kv_write', 'attention']);
    const cache = { dtype: 'f8e4m3', shape: [10, 16, 2, 32] };
    expect(calls[0]!.dst).toEqual([{ dtype: 'bf16', shape: [64, 4, 32] }, cache, cache]);
    expect(calls[0]!.src.map((t) => t?.dtype)).toEqual(['bf16', 'i32', 'f32', 'i32']);
    expect(calls[1]!.src.slice(0, 3)).toEqual([{ dtype: 'bf16', shape: [64, 4, 32] }, cache, cache]);
    expect(calls[1]!.params).toMatchObject({ block_size: 16, num_heads: 4, num_kv_heads: 2, head_dim: 32 });
    expect(opCallsTouching(await tinyLlama3Program('bf16'), 'f8e4m3')).toEqual([]);
  });

  const withoutFp8 = (call: OpCall) => ![...call.src, ...call.dst].some((t) => t?.dtype === 'f8e4m3');

  it('refuses with the flag, the device and the op named', async () => {
    const spec = await tinyLlama3Program('f8e4m3');
    const device = { name: 'Fake NPU', supportsOp: withoutFp8 };
    const load = () => requireKvCacheSupport('fp8', 'f8e4m3', spec, device);
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(
      '--kv-cache-dtype fp8 is not supported on Fake NPU: its rope_kv_write kernel does not take a KV cache of f8e4m3 ' +
        '(operand dtypes: src bf16, i32, f32, i32; dst bf16, f8e4m3, f8e4m3); use --kv-cache-dtype auto',
    );
    // A device that writes FP8 but cannot read it back is refused too, naming attention.
    const writesOnly = { name: 'Half NPU', supportsOp: (call: OpCall) => call.op === 'rope_kv_write' || withoutFp8(call) };
    expect(() => requireKvCacheSupport('fp8_e4m3', 'f8e4m3', spec, writesOnly)).toThrow(/^--kv-cache-dtype fp8_e4m3 is not supported on Half NPU: its attention kernel/);
    expect(() => requireKvCacheSupport('fp8', 'f8e4m3', spec, { name: 'Full', supportsOp: () => true })).not.toThrow();
  });

  it('never asks for auto, which every backend stores', async () => {
    const spec = await tinyLlama3Program('bf16');
    const asked: OpCall[] = [];
    requireKvCacheSupport('auto', 'bf16', spec, { name: 'any', supportsOp: (call) => (asked.push(call), false) });
    expect(asked).toEqual([]);
  });

  it("words a device group's program-creation failure the same way, and leaves other failures alone", () => {
    const unsupported = Object.assign(new Error('rank 0: op 5 (rope_kv_write): backend x does not support it with dtypes (src: bf16; dst: bf16, f8e4m3, f8e4m3)'), { code: 'UD_ERR_UNSUPPORTED' });
    const explained = explainKvCacheFailure(unsupported, 'fp8', 'f8e4m3', '2 x NPU (tensor parallel)');
    expect(explained).toBeInstanceOf(ConfigError);
    expect((explained as Error).message).toBe(`--kv-cache-dtype fp8 is not supported on 2 x NPU (tensor parallel): ${unsupported.message}; use --kv-cache-dtype auto`);
    expect(explainKvCacheFailure(unsupported, 'auto', 'bf16', 'NPU')).toBe(unsupported);
    const otherOp = Object.assign(new Error('op 2 (matmul): backend x does not support it with dtypes (src: f16)'), { code: 'UD_ERR_UNSUPPORTED' });
    expect(explainKvCacheFailure(otherOp, 'fp8', 'f8e4m3', 'NPU')).toBe(otherOp);
    const outOfMemory = Object.assign(new Error('program needs 9 GiB (f8e4m3 cache)'), { code: 'UD_ERR_OUT_OF_MEMORY' });
    expect(explainKvCacheFailure(outOfMemory, 'fp8', 'f8e4m3', 'NPU')).toBe(outOfMemory);
  });
});

// The Ascend kernels have no FP8 (the 910B has none): the real loader must refuse at start.
const sim = probeBackends().find((b) => b.name === 'ascend-sim');
const simSkip = sim?.available ? null : `ascend-sim backend unavailable: ${sim?.reason ?? 'not known to this build'}`;

describe.skipIf(simSkip !== null)(`loading with --kv-cache-dtype fp8 on ascend-sim${simSkip ? ` — skipped: ${simSkip}` : ''}`, () => {
  const load = async (tensorParallelSize: number, gpuMemoryUtilization = 0.9, kvCacheDtype: KvCacheDtypeOption = 'fp8') =>
    loadModel({
      model: await tinyModelDir('tiny-llama'),
      device: 'ascend-sim',
      tensorParallelSize,
      kvCacheDtype,
      maxModelLen: 64,
      maxNumSeqs: 4,
      maxNumBatchedTokens: 64,
      gpuMemoryUtilization,
    });

  it('refuses naming the flag, the device and the op', async () => {
    await expect(load(1)).rejects.toThrow(ConfigError);
    await expect(load(1)).rejects.toThrow(/^--kv-cache-dtype fp8 is not supported on Ascend 910B \(ascend-sim[^)]*\): its rope_kv_write kernel does not take a KV cache of f8e4m3 .*; use --kv-cache-dtype auto$/);
  });

  it('refuses before sizing memory: the refusal comes first even where nothing would fit', async () => {
    await expect(load(1, 1e-9, 'auto')).rejects.toThrow(/the model does not fit/);
    await expect(load(1, 1e-9)).rejects.toThrow(/^--kv-cache-dtype fp8 is not supported/);
  });

  it('refuses under tensor parallelism too, where the addon checks the ranks at program creation', async () => {
    await expect(load(2)).rejects.toThrow(/^--kv-cache-dtype fp8 is not supported on 2 x Ascend 910B .*\(tensor parallel\): rank 0: op \d+ \(rope_kv_write\).*f8e4m3.*; use --kv-cache-dtype auto$/);
  });
});
