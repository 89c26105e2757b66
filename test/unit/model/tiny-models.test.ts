import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDecoderConfig, readDecoderConfig } from '../../../src/model/hf-config.ts';
import { computeRope } from '../../../src/model/rope.ts';
import { readSafetensorsHeader, readTensorBytes } from '../../../src/model/safetensors.ts';
import {
  bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits, TINY_MODEL_NAMES, TINY_MODELS, tinyModelConfig, tinyModelDir, TOKENIZER_FILES, writeTinyModel,
} from '../../fixtures/tiny-models.ts';
import type { TinyModelName } from '../../fixtures/tiny-models.ts';
import { REPO_ROOT, scratchDir } from '../../helpers/paths.ts';

/**
 * sha256 of the generated files at the default seed. The golden outputs in test/fixtures/golden were computed
 * from exactly these bytes: if the generator changes, these fail — regenerate the golden files with
 * scripts/make-golden.py, update the hashes and bump TINY_GENERATOR_VERSION.
 */
const PINNED_SHA256: Record<TinyModelName, { weights: string; config: string }> = {
  'tiny-llama': { weights: 'bba4b89f23fc5f926915bc24e8400f56c6b955f9d9fa4db6960c18a5d07e9675', config: 'f6fd915b5b1f05907e32dedeeb394ce03fcf9180f65da60c9ede9253c5363879' },
  'tiny-llama3': { weights: '225706d793239cb1d75de50ac9b87920697d8b839f8e8ccdd64d268df96003f8', config: '44471adb3f557a52f7d1f736fa351165bbef07818eed72e852e928d406d89116' },
  'tiny-qwen2': { weights: '2239aa445a6cc958c1978338e1b395c68c3b0952302131beca1a45ada800c1f9', config: '4c08931ba20848555f89fd715ca7718fef5f4e06eed00da4ce3afe51394c4973' },
  'tiny-mistral': { weights: 'cd34709b1dfd9f74cdb8ff66faade0fa35a28d3245eb4bcfad6749dbdc0743c5', config: 'ed329d98f0d3bde589d09d960f9f4b395e7287b54fc8eee2a524a0a822f63ab1' },
};

const sha256 = async (path: string) => createHash('sha256').update(await readFile(path)).digest('hex');

describe('tiny model generation is deterministic', () => {
  it('writes the pinned bytes for the default seed, the same twice over', async () => {
    const [a, b] = [await scratchDir('tiny-a'), await scratchDir('tiny-b')];
    for (const name of TINY_MODEL_NAMES) {
      await writeTinyModel(name, join(a, name));
      await writeTinyModel(name, join(b, name));
      for (const file of ['model.safetensors', 'config.json', 'generation_config.json', ...TOKENIZER_FILES]) {
        expect(await sha256(join(a, name, file)), `${name}/${file}`).toBe(await sha256(join(b, name, file)));
      }
      expect(await sha256(join(a, name, 'model.safetensors')), `${name} weights`).toBe(PINNED_SHA256[name].weights);
      expect(await sha256(join(a, name, 'config.json')), `${name} config`).toBe(PINNED_SHA256[name].config);
    }
  });

  it('gives other bytes for another seed, and the cached tinyModelDir copy matches a fresh one', async () => {
    const dir = await scratchDir('tiny-seed');
    await writeTinyModel('tiny-llama', join(dir, 'seed2'), { seed: 2 });
    expect(await sha256(join(dir, 'seed2', 'model.safetensors'))).not.toBe(PINNED_SHA256['tiny-llama'].weights);
    expect(await sha256(join(await tinyModelDir('tiny-qwen2'), 'model.safetensors'))).toBe(PINNED_SHA256['tiny-qwen2'].weights);
  });
});

