import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildDecoderProgram, DUMMY_WEIGHT_STD, LLAMA_ACTIVATIONS } from '../../../models/llama.ts';
import type { DecoderBuildOptions } from '../../../models/llama.ts';
import type { DType, ProgramSpec, TensorDecl } from '../../../src/device/program.ts';
import { parseDecoderConfig, readDecoderConfig, SUPPORTED_ARCHITECTURES } from '../../../src/model/hf-config.ts';
import type { DecoderConfig } from '../../../src/model/hf-config.ts';
import { ARCHITECTURES, architectureFor, buildModelProgram } from '../../../src/model/registry.ts';
import { computeRope } from '../../../src/model/rope.ts';
import { DIM, INPUT, OUTPUT, STATE } from '../../../src/model/step-io.ts';
import { openWeights } from '../../../src/model/weights.ts';
import type { WeightSource } from '../../../src/model/weights.ts';
import { TINY_MODEL_NAMES, tinyModelDir } from '../../fixtures/tiny-models.ts';
import type { TinyModelName } from '../../fixtures/tiny-models.ts';
import { checkProgram } from './program-check.ts';
import { HAS_SHARED_MODELS, SHARED_MODELS, SHARED_SKIP_REASON } from '../../helpers/paths.ts';

const LIMITS = { maxNumTokens: 256, maxNumSeqs: 8, maxBlocksPerSeq: 32, maxTopLogprobs: 20 };
const KV = { numBlocks: 64, blockSize: 16, dtype: 'f32' as DType };
const options = (weights: WeightSource | 'dummy', extra: Partial<DecoderBuildOptions> = {}): DecoderBuildOptions => ({
  weights, computeDtype: 'f32', weightDtype: 'auto', kv: KV, limits: LIMITS, ...extra,
});

async function loadTiny(name: TinyModelName): Promise<{ cfg: DecoderConfig; weights: WeightSource; spec: ProgramSpec }> {
  const dir = await tinyModelDir(name);
  const cfg = await readDecoderConfig(dir);
  const weights = await openWeights(dir);
  return { cfg, weights, spec: buildDecoderProgram(cfg, options(weights)) };
}

const tensor = (spec: ProgramSpec, name: string): TensorDecl => {
  const t = spec.tensors.find((x) => x.name === name);
  if (!t) throw new Error(`no tensor ${name}`);
  return t;
};
const segmentsOf = (t: TensorDecl) => (t.init?.kind === 'file' ? t.init.segments : []);

