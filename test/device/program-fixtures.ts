/**
 * ProgramSpecs for the executor tests, each with what the reference needs to predict its outputs.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DType, ProgramSpec } from '../../src/device/program.ts';
import { Rng } from './harness.ts';
import { decode, encode, fillRandom, roundTo, type FloatDType } from './reference.ts';

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'updraft-device-test-'));
}

function bytesOf(array: Float32Array | Uint16Array): Buffer {
  return Buffer.from(array.buffer, array.byteOffset, array.byteLength);
}

// ---------------------------------------------------------------------------------------------
// A toy language model head: embedding -> rmsnorm -> gather_rows (last token of each sequence)
// -> matmul (lm_head) -> sample. The embedding is random (FILL_RANDOM), the norm weight inline
// data, the lm_head two file segments of different dtypes converted to bf16.

export const TINY = { vocab: 40, hidden: 16, embedSeed: 7, embedStd: 0.5, eps: 1e-5, headRowsInFileA: 25 };

export interface TinyModel {
  spec: ProgramSpec;
  embed: Float64Array; // [vocab, hidden]
  normWeight: Float64Array; // [hidden]
  lmHead: Float64Array; // [vocab, hidden], as the bf16 tensor holds it
}

export function tinyModel(dir: string): TinyModel {
  const { vocab, hidden } = TINY;
  const rng = new Rng(71);
  const normWeight = Float32Array.from(rng.normals(hidden, 0.3).map((x) => 1 + x));
  // lm_head rows [0, 25) stored as f32 after an 8-byte header, rows [25, 40) as f16 in another file.
  const rowsA = TINY.headRowsInFileA;
  const partA = Float32Array.from(rng.normals(rowsA * hidden, 0.4));
  const partB = encode('f16', rng.normals((vocab - rowsA) * hidden, 0.4));
  const fileA = join(dir, 'head-a.bin');
  const fileB = join(dir, 'head-b.bin');
  writeFileSync(fileA, Buffer.concat([Buffer.alloc(8, 0xab), bytesOf(partA)]));
  writeFileSync(fileB, bytesOf(partB));
  const headValues = [...Array.from(partA), ...Array.from(decode('f16', partB))].map((v) => roundTo('bf16', v));

  const spec: ProgramSpec = {
    dims: { numTokens: 8, numSeqs: 3, numTopLogprobs: 2 },
    tensors: [
      { name: 'embed', dtype: 'f32', shape: [vocab, hidden], role: 'weight', init: { kind: 'random', seed: TINY.embedSeed, std: TINY.embedStd } },
      { name: 'norm_w', dtype: 'f32', shape: [hidden], role: 'weight', init: { kind: 'data', data: normWeight } },
      {
        name: 'lm_head', dtype: 'bf16', shape: [vocab, hidden], role: 'weight',
        init: {
          kind: 'file',
          segments: [
            { path: fileA, offset: 8, byteLength: partA.byteLength, dtype: 'f32' },
            { path: fileB, offset: 0, byteLength: partB.byteLength, dtype: 'f16' },
          ],
        },
      },
      { name: 'input_ids', dtype: 'i32', shape: ['numTokens'], role: 'input' },
      { name: 'logits_indices', dtype: 'i32', shape: ['numSeqs'], role: 'input' },
      { name: 'temperature', dtype: 'f32', shape: ['numSeqs'], role: 'input' },
      { name: 'top_k', dtype: 'i32', shape: ['numSeqs'], role: 'input' },
      { name: 'top_p', dtype: 'f32', shape: ['numSeqs'], role: 'input' },
      { name: 'min_p', dtype: 'f32', shape: ['numSeqs'], role: 'input' },
      { name: 'seeds', dtype: 'u64', shape: ['numSeqs'], role: 'input' },
      { name: 'sample_counters', dtype: 'i32', shape: ['numSeqs'], role: 'input' },
      { name: 'hidden', dtype: 'f32', shape: ['numTokens', hidden], role: 'activation' },
      { name: 'normed', dtype: 'f32', shape: ['numTokens', hidden], role: 'activation' },
      { name: 'last', dtype: 'f32', shape: ['numSeqs', hidden], role: 'activation' },
      { name: 'logits', dtype: 'f32', shape: ['numSeqs', vocab], role: 'output' },
      { name: 'sampled_ids', dtype: 'i32', shape: ['numSeqs'], role: 'output' },
      { name: 'sampled_logprobs', dtype: 'f32', shape: ['numSeqs'], role: 'output' },
      { name: 'top_ids', dtype: 'i32', shape: ['numSeqs', 'numTopLogprobs'], role: 'output' },
      { name: 'top_logprobs', dtype: 'f32', shape: ['numSeqs', 'numTopLogprobs'], role: 'output' },
    ],
    ops: [
      { op: 'embedding', src: ['embed', 'input_ids'], dst: ['hidden'] },
      { op: 'rmsnorm', src: ['hidden', null, 'norm_w'], dst: ['normed', null], params: { eps: TINY.eps, add_residual: 0 } },
      { op: 'gather_rows', src: ['normed', 'logits_indices'], dst: ['last'] },
      { op: 'matmul', src: ['last', 'lm_head', null], dst: ['logits'] },
      {
        op: 'sample',
        src: ['logits', 'temperature', 'top_k', 'top_p', 'min_p', 'seeds', 'sample_counters'],
        dst: ['sampled_ids', 'sampled_logprobs', 'top_ids', 'top_logprobs'],
        params: { num_top_logprobs: 2 },
      },
    ],
  };
  return {
    spec,
    embed: fillRandom(BigInt(TINY.embedSeed), vocab * hidden, TINY.embedStd),
    normWeight: Float64Array.from(normWeight),
    lmHead: Float64Array.from(headValues),
  };
}

// ---------------------------------------------------------------------------------------------
// Weight conversion: one weight per (file dtype, tensor dtype) pair, read back through
// gather_rows into f32 outputs. The values include exact rounding ties of bf16 and f16.

export interface ConversionCase {
  name: string;
  fileDtype: FloatDType;
  tensorDtype: FloatDType;
  expected: Float64Array; // what the tensor must hold, as f32 output
}

export const CONVERSION_ROWS = 4;
export const CONVERSION_COLS = 6;

export function conversionProgram(dir: string): { spec: ProgramSpec; cases: ConversionCase[] } {
  const rng = new Rng(72);
  // Ties: 1 + 2^-8 (bf16 tie, rounds down to even), 1 + 3·2^-8 (bf16 tie, rounds up), 1 + 2^-11 and
  // 1 + 3·2^-11 (the same for f16); then ordinary values.
  const ties = [1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -11), 1 + 3 * 2 ** -11, 2 ** -20, -3.25];
  const values = [...ties, ...rng.normals(CONVERSION_ROWS * CONVERSION_COLS - ties.length, 2)];
  const dtypes: FloatDType[] = ['f32', 'f16', 'bf16'];
  const tensors: ProgramSpec['tensors'] = [{ name: 'rows', dtype: 'i32', shape: ['numRows'], role: 'input' }];
  const ops: ProgramSpec['ops'] = [];
  const cases: ConversionCase[] = [];
  for (const fileDtype of dtypes) {
    const stored = encode(fileDtype, values);
    const path = join(dir, `values-${fileDtype}.bin`);
    writeFileSync(path, bytesOf(stored));
    const storedValues = decode(fileDtype, stored);
    for (const tensorDtype of dtypes) {
      const name = `w_${fileDtype}_to_${tensorDtype}`;
      tensors.push({
        name, dtype: tensorDtype, shape: [CONVERSION_ROWS, CONVERSION_COLS], role: 'weight',
        init: { kind: 'file', segments: [{ path, offset: 0, byteLength: stored.byteLength, dtype: fileDtype }] },
      });
      tensors.push({ name: `out_${name}`, dtype: 'f32', shape: ['numRows', CONVERSION_COLS], role: 'output' });
      ops.push({ op: 'gather_rows', src: [name, 'rows'], dst: [`out_${name}`] });
      cases.push({ name, fileDtype, tensorDtype, expected: storedValues.map((v) => roundTo(tensorDtype, v)) });
    }
  }
  // Inline data into a 16-bit tensor, an i32 weight used as indices, and random bf16 values.
  const inline = Float32Array.from(values);
  tensors.push(
    { name: 'w_data_f16', dtype: 'f16', shape: [CONVERSION_ROWS, CONVERSION_COLS], role: 'weight', init: { kind: 'data', data: inline } },
    { name: 'out_w_data_f16', dtype: 'f32', shape: ['numRows', CONVERSION_COLS], role: 'output' },
    { name: 'w_random_bf16', dtype: 'bf16', shape: [CONVERSION_ROWS, CONVERSION_COLS], role: 'weight', init: { kind: 'random', seed: 99, std: 0.25 } },
    { name: 'out_w_random_bf16', dtype: 'f32', shape: ['numRows', CONVERSION_COLS], role: 'output' },
    { name: 'reverse', dtype: 'i32', shape: [CONVERSION_ROWS], role: 'weight', init: { kind: 'data', data: Int32Array.from([3, 2, 1, 0]) } },
    { name: 'out_reversed', dtype: 'f32', shape: [CONVERSION_ROWS, CONVERSION_COLS], role: 'output' },
  );
  ops.push(
    { op: 'gather_rows', src: ['w_data_f16', 'rows'], dst: ['out_w_data_f16'] },
    { op: 'gather_rows', src: ['w_random_bf16', 'rows'], dst: ['out_w_random_bf16'] },
    { op: 'gather_rows', src: ['w_f32_to_f32', 'reverse'], dst: ['out_reversed'] },
  );
  cases.push(
    { name: 'w_data_f16', fileDtype: 'f32', tensorDtype: 'f16', expected: Float64Array.from(inline, (v) => roundTo('f16', v)) },
    { name: 'w_random_bf16', fileDtype: 'f32', tensorDtype: 'bf16', expected: fillRandom(99n, CONVERSION_ROWS * CONVERSION_COLS, 0.25).map((v) => roundTo('bf16', v)) },
  );
  return { spec: { dims: { numRows: CONVERSION_ROWS }, tensors, ops }, cases };
}

// ---------------------------------------------------------------------------------------------
// The paged KV cache as program state: rope_kv_write then attention, over several steps.

export const KV = { numHeads: 4, numKvHeads: 2, headDim: 8, blockSize: 4, numBlocks: 6, maxBlocksPerSeq: 3 };

export function kvProgram(): ProgramSpec {
  const { numHeads, numKvHeads, headDim, blockSize, numBlocks } = KV;
  const t = (name: string, dtype: DType, shape: (number | string)[], role: 'input' | 'output' | 'activation' | 'state') => ({ name, dtype, shape, role });
  return {
    dims: { numTokens: 6, numSeqs: 2, maxBlocksPerSeq: KV.maxBlocksPerSeq },
    tensors: [
      t('qkv', 'f32', ['numTokens', numHeads + 2 * numKvHeads, headDim], 'input'),
      t('positions', 'i32', ['numTokens'], 'input'),
      t('slot_mapping', 'i32', ['numTokens'], 'input'),
      t('block_tables', 'i32', ['numSeqs', 'maxBlocksPerSeq'], 'input'),
      t('seq_lens', 'i32', ['numSeqs'], 'input'),
      t('query_start_loc', 'i32', ['numSeqs+1'], 'input'),
      { name: 'inv_freq', dtype: 'f32', shape: [headDim / 2], role: 'weight', init: { kind: 'data', data: Float32Array.from({ length: headDim / 2 }, (_, i) => 1 / Math.pow(10000, (2 * i) / headDim)) } },
      t('k_cache', 'f32', [numBlocks, blockSize, numKvHeads, headDim], 'state'),
      t('v_cache', 'f32', [numBlocks, blockSize, numKvHeads, headDim], 'state'),
      t('q', 'f32', ['numTokens', numHeads, headDim], 'activation'),
      t('attn_out', 'f32', ['numTokens', numHeads * headDim], 'output'),
    ],
    ops: [
      {
        op: 'rope_kv_write',
        src: ['qkv', 'positions', 'inv_freq', 'slot_mapping'],
        dst: ['q', 'k_cache', 'v_cache'],
        params: { num_heads: numHeads, num_kv_heads: numKvHeads, head_dim: headDim, rotary_dim: headDim },
      },
      {
        op: 'attention',
        src: ['q', 'k_cache', 'v_cache', 'block_tables', 'seq_lens', 'query_start_loc'],
        dst: ['attn_out'],
        params: { scale: 1 / Math.sqrt(headDim), num_heads: numHeads, num_kv_heads: numKvHeads, head_dim: headDim, block_size: blockSize },
      },
    ],
  };
}
