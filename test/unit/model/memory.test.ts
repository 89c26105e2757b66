import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildDecoderProgram } from '../../../models/llama.ts';
import { readDecoderConfig } from '../../../src/model/hf-config.ts';
import { formatBytes, kvBytesPerBlock, numBlocksForBudget, programMemory, programWeightBytes, resolveDim } from '../../../src/model/memory.ts';
import { readSafetensorsHeader } from '../../../src/model/safetensors.ts';
import { openWeights } from '../../../src/model/weights.ts';
import { tinyModelDir } from '../../fixtures/tiny-models.ts';

describe('KV cache sizing', () => {
  const llama3_8b = { numLayers: 32, numKvHeads: 8, headDim: 128 };

  it('bytes per block = 2 × layers × blockSize × kvHeads × headDim × dtype bytes', () => {
    expect(kvBytesPerBlock(llama3_8b, 16, 'bf16')).toBe(2 * 32 * 16 * 8 * 128 * 2); // 2 MiB
    expect(kvBytesPerBlock(llama3_8b, 16, 'f32')).toBe(4 * 1024 * 1024);
    expect(kvBytesPerBlock({ numLayers: 5, numKvHeads: 4, headDim: 8 }, 16, 'f32')).toBe(2 * 5 * 16 * 4 * 8 * 4);
  });

  it('fits whole blocks into a budget', () => {
    expect(numBlocksForBudget(llama3_8b, 8 * 1024 ** 3, 16, 'bf16')).toBe(4096);
    expect(numBlocksForBudget(llama3_8b, 8 * 1024 ** 3 - 1, 16, 'bf16')).toBe(4095);
    expect(numBlocksForBudget(llama3_8b, 1024, 16, 'bf16')).toBe(0);
    expect(numBlocksForBudget(llama3_8b, -5, 16, 'bf16')).toBe(0);
  });
});

describe('program memory', () => {
  const opts = { computeDtype: 'f32' as const, kv: { numBlocks: 10, blockSize: 16, dtype: 'f32' as const }, limits: { maxNumTokens: 128, maxNumSeqs: 4, maxBlocksPerSeq: 8, maxTopLogprobs: 5 } };

  it('counts weights once (a tied lm_head is the embedding) plus the RoPE table', async () => {
    const dir = await tinyModelDir('tiny-llama');
    const cfg = await readDecoderConfig(dir);
    const spec = buildDecoderProgram(cfg, { ...opts, weights: await openWeights(dir), weightDtype: 'auto' });
    const header = await readSafetensorsHeader(join(dir, 'model.safetensors'));
    const fileBytes = header.tensors.reduce((n, t) => n + t.byteLength, 0);
    expect(programWeightBytes(spec)).toBe(fileBytes + (cfg.headDim / 2) * 4);
  });

  it('doubles bf16 weights loaded as f32, and sizes KV state and activations from the limits', async () => {
    const dir = await tinyModelDir('tiny-llama3');
    const cfg = await readDecoderConfig(dir);
    const weights = await openWeights(dir);
    const auto = programMemory(buildDecoderProgram(cfg, { ...opts, weights, weightDtype: 'auto' }));
    const f32 = programMemory(buildDecoderProgram(cfg, { ...opts, weights, weightDtype: 'f32' }));
    const ropeBytes = (cfg.headDim / 2) * 4;
    expect(f32.weight - ropeBytes).toBe(2 * (auto.weight - ropeBytes));
    // The KV cache, plus the previous step's sampled ids ([maxNumSeqs] i32) for async scheduling.
    expect(auto.state).toBe(10 * kvBytesPerBlock(cfg, 16, 'f32') + 4 * 4);
    // hidden, residual, normed: [128, 128] f32 each; logits [4, 512] f32 among the rest.
    expect(auto.activation).toBeGreaterThan(3 * 128 * 128 * 4 + 4 * 512 * 4);
    expect(auto.total).toBe(auto.weight + auto.state + auto.activation + auto.input + auto.output);
    // Inputs: 4 × [numTokens] + block_tables [4, 8] + query_start_loc [5] + 7 × [numSeqs] of 4 bytes, seeds [4] u64,
    // and process_logits' (R = 4 rows): flags, 3 penalties, 2 extra-id inputs, 2 × 128 penalty list
    // columns (min(vocab, 8 blocks × 16)), 2 × 1024 bias columns, 512 / 32 mask words; all 4 bytes.
    expect(auto.input).toBe((4 * 128 + 4 * 8 + 5 + 7 * 4) * 4 + 4 * 8 + 4 * (1 + 3 + 2 + 2 * 128 + 2 * 1024 + 16) * 4);
  });

  it('resolves symbolic dims, with +k offsets', () => {
    expect(resolveDim('numSeqs+1', { numSeqs: 8 })).toBe(9);
    expect(resolveDim(3, {})).toBe(3);
    expect(() => resolveDim('nope', { numSeqs: 8 })).toThrow(/unknown symbolic dimension "nope"/);
  });

  it('formats byte counts', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(3 * 1024 ** 3)).toBe('3.00 GiB');
  });
});