describe('buildDecoderProgram on the tiny models', () => {
  for (const name of TINY_MODEL_NAMES) {
    it(`${name}: well formed per ops.h (operands, shapes, dtypes, params, data flow)`, async () => {
      const { spec } = await loadTiny(name);
      expect(checkProgram(spec)).toEqual([]);
    });
  }

  it('declares every step-io input and output with its dtype and symbolic shape', async () => {
    const { spec } = await loadTiny('tiny-llama');
    const S = DIM.numSeqs, T = DIM.numTokens, R = DIM.numProcessedSeqs;
    const expected: Record<string, [DType, (string | number)[]]> = {
      [INPUT.inputIds]: ['i32', [T]], [INPUT.tokenSources]: ['i32', [T]], [INPUT.positions]: ['i32', [T]], [INPUT.slotMapping]: ['i32', [T]],
      [INPUT.blockTables]: ['i32', [S, DIM.maxBlocksPerSeq]], [INPUT.seqLens]: ['i32', [S]], [INPUT.queryStartLoc]: ['i32', ['numSeqs+1']],
      [INPUT.logitsIndices]: ['i32', [S]], [INPUT.temperature]: ['f32', [S]], [INPUT.topK]: ['i32', [S]], [INPUT.topP]: ['f32', [S]],
      [INPUT.minP]: ['f32', [S]], [INPUT.seeds]: ['u64', [S]], [INPUT.sampleCounters]: ['i32', [S]],
      // process_logits, over numProcessedSeqs (R) rows.
      [INPUT.logitsFlags]: ['i32', [R]], [INPUT.penalties]: ['f32', [R, 3]],
      [INPUT.penaltyTokenIds]: ['i32', [R, DIM.numPenaltyTokens]], [INPUT.penaltyTokenCounts]: ['i32', [R, DIM.numPenaltyTokens]],
      [INPUT.penaltyExtraIds]: ['i32', [R]], [INPUT.penaltyExtraSources]: ['i32', [R]],
      [INPUT.biasIds]: ['i32', [R, DIM.numBiasTokens]], [INPUT.biasValues]: ['f32', [R, DIM.numBiasTokens]],
      [INPUT.allowedMask]: ['u32', [R, DIM.maskWords]],
    };
    const outputs: Record<string, [DType, (string | number)[]]> = {
      [OUTPUT.sampledIds]: ['i32', [S]], [OUTPUT.sampledLogprobs]: ['f32', [S]],
      [OUTPUT.topIds]: ['i32', [S, DIM.numTopLogprobs]], [OUTPUT.topLogprobs]: ['f32', [S, DIM.numTopLogprobs]],
    };
    expect(Object.keys(expected).sort()).toEqual(Object.values(INPUT).sort());
    expect(Object.keys(outputs).sort()).toEqual(Object.values(OUTPUT).sort());
    const declared = (role: string) => spec.tensors.filter((t) => t.role === role).map((t) => t.name).sort();
    expect(declared('input')).toEqual(Object.values(INPUT).sort());
    expect(declared('output')).toEqual(Object.values(OUTPUT).sort());
    for (const [name, [dtype, shape]] of [...Object.entries(expected), ...Object.entries(outputs)]) {
      expect({ name, dtype: tensor(spec, name).dtype, shape: tensor(spec, name).shape }).toEqual({ name, dtype, shape });
    }
    // Penalty lists: min(vocab 512, context 32 blocks × 16); bias lists: MAX_BIAS_TOKENS; mask: 512 / 32 words.
    expect(spec.dims).toEqual({
      numTokens: 256, numSeqs: 8, maxBlocksPerSeq: 32, numTopLogprobs: 20,
      numProcessedSeqs: 8, numPenaltyTokens: 512, numBiasTokens: 1024, maskWords: 16,
    });
  });

  it('follows the vLLM op order per layer and ends gather → norm → lm_head → process_logits → sample', async () => {
    const { spec, cfg } = await loadTiny('tiny-llama');
    const layer = ['rmsnorm', 'matmul', 'rope_kv_write', 'attention', 'matmul', 'rmsnorm', 'matmul', 'silu_mul', 'matmul'];
    const expected = [
      'select_tokens', 'select_tokens', 'embedding',
      ...Array.from({ length: cfg.numLayers }, () => layer).flat(),
      'gather_rows', 'gather_rows', 'rmsnorm', 'matmul', 'process_logits', 'sample', 'select_tokens',
    ];
    expect(spec.ops.map((o) => o.op)).toEqual(expected);
    // Ids from the host, or from the previous step's samples kept on the device (async scheduling).
    expect(spec.ops[0]).toMatchObject({ src: [INPUT.inputIds, INPUT.tokenSources, STATE.previousSampledIds], dst: ['resolved_ids'] });
    // The penalties' pending output tokens, resolved the same way before this step's samples replace them.
    expect(spec.ops[1]).toMatchObject({ src: [INPUT.penaltyExtraIds, INPUT.penaltyExtraSources, STATE.previousSampledIds], dst: ['penalty_extra_resolved'] });
    expect(spec.ops[2]).toMatchObject({ src: ['model.embed_tokens.weight', 'resolved_ids'], dst: ['hidden'] });
    expect(spec.ops.at(-1)).toMatchObject({ src: [OUTPUT.sampledIds, null, null], dst: [STATE.previousSampledIds] });
    // Layer 0 normalises the embeddings and copies them to the residual; later layers fuse the add.
    expect(spec.ops[3]).toMatchObject({ src: ['hidden', null, 'model.layers.0.input_layernorm.weight'], dst: ['normed', 'residual'], params: { add_residual: 0, eps: 1e-5 } });
    expect(spec.ops[12]).toMatchObject({ src: ['hidden', 'residual', 'model.layers.1.input_layernorm.weight'], dst: ['normed', 'residual'], params: { add_residual: 1 } });
    const last = spec.ops.slice(-7);
    expect(last[0]).toMatchObject({ src: ['hidden', INPUT.logitsIndices], dst: ['last_hidden'] });
    expect(last[1]).toMatchObject({ src: ['residual', INPUT.logitsIndices], dst: ['last_residual'] });
    expect(last[2]).toMatchObject({ src: ['last_hidden', 'last_residual', 'model.norm.weight'], dst: ['last_normed', 'last_residual'], params: { add_residual: 1 } });
    expect(last[4]).toMatchObject({
      src: [INPUT.logitsFlags, INPUT.penalties, INPUT.penaltyTokenIds, INPUT.penaltyTokenCounts, 'penalty_extra_resolved', INPUT.biasIds, INPUT.biasValues, INPUT.allowedMask],
      dst: ['logits'],
    });
    expect(last[5]).toMatchObject({
      src: ['logits', ...[INPUT.temperature, INPUT.topK, INPUT.topP, INPUT.minP, INPUT.seeds, INPUT.sampleCounters]],
      dst: [OUTPUT.sampledIds, OUTPUT.sampledLogprobs, OUTPUT.topIds, OUTPUT.topLogprobs],
      params: { num_top_logprobs: 20 },
    });
    expect(tensor(spec, 'logits')).toMatchObject({ dtype: 'f32', shape: ['numSeqs', 512] });
  });

  it('reuses a fixed set of activations whatever the depth', async () => {
    const { cfg, weights } = await loadTiny('tiny-llama3');
    const activations = (spec: ProgramSpec) => spec.tensors.filter((t) => t.role === 'activation').map((t) => t.name).sort();
    const deep = buildDecoderProgram({ ...cfg, numLayers: 3 }, options('dummy'));
    const shallow = buildDecoderProgram({ ...cfg, numLayers: 1 }, options('dummy'));
    expect(activations(deep)).toEqual(Object.values(LLAMA_ACTIVATIONS).sort());
    expect(activations(shallow)).toEqual(activations(deep));
    // K and V per layer, plus the previous step's samples.
    expect(buildDecoderProgram(cfg, options(weights)).tensors.filter((t) => t.role === 'state')).toHaveLength(2 * 3 + 1);
  });

  it('fuses q, k, v (in that order) into one qkv weight [(nH + 2 nKV) D, H] and gate, up into gate_up', async () => {
    const { spec, weights, cfg } = await loadTiny('tiny-mistral');
    const qkv = tensor(spec, 'model.layers.1.self_attn.qkv_proj.weight');
    expect(qkv.shape).toEqual([(4 + 2 * 1) * 32, 96]);
    const part = (n: string) => weights.get(`model.layers.1.${n}.weight`).segment;
    expect(segmentsOf(qkv)).toEqual([part('self_attn.q_proj'), part('self_attn.k_proj'), part('self_attn.v_proj')]);
    expect(segmentsOf(tensor(spec, 'model.layers.1.mlp.gate_up_proj.weight'))).toEqual([part('mlp.gate_proj'), part('mlp.up_proj')]);
    // head_dim 32 ≠ hidden 96 / 4 heads: o_proj is [H, nH D] = [96, 128].
    expect(tensor(spec, 'model.layers.0.self_attn.o_proj.weight').shape).toEqual([96, 128]);
    const rope = spec.ops.find((o) => o.op === 'rope_kv_write')!;
    expect(rope.params).toEqual({ num_heads: 4, num_kv_heads: 1, head_dim: 32, rotary_dim: 32 });
    const attention = spec.ops.find((o) => o.op === 'attention')!;
    expect(attention.params).toEqual({ scale: 1 / Math.sqrt(32), num_heads: 4, num_kv_heads: 1, head_dim: 32, block_size: 16 });
    expect(cfg.maxModelLen).toBe(256); // sliding window 256 < 1024 positions
    expect(tensor(spec, 'model.layers.0.self_attn.k_cache')).toMatchObject({ role: 'state', dtype: 'f32', shape: [64, 16, 1, 32] });
  });

  it('Qwen2: q, k, v biases fused into one qkv bias, in q, k, v order; no o_proj bias', async () => {
    const { spec, weights } = await loadTiny('tiny-qwen2');
    for (let i = 0; i < 2; i++) {
      const bias = tensor(spec, `model.layers.${i}.self_attn.qkv_proj.bias`);
      expect(bias.shape).toEqual([(4 + 2 * 2) * 16]);
      const part = (n: string) => weights.get(`model.layers.${i}.self_attn.${n}.bias`).segment;
      expect(segmentsOf(bias)).toEqual([part('q_proj'), part('k_proj'), part('v_proj')]);
      const qkvMatmul = spec.ops.find((o) => o.op === 'matmul' && o.src[1] === `model.layers.${i}.self_attn.qkv_proj.weight`)!;
      expect(qkvMatmul.src[2]).toBe(bias.name);
      const oMatmul = spec.ops.find((o) => o.op === 'matmul' && o.src[1] === `model.layers.${i}.self_attn.o_proj.weight`)!;
      expect(oMatmul.src[2]).toBeNull();
    }
    const { spec: llama } = await loadTiny('tiny-llama');
    expect(llama.tensors.some((t) => t.name.endsWith('.bias'))).toBe(false);
  });

  it('tied models multiply by the embedding table; untied ones load lm_head.weight', async () => {
    const lmHeadMatmul = (spec: ProgramSpec) => spec.ops.filter((o) => o.op === 'matmul').at(-1)!;
    const tied = await loadTiny('tiny-llama');
    expect(lmHeadMatmul(tied.spec).src).toEqual(['last_normed', 'model.embed_tokens.weight', null]);
    expect(tied.spec.tensors.some((t) => t.name === 'lm_head.weight')).toBe(false);
    const untied = await loadTiny('tiny-llama3');
    expect(lmHeadMatmul(untied.spec).src).toEqual(['last_normed', 'lm_head.weight', null]);
    expect(segmentsOf(tensor(untied.spec, 'lm_head.weight'))).toEqual([untied.weights.get('lm_head.weight').segment]);
  });

  it('keeps the checkpoint dtype with weightDtype auto and converts when one is named', async () => {
    const { cfg, weights, spec } = await loadTiny('tiny-llama3');
    const weightDtypes = (s: ProgramSpec) => new Set(s.tensors.filter((t) => t.role === 'weight' && t.init?.kind === 'file').map((t) => t.dtype));
    expect(weightDtypes(spec)).toEqual(new Set(['bf16']));
    const asF32 = buildDecoderProgram(cfg, options(weights, { weightDtype: 'f32' }));
    expect(weightDtypes(asF32)).toEqual(new Set(['f32']));
    expect(segmentsOf(tensor(asF32, 'lm_head.weight'))[0]!.dtype).toBe('bf16'); // the loader converts
    expect(tensor(asF32, 'rope.inv_freq').dtype).toBe('f32');
    const bf16Activations = buildDecoderProgram(cfg, options(weights, { computeDtype: 'bf16', kv: { ...KV, dtype: 'bf16' } }));
    expect(tensor(bf16Activations, 'hidden').dtype).toBe('bf16');
    expect(tensor(bf16Activations, 'logits').dtype).toBe('f32');
    expect(tensor(bf16Activations, 'model.layers.2.self_attn.v_cache').dtype).toBe('bf16');
    expect(checkProgram(bf16Activations)).toEqual([]);
  });

  it('puts the llama3-scaled inverse frequencies in the program', async () => {
    const { cfg, spec } = await loadTiny('tiny-llama3');
    const init = tensor(spec, 'rope.inv_freq').init;
    expect(init?.kind).toBe('data');
    expect(Array.from(init?.kind === 'data' ? init.data : [])).toEqual(Array.from(computeRope(cfg.rope, cfg.headDim).invFreq));
    expect(cfg.rope.type).toBe('llama3');
  });
});

