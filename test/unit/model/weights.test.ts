import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readSafetensorsHeader, writeSafetensors } from '../../../src/model/safetensors.ts';
import type { TensorToWrite } from '../../../src/model/safetensors.ts';
import { MissingTensorError, openWeights } from '../../../src/model/weights.ts';
import { tinyModelDir } from '../../fixtures/tiny-models.ts';
import { HAS_SHARED_MODELS, SHARED_MODELS, SHARED_SKIP_REASON, scratchDir } from '../../helpers/paths.ts';

const f32 = (name: string, ...values: number[]): TensorToWrite => ({ name, dtype: 'f32', shape: [values.length], data: new Float32Array(values) });

describe('openWeights: single model.safetensors', () => {
  it('maps every tensor name to a FileSegment of model.safetensors', async () => {
    const dir = await tinyModelDir('tiny-llama');
    const weights = await openWeights(dir);
    const header = await readSafetensorsHeader(join(dir, 'model.safetensors'));
    expect(weights.names).toEqual(header.tensors.map((t) => t.name).sort());
    for (const info of header.tensors) {
      const entry = weights.get(info.name);
      expect(entry.segment).toEqual({ path: join(dir, 'model.safetensors'), offset: info.offset, byteLength: info.byteLength, dtype: 'f32' });
      expect(entry.shape).toEqual(info.shape);
    }
    expect(weights.has('lm_head.weight')).toBe(false); // tied: the checkpoint omits it
  });

  it('reports a missing tensor with the tensors that sit beside it', async () => {
    const weights = await openWeights(await tinyModelDir('tiny-llama'));
    const error = (() => {
      try {
        weights.get('model.layers.1.self_attn.q_proj.bias');
      } catch (e) {
        return e as Error;
      }
    })();
    expect(error).toBeInstanceOf(MissingTensorError);
    expect(error!.message).toMatch(/has no tensor "model.layers.1.self_attn.q_proj.bias"/);
    expect(error!.message).toContain('model.layers.1.self_attn.k_proj.weight');
  });

  it('keeps bf16 and f16 storage dtypes in the segments', async () => {
    expect((await openWeights(await tinyModelDir('tiny-llama3'))).get('lm_head.weight').segment.dtype).toBe('bf16');
    expect((await openWeights(await tinyModelDir('tiny-mistral'))).get('model.norm.weight').dtype).toBe('f16');
  });

  it('fails clearly when a folder has no safetensors weights', async () => {
    const dir = await scratchDir('w-none');
    await writeFile(join(dir, 'pytorch_model.bin'), 'x');
    await expect(openWeights(dir)).rejects.toThrow(/no model.safetensors or model.safetensors.index.json .* safetensors checkpoints only/);
  });
});

describe('openWeights: sharded checkpoints', () => {
  async function sharded(weightMap: Record<string, string>) {
    const dir = await scratchDir('w-shards');
    await writeSafetensors(join(dir, 'model-00001-of-00002.safetensors'), [f32('a', 1, 2), f32('b', 3)]);
    await writeSafetensors(join(dir, 'model-00002-of-00002.safetensors'), [f32('c', 4, 5, 6), f32('stray', 0)]);
    await writeFile(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 24 }, weight_map: weightMap }));
    return dir;
  }

  it('resolves each tensor to its shard through weight_map', async () => {
    const dir = await sharded({ a: 'model-00001-of-00002.safetensors', b: 'model-00001-of-00002.safetensors', c: 'model-00002-of-00002.safetensors' });
    const weights = await openWeights(dir);
    expect(weights.names).toEqual(['a', 'b', 'c']); // "stray" is in a shard but not in the index
    expect(weights.get('a').segment.path).toBe(join(dir, 'model-00001-of-00002.safetensors'));
    expect(weights.get('c').segment.path).toBe(join(dir, 'model-00002-of-00002.safetensors'));
    expect(weights.get('c').segment.byteLength).toBe(12);
    const header2 = await readSafetensorsHeader(join(dir, 'model-00002-of-00002.safetensors'));
    expect(weights.get('c').segment.offset).toBe(header2.tensors.find((t) => t.name === 'c')!.offset);
  });

  it('rejects an index that names a tensor its shard lacks', async () => {
    const dir = await sharded({ a: 'model-00002-of-00002.safetensors' });
    await expect(openWeights(dir)).rejects.toThrow(/puts "a" in model-00002-of-00002.safetensors, but that shard has no such tensor/);
  });

  it('rejects an index whose shard file is missing', async () => {
    const dir = await sharded({ a: 'model-00001-of-00002.safetensors', z: 'model-00003-of-00003.safetensors' });
    await expect(openWeights(dir)).rejects.toThrow(/shard model-00003-of-00003.safetensors .* is missing/);
  });

  it('rejects shard paths that leave the folder', async () => {
    const dir = await sharded({ a: '../elsewhere.safetensors' });
    await expect(openWeights(dir)).rejects.toThrow(/lies outside/);
  });

  it('prefers model.safetensors when both it and an index exist (as transformers does)', async () => {
    const dir = await sharded({ a: 'model-00001-of-00002.safetensors' });
    await writeSafetensors(join(dir, 'model.safetensors'), [f32('single', 1)]);
    expect((await openWeights(dir)).names).toEqual(['single']);
  });

  it('rejects a stored dtype that cannot be loaded when that tensor is asked for', async () => {
    const dir = await scratchDir('w-i64');
    const header = Buffer.from(JSON.stringify({ n: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }));
    const buf = Buffer.alloc(8 + header.length + 8);
    buf.writeBigUInt64LE(BigInt(header.length));
    header.copy(buf, 8);
    await writeFile(join(dir, 'model.safetensors'), buf);
    const weights = await openWeights(dir);
    expect(() => weights.get('n')).toThrow(/stored as I64; Updraft loads F32, F16 and BF16 weights/);
  });
});

describe.skipIf(!HAS_SHARED_MODELS)(`openWeights on ../shared/models${HAS_SHARED_MODELS ? '' : ` (skipped: ${SHARED_SKIP_REASON})`}`, () => {
  it('opens both reference checkpoints', async () => {
    const stories = await openWeights(join(SHARED_MODELS, 'stories260K'));
    expect(stories.names).toHaveLength(47);
    const random = await openWeights(join(SHARED_MODELS, 'tiny-llama31-random'));
    expect(random.get('lm_head.weight').shape).toEqual([512, 128]);
  });
});
