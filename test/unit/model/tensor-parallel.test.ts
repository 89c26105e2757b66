/**
 * Tensor-parallel sharding (src/model/tensor-parallel.ts, models/llama.ts): the shard plan's checks
 * and head ranges, file slices, and each rank's program — shapes, the all_reduce ops, biases, and the
 * bytes every sharded weight reads, compared with the same slice cut from the whole tensor.
 */
import { open } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { buildDecoderProgram } from '../../../models/llama.ts';
import type { DecoderBuildOptions } from '../../../models/llama.ts';
import type { FileSegment, ProgramSpec, TensorDecl } from '../../../src/device/program.ts';
import { readDecoderConfig } from '../../../src/model/hf-config.ts';
import { shardPlan, sliceSegment, validateTensorParallel } from '../../../src/model/tensor-parallel.ts';
import { openWeights } from '../../../src/model/weights.ts';
import type { WeightSource } from '../../../src/model/weights.ts';
import { tinyModelDir } from '../../fixtures/tiny-models.ts';
import type { TinyModelName } from '../../fixtures/tiny-models.ts';
import { checkProgram } from './program-check.ts';

const LIMITS = { maxNumTokens: 64, maxNumSeqs: 4, maxBlocksPerSeq: 8, maxTopLogprobs: 5 };
const KV = { numBlocks: 16, blockSize: 16, dtype: 'f32' as const };

const GQA = { numHeads: 32, numKvHeads: 8, headDim: 128, intermediateSize: 14336 }; // the 8B shape