describe('dummy weights (--load-format dummy)', () => {
  it('gives every weight a distinct seeded random init of std 0.02 in the config dtype', async () => {
    const cfg = await readDecoderConfig(await tinyModelDir('tiny-mistral'));
    const spec = buildDecoderProgram(cfg, options('dummy', { seed: 7 }));
    expect(checkProgram(spec)).toEqual([]);
    const weights = spec.tensors.filter((t) => t.role === 'weight' && t.name !== 'rope.inv_freq');
    const seeds = weights.map((t) => (t.init?.kind === 'random' ? t.init.seed : -1));
    expect(new Set(seeds).size).toBe(weights.length);
    expect(Math.min(...seeds)).toBe(7);
    for (const t of weights) expect(t).toMatchObject({ dtype: 'f16', init: { kind: 'random', std: DUMMY_WEIGHT_STD } });
  });
});

describe('checkpoint mismatches fail with the tensor named', () => {
  it('a config that disagrees with the weights', async () => {
    const { cfg, weights } = await loadTiny('tiny-llama');
    expect(() => buildDecoderProgram({ ...cfg, numKvHeads: 4 }, options(weights))).toThrow(
      /tensor "model.layers.0.self_attn.k_proj.weight" has shape \[32, 64\], but config.json implies \[64, 64\]/,
    );
  });

  it('an untied config over a checkpoint without lm_head.weight', async () => {
    const { cfg, weights } = await loadTiny('tiny-llama');
    expect(() => buildDecoderProgram({ ...cfg, tieWordEmbeddings: false }, options(weights))).toThrow(/has no tensor "lm_head.weight"/);
  });

  it('bad limits and dtypes', async () => {
    const { cfg } = await loadTiny('tiny-llama');
    expect(() => buildDecoderProgram(cfg, options('dummy', { limits: { ...LIMITS, maxNumSeqs: 0 } }))).toThrow(/maxNumSeqs must be a positive integer/);
    expect(() => buildDecoderProgram(cfg, options('dummy', { kv: { ...KV, dtype: 'i32' } }))).toThrow(/kv.dtype must be f32, f16 or bf16/);
  });
});