describe('tiny model contents', () => {
  it('configs parse into the intended variants, in both config forms', async () => {
    const parsed = Object.fromEntries(TINY_MODEL_NAMES.map((n) => [n, parseDecoderConfig(tinyModelConfig(TINY_MODELS[n]))]));
    expect(parsed['tiny-llama']).toMatchObject({ numHeads: 4, numKvHeads: 2, tieWordEmbeddings: true, rope: { type: 'default' }, checkpointDtype: 'f32' });
    expect(parsed['tiny-llama3']).toMatchObject({ tieWordEmbeddings: false, checkpointDtype: 'bf16', rope: { type: 'llama3', originalMaxPositionEmbeddings: 32 } });
    expect(parsed['tiny-qwen2']).toMatchObject({ architecture: 'Qwen2ForCausalLM', attentionBias: true, tieWordEmbeddings: false, slidingWindow: null });
    expect(parsed['tiny-mistral']).toMatchObject({ architecture: 'MistralForCausalLM', headDim: 32, hiddenSize: 96, checkpointDtype: 'f16', maxModelLen: 256 });
    expect('rope_parameters' in tinyModelConfig(TINY_MODELS['tiny-llama'])).toBe(true);
    expect('rope_parameters' in tinyModelConfig(TINY_MODELS['tiny-mistral'])).toBe(true);
    expect(tinyModelConfig(TINY_MODELS['tiny-llama3'])).toMatchObject({ rope_theta: 500000, rope_scaling: { rope_type: 'llama3' } });
    expect(tinyModelConfig(TINY_MODELS['tiny-qwen2'])).toMatchObject({ rope_theta: 1000000, rope_scaling: null });
    for (const name of TINY_MODEL_NAMES) expect(parsed[name]!.vocabSize).toBe(512);
  });

  it('stores weights in the variant dtype, norms near 1 and projections within ±0.25', async () => {
    for (const [name, storedAs, decode] of [['tiny-llama3', 'bf16', bf16BitsToF32], ['tiny-mistral', 'f16', f16BitsToF32]] as const) {
      const header = await readSafetensorsHeader(join(await tinyModelDir(name), 'model.safetensors'));
      expect(new Set(header.tensors.map((t) => t.dtype))).toEqual(new Set([storedAs]));
      const values = async (tensor: string) => {
        const bytes = await readTensorBytes(header.path, header.tensors.find((t) => t.name === tensor)!);
        return Array.from(new Uint16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)), decode);
      };
      const norm = await values('model.norm.weight');
      expect(Math.min(...norm)).toBeGreaterThanOrEqual(0.89); // 1 ± 0.1, then rounded to bf16 / f16
      expect(Math.max(...norm)).toBeLessThanOrEqual(1.11);
      const q = await values('model.layers.0.self_attn.q_proj.weight');
      expect(Math.max(...q.map(Math.abs))).toBeLessThanOrEqual(0.25);
      expect(new Set(q).size).toBeGreaterThan(1000); // spread over the dtype's values, not a constant
    }
    const qwen = await readDecoderConfig(await tinyModelDir('tiny-qwen2'));
    expect(qwen.attentionBias).toBe(true);
  });
});

describe('float16 / bfloat16 conversion', () => {
  const f16round = (Math as unknown as { f16round?: (x: number) => number }).f16round;

  it.skipIf(!f16round)('f32ToF16Bits rounds like Math.f16round (subnormals, ties, overflow)', () => {
    const cases = [0, -0, 1, -2.5, 65504, 65520, 1e6, 6.1e-5, 5.96e-8, 2.98e-8, 2.9802322387695312e-8, 1e-9, 0.1, 1 / 3, 1.0009765625 + 2 ** -12];
    let x = 12345;
    for (let i = 0; i < 5000; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      cases.push(Math.fround(((x / 2 ** 32) * 2 - 1) * 2 ** ((x % 40) - 28)));
    }
    for (const v of cases) expect(f16BitsToF32(f32ToF16Bits(v)), String(v)).toBe(f16round!(Math.fround(v)));
  });

  it('f32ToBf16Bits rounds to nearest even', () => {
    expect(f32ToBf16Bits(1)).toBe(0x3f80);
    expect(bf16BitsToF32(f32ToBf16Bits(1 + 2 ** -8))).toBe(1); // tie → even
    expect(bf16BitsToF32(f32ToBf16Bits(1 + 3 * 2 ** -8))).toBe(1 + 2 ** -6); // tie → even (up)
    expect(bf16BitsToF32(f32ToBf16Bits(Math.fround(1 + 2 ** -8 + 2 ** -20)))).toBe(1 + 2 ** -7);
    expect(bf16BitsToF32(f32ToBf16Bits(-3.140625))).toBe(-3.140625);
  });
});

const GOLDEN_DIR = join(REPO_ROOT, 'test', 'fixtures', 'golden');
for (const name of TINY_MODEL_NAMES) {
  const path = join(GOLDEN_DIR, `${name}.json`);
  const present = existsSync(path);
  describe.skipIf(!present)(`golden/${name}.json${present ? '' : ' (skipped: not generated yet; see scripts/make-golden.py)'}`, () => {
    it('was computed from these exact weights, with RoPE frequencies equal to ours bit for bit', async () => {
      const golden = JSON.parse(readFileSync(path, 'utf-8')) as {
        weights_sha256: string; inv_freq: number[]; greedy_new_tokens: number;
        cases: { prompt_ids: number[]; output_ids: number[]; top5_logprobs: [number, number][][] }[];
      };
      expect(golden.weights_sha256).toBe(PINNED_SHA256[name].weights);
      const cfg = await readDecoderConfig(await tinyModelDir(name));
      expect(golden.inv_freq).toEqual(Array.from(computeRope(cfg.rope, cfg.headDim).invFreq));
      expect(golden.cases).toHaveLength(8);
      // Prompts tokenized with tok512's tokenizer.json, as Updraft tokenizes them.
      expect(golden.cases[1]!.prompt_ids).toEqual([1, 403, 407, 261, 378]); // "Once upon a time"
      for (const c of golden.cases) {
        expect(c.prompt_ids[0]).toBe(1);
        expect(c.output_ids).toHaveLength(golden.greedy_new_tokens);
        expect(c.top5_logprobs).toHaveLength(golden.greedy_new_tokens);
        expect(c.top5_logprobs.map((top) => top[0]![0])).toEqual(c.output_ids);
      }
    });
  });
}