describe('validateTensorParallel', () => {
  it('accepts sizes that divide heads, KV heads (or are multiples of them) and the MLP', () => {
    for (const size of [1, 2, 4, 8, 16, 32]) expect(() => validateTensorParallel(GQA, size)).not.toThrow();
  });
  it('refuses the rest, naming the dimension', () => {
    expect(() => validateTensorParallel(GQA, 3)).toThrow(/does not divide the model's 32 attention heads/);
    expect(() => validateTensorParallel({ ...GQA, numKvHeads: 6, numHeads: 24 }, 4)).toThrow(/6 KV heads: one must divide the other/);
    expect(() => validateTensorParallel({ ...GQA, intermediateSize: 100 }, 8)).toThrow(/intermediate_size 100/);
    expect(() => validateTensorParallel(GQA, 0)).toThrow(/positive integer/);
  });
});

describe('shardPlan', () => {
  it('splits q heads, KV heads and the MLP into equal consecutive ranges', () => {
    const plans = [0, 1, 2, 3].map((rank) => shardPlan(GQA, { rank, size: 4 }));
    expect(plans.map((p) => [p.qHeadStart, p.numHeads, p.kvHeadStart, p.numKvHeads, p.kvReplicas])).toEqual([
      [0, 8, 0, 2, 1], [8, 8, 2, 2, 1], [16, 8, 4, 2, 1], [24, 8, 6, 2, 1],
    ]);
    expect(plans.map((p) => [p.intermediateStart, p.intermediateSize])).toEqual([[0, 3584], [3584, 3584], [7168, 3584], [10752, 3584]]);
  });
  it('replicates KV heads over more ranks than heads, each rank holding the head its q heads use', () => {
    const cfg = { numHeads: 4, numKvHeads: 1, headDim: 32, intermediateSize: 192 }; // tiny-mistral
    for (const size of [2, 4]) {
      for (let rank = 0; rank < size; rank++) {
        const plan = shardPlan(cfg, { rank, size });
        expect(plan).toMatchObject({ numKvHeads: 1, kvHeadStart: 0, kvReplicas: size });
      }
    }
    const gqa = { numHeads: 8, numKvHeads: 2, headDim: 16, intermediateSize: 64 };
    // q heads per KV head: 4; with 4 ranks of 2 q heads, ranks 0-1 use KV head 0 and ranks 2-3 KV head 1.
    expect([0, 1, 2, 3].map((rank) => shardPlan(gqa, { rank, size: 4 }).kvHeadStart)).toEqual([0, 0, 1, 1]);
    for (let rank = 0; rank < 4; rank++) {
      const plan = shardPlan(gqa, { rank, size: 4 });
      const groupSize = gqa.numHeads / gqa.numKvHeads;
      for (let h = plan.qHeadStart; h < plan.qHeadStart + plan.numHeads; h++) expect(Math.floor(h / groupSize)).toBe(plan.kvHeadStart);
    }
  });
});

describe('sliceSegment', () => {
  const segment: FileSegment = { path: '/m.safetensors', offset: 1000, byteLength: 6 * 8 * 2, dtype: 'bf16' };
  it('takes whole rows as one contiguous run', () => {
    expect(sliceSegment(segment, [6, 8], { dim: 0, start: 2, count: 3 })).toEqual({ ...segment, offset: 1000 + 2 * 16, byteLength: 3 * 16 });
    expect(sliceSegment({ ...segment, byteLength: 12 }, [6], { dim: 0, start: 4, count: 2 })).toMatchObject({ offset: 1008, byteLength: 4 });
  });
  it('takes columns as one run per row, a row apart', () => {
    expect(sliceSegment(segment, [6, 8], { dim: 1, start: 4, count: 4 })).toEqual({
      ...segment, offset: 1000 + 4 * 2, byteLength: 6 * 4 * 2, rows: 6, rowStride: 16,
    });
  });
  it('refuses slices outside the tensor', () => {
    expect(() => sliceSegment(segment, [6, 8], { dim: 1, start: 6, count: 4 })).toThrow(/outside \[0, 8\)/);
    expect(() => sliceSegment(segment, [6, 8, 1], { dim: 1, start: 0, count: 1 })).toThrow(/need a matrix/);
  });
});

// --- the rank programs of the tiny models --------------------------------------------------------------

async function load(name: TinyModelName) {
  const dir = await tinyModelDir(name);
  return { cfg: await readDecoderConfig(dir), weights: await openWeights(dir) };
}
const options = (weights: WeightSource, rank: number, size: number): DecoderBuildOptions => ({
  weights, computeDtype: 'f32', weightDtype: 'auto', kv: KV, limits: LIMITS, tensorParallel: { rank, size },
});
const tensor = (spec: ProgramSpec, name: string): TensorDecl => {
  const t = spec.tensors.find((x) => x.name === name);
  if (!t) throw new Error(`no tensor ${name}`);
  return t;
};

/** The f32 values a file-initialised weight reads, honouring strided segments (as the native loader does). */
async function readWeight(t: TensorDecl): Promise<Float32Array> {
  if (t.init?.kind !== 'file') throw new Error(`${t.name} is not read from a file`);
  const parts: Float32Array[] = [];
  for (const seg of t.init.segments) {
    expect(seg.dtype).toBe('f32');
    const rows = seg.rows ?? 1;
    const run = seg.byteLength / rows;
    const bytes = Buffer.alloc(seg.byteLength);
    const file = await open(seg.path, 'r');
    try {
      for (let r = 0; r < rows; r++) await file.read(bytes, r * run, run, seg.offset + r * (seg.rowStride ?? 0));
    } finally {
      await file.close();
    }
    parts.push(new Float32Array(bytes.buffer, bytes.byteOffset, seg.byteLength / 4));
  }
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A whole checkpoint tensor as f32 with its shape. */
async function readWhole(weights: WeightSource, name: string): Promise<{ values: Float32Array; shape: number[] }> {
  const entry = weights.get(name);
  const values = await readWeight({ name, dtype: 'f32', shape: entry.shape, role: 'weight', init: { kind: 'file', segments: [entry.segment] } });
  return { values, shape: entry.shape };
}

/** Rows [r0, r0 + nr) of a row-major matrix, then columns [c0, c0 + nc): an independent slicing. */
function cut(whole: { values: Float32Array; shape: number[] }, r0: number, nr: number, c0: number, nc: number): number[] {
  const cols = whole.shape[1] ?? 1;
  const out: number[] = [];
  for (let r = r0; r < r0 + nr; r++) for (let c = c0; c < c0 + nc; c++) out.push(whole.values[r * cols + c]!);
  return out;
}

describe('rank programs of the tiny models', () => {
  it('are well formed, with an all_reduce after every o_proj and down_proj, and none at one rank', async () => {
    for (const name of ['tiny-llama', 'tiny-qwen2', 'tiny-mistral', 'tiny-llama3'] as const) {
      const { cfg, weights } = await load(name);
      const single = buildDecoderProgram(cfg, { ...options(weights, 0, 1) });
      expect(single).toEqual(buildDecoderProgram(cfg, { ...options(weights, 0, 1), tensorParallel: undefined }));
      expect(single.ops.some((op) => op.op === 'all_reduce')).toBe(false);
      for (const size of [2, 4]) {
        for (let rank = 0; rank < size; rank++) {
          const spec = buildDecoderProgram(cfg, options(weights, rank, size));
          expect(checkProgram(spec), `${name} rank ${rank}/${size}`).toEqual([]);
          const kinds = spec.ops.map((op) => op.op);
          const reduces = kinds.flatMap((k, i) => (k === 'all_reduce' ? [i] : []));
          expect(reduces).toHaveLength(2 * cfg.numLayers);
          for (const i of reduces) {
            expect(kinds[i - 1]).toBe('matmul');
            expect(spec.ops[i]!.dst).toEqual(['hidden']);
          }
        }
      }
    }
  });

  it('tiny-qwen2 (GQA, q/k/v biases) at TP=2: shapes, head parameters, KV cache and the bytes of every shard', async () => {
    const { cfg, weights } = await load('tiny-qwen2');
    const { hiddenSize: H, headDim: D } = cfg; // 4 heads, 2 KV heads, intermediate 160
    const whole = async (n: string) => readWhole(weights, n);
    const p = 'model.layers.1';
    const q = await whole(`${p}.self_attn.q_proj.weight`), k = await whole(`${p}.self_attn.k_proj.weight`), v = await whole(`${p}.self_attn.v_proj.weight`);
    const qb = await whole(`${p}.self_attn.q_proj.bias`), kb = await whole(`${p}.self_attn.k_proj.bias`), vb = await whole(`${p}.self_attn.v_proj.bias`);
    const o = await whole(`${p}.self_attn.o_proj.weight`), gate = await whole(`${p}.mlp.gate_proj.weight`), up = await whole(`${p}.mlp.up_proj.weight`);
    const down = await whole(`${p}.mlp.down_proj.weight`), embed = await whole('model.embed_tokens.weight');
    for (let rank = 0; rank < 2; rank++) {
      const spec = buildDecoderProgram(cfg, options(weights, rank, 2));
      const nH = 2, nKV = 1, I = 80;
      expect(tensor(spec, `${p}.self_attn.qkv_proj.weight`).shape).toEqual([(nH + 2 * nKV) * D, H]);
      expect(tensor(spec, `${p}.self_attn.qkv_proj.bias`).shape).toEqual([(nH + 2 * nKV) * D]);
      expect(tensor(spec, `${p}.self_attn.o_proj.weight`).shape).toEqual([H, nH * D]);
      expect(tensor(spec, `${p}.mlp.gate_up_proj.weight`).shape).toEqual([2 * I, H]);
      expect(tensor(spec, `${p}.mlp.down_proj.weight`).shape).toEqual([H, I]);
      expect(tensor(spec, `${p}.self_attn.k_cache`).shape).toEqual([KV.numBlocks, KV.blockSize, nKV, D]);
      const rope = spec.ops.find((op) => op.op === 'rope_kv_write')!;
      const attention = spec.ops.find((op) => op.op === 'attention')!;
      expect(rope.params).toMatchObject({ num_heads: nH, num_kv_heads: nKV, head_dim: D });
      expect(attention.params).toMatchObject({ num_heads: nH, num_kv_heads: nKV, head_dim: D });

      // q heads [2 rank, 2 rank + 2), KV head rank: rows of q, k, v (and their biases) stacked.
      const qkv = await readWeight(tensor(spec, `${p}.self_attn.qkv_proj.weight`));
      expect([...qkv]).toEqual([...cut(q, rank * nH * D, nH * D, 0, H), ...cut(k, rank * D, D, 0, H), ...cut(v, rank * D, D, 0, H)]);
      const qkvBias = await readWeight(tensor(spec, `${p}.self_attn.qkv_proj.bias`));
      expect([...qkvBias]).toEqual([...cut(qb, rank * nH * D, nH * D, 0, 1), ...cut(kb, rank * D, D, 0, 1), ...cut(vb, rank * D, D, 0, 1)]);
      // o_proj and down_proj: the matching columns (strided reads).
      expect([...(await readWeight(tensor(spec, `${p}.self_attn.o_proj.weight`)))]).toEqual(cut(o, 0, H, rank * nH * D, nH * D));
      expect([...(await readWeight(tensor(spec, `${p}.mlp.down_proj.weight`)))]).toEqual(cut(down, 0, H, rank * I, I));
      // gate then up, the same rows of each.
      expect([...(await readWeight(tensor(spec, `${p}.mlp.gate_up_proj.weight`)))]).toEqual([...cut(gate, rank * I, I, 0, H), ...cut(up, rank * I, I, 0, H)]);
      // Replicated: the embedding (and lm_head) whole on every rank.
      expect([...(await readWeight(tensor(spec, 'model.embed_tokens.weight')))]).toEqual([...embed.values]);
      expect(tensor(spec, 'lm_head.weight').shape).toEqual([cfg.vocabSize, H]);
    }
  });

  it('the ranks together hold every weight element exactly once (replicated KV heads: once per replica)', async () => {
    const { cfg, weights } = await load('tiny-llama'); // 4 heads, 2 KV heads: TP=4 replicates each KV head twice
    const p = 'model.layers.0';
    const o = await readWhole(weights, `${p}.self_attn.o_proj.weight`);
    const k = await readWhole(weights, `${p}.self_attn.k_proj.weight`);
    const D = cfg.headDim, H = cfg.hiddenSize;
    const oColumns: number[][] = Array.from({ length: H }, () => []);
    for (let rank = 0; rank < 4; rank++) {
      const spec = buildDecoderProgram(cfg, options(weights, rank, 4));
      const shard = await readWeight(tensor(spec, `${p}.self_attn.o_proj.weight`));
      for (let r = 0; r < H; r++) oColumns[r]!.push(...shard.subarray(r * D, (r + 1) * D));
      const qkv = await readWeight(tensor(spec, `${p}.self_attn.qkv_proj.weight`));
      const kRows = [...qkv.subarray(D * H, 2 * D * H)]; // after the rank's one q head
      expect(kRows).toEqual(cut(k, Math.floor(rank / 2) * D, D, 0, H));
    }
    expect(oColumns.flat()).toEqual([...o.values]);
  });

  it('row-parallel biases are added by rank 0 only (summed once)', async () => {
    const { cfg, weights } = await load('tiny-llama');
    const biased = { ...cfg, oProjBias: false, mlpBias: false };
    // The tiny models have no o_proj / down biases; a dummy build shows which rank declares them.
    const names = (rank: number) =>
      buildDecoderProgram({ ...biased, oProjBias: true, mlpBias: true }, { ...options(weights, rank, 2), weights: 'dummy' })
        .tensors.map((t) => t.name)
        .filter((n) => n.endsWith('o_proj.bias') || n.endsWith('down_proj.bias'));
    expect(names(0)).toHaveLength(2 * cfg.numLayers);
    expect(names(1)).toEqual([]);
  });
});