describe('the structural checker catches broken programs', () => {
  it('reports swapped operands, a missing input, a dead tensor and a read before write', async () => {
    const { spec } = await loadTiny('tiny-llama');
    const qkvIndex = spec.ops.findIndex((o) => o.op === 'rope_kv_write');
    const swapped = structuredClone(spec);
    swapped.ops[qkvIndex]!.src = [INPUT.positions, 'qkv', 'rope.inv_freq', INPUT.slotMapping];
    expect(checkProgram(swapped).join('\n')).toMatch(/positions is i32|qkv row/);
    const missingInput = { ...spec, tensors: spec.tensors.filter((t) => t.name !== INPUT.seqLens) };
    expect(checkProgram(missingInput).join('\n')).toMatch(/undeclared tensor seq_lens/);
    const dead = { ...spec, tensors: [...spec.tensors, { name: 'unused', dtype: 'f32' as DType, shape: [1], role: 'activation' as const }] };
    expect(checkProgram(dead)).toEqual(['tensor unused is declared but no op uses it']);
    // The first layer norm before the embedding that writes its input.
    const reordered = { ...spec, ops: [spec.ops[0]!, spec.ops[1]!, spec.ops[3]!, spec.ops[2]!, ...spec.ops.slice(4)] };
    expect(checkProgram(reordered).join('\n')).toMatch(/reads hidden before any op writes it/);
  });
});

describe('registry', () => {
  it('has a builder for every architecture the config parser accepts', () => {
    expect(Object.keys(ARCHITECTURES).sort()).toEqual([...SUPPORTED_ARCHITECTURES].sort());
    for (const arch of SUPPORTED_ARCHITECTURES) expect(architectureFor(arch).name).toBe(arch);
    expect(() => architectureFor('GPT2LMHeadModel')).toThrow(/supported architectures: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM/);
  });

  it('builds through the entry of the config architecture', async () => {
    const dir = await tinyModelDir('tiny-qwen2');
    const raw: unknown = JSON.parse(await readFile(join(dir, 'config.json'), 'utf-8'));
    const cfg = architectureFor('Qwen2ForCausalLM').parseConfig(raw);
    expect(cfg).toEqual(parseDecoderConfig(raw));
    const spec = buildModelProgram(cfg, options(await openWeights(dir)));
    expect(spec.tensors.some((t) => t.name === 'model.layers.1.self_attn.qkv_proj.bias')).toBe(true);
  });
});

describe.skipIf(!HAS_SHARED_MODELS)(`programs of ../shared/models${HAS_SHARED_MODELS ? '' : ` (skipped: ${SHARED_SKIP_REASON})`}`, () => {
  for (const name of ['stories260K', 'tiny-llama31-random']) {
    it(`${name} builds a well-formed program`, async () => {
      const dir = join(SHARED_MODELS, name);
      const cfg = await readDecoderConfig(dir);
      const spec = buildDecoderProgram(cfg, options(await openWeights(dir)));
      expect(checkProgram(spec)).toEqual([]);
      expect(spec.tensors.filter((t) => t.role === 'state')).toHaveLength(2 * cfg.numLayers + 1);
    });
  }
});
