import { createHash } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readSafetensorsHeader, readTensorBytes, SafetensorsFormatError, writeSafetensors } from '../../../src/model/safetensors.ts';
import type { TensorToWrite } from '../../../src/model/safetensors.ts';
import { HAS_SHARED_MODELS, SHARED_MODELS, SHARED_SKIP_REASON, scratchDir } from '../../helpers/paths.ts';

/** A file with a hand-written header, to test what our writer would never produce. */
async function rawFile(header: unknown, dataBytes: number, opts: { headerText?: string; lengthOverride?: bigint } = {}): Promise<string> {
  const text = Buffer.from(opts.headerText ?? JSON.stringify(header));
  const buf = Buffer.alloc(8 + text.length + dataBytes);
  buf.writeBigUInt64LE(opts.lengthOverride ?? BigInt(text.length), 0);
  text.copy(buf, 8);
  const path = join(await scratchDir('st-raw'), 'x.safetensors');
  await writeFile(path, buf);
  return path;
}

function bytesOf(data: TensorToWrite['data']): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

describe('writeSafetensors → readSafetensorsHeader round trip', () => {
  const tensors: TensorToWrite[] = [
    { name: 'half', dtype: 'f16', shape: [3], data: new Uint16Array([0x3c00, 0xc000, 0x7bff]) },
    { name: 'weights', dtype: 'f32', shape: [2, 3], data: new Float32Array([1, -2.5, 3.25, 1e-7, -0, 65504]) },
    { name: 'brain', dtype: 'bf16', shape: [2, 2], data: new Uint16Array([0x3f80, 0xbf80, 0x4049, 0x0001]) },
    { name: 'ids', dtype: 'i32', shape: [4], data: new Int32Array([-7, 0, 123456789, -2147483648]) },
    { name: 'empty', dtype: 'f32', shape: [0, 5], data: new Float32Array(0) },
    { name: 'seeds', dtype: 'u64', shape: [2], data: new BigUint64Array([2n ** 64n - 1n, 42n]) },
    { name: 'counts', dtype: 'u32', shape: [1], data: new Uint32Array([4294967295]) },
  ];

  it('returns every tensor with its dtype, shape and byte-exact data', async () => {
    const path = join(await scratchDir('st'), 'model.safetensors');
    await writeSafetensors(path, tensors, { format: 'pt', note: 'héllo' });
    const header = await readSafetensorsHeader(path);
    expect(header.metadata).toEqual({ format: 'pt', note: 'héllo' });
    expect(header.fileSize).toBe((await stat(path)).size);
    expect(header.tensors.map((t) => t.name).sort()).toEqual(tensors.map((t) => t.name).sort());
    for (const t of tensors) {
      const info = header.tensors.find((x) => x.name === t.name)!;
      expect(info.dtype).toBe(t.dtype);
      expect(info.shape).toEqual(t.shape);
      expect(info.byteLength).toBe(t.data.byteLength);
      expect(await readTensorBytes(path, info)).toEqual(bytesOf(t.data));
    }
  });

  it('pads the header with spaces to 8 bytes and aligns every tensor to its element size', async () => {
    const path = join(await scratchDir('st'), 'model.safetensors');
    await writeSafetensors(path, tensors);
    const file = await readFile(path);
    const headerLength = Number(file.readBigUInt64LE(0));
    expect(headerLength % 8).toBe(0);
    const text = file.subarray(8, 8 + headerLength).toString('utf-8');
    expect(text.trimEnd().endsWith('}')).toBe(true);
    expect(text.slice(text.trimEnd().length)).toMatch(/^ *$/);
    const header = await readSafetensorsHeader(path);
    const sizes = { f32: 4, f16: 2, bf16: 2, i32: 4, u32: 4, u64: 8, f8e4m3: 1 } as const;
    let previousEnd = header.dataStart;
    for (const t of header.tensors) {
      expect(t.offset).toBe(previousEnd); // ascending, contiguous
      expect(t.offset % sizes[t.dtype!]).toBe(0);
      previousEnd = t.offset + t.byteLength;
    }
    // Header keys follow data order, as the offsets do.
    const keys = Object.keys(JSON.parse(text)).filter((k) => k !== '__metadata__');
    expect(keys).toEqual(header.tensors.map((t) => t.name));
  });

  it('writes the same bytes for the same input', async () => {
    const dir = await scratchDir('st');
    await writeSafetensors(join(dir, 'a.safetensors'), tensors, { format: 'pt' });
    await writeSafetensors(join(dir, 'b.safetensors'), tensors, { format: 'pt' });
    const hash = async (p: string) => createHash('sha256').update(await readFile(join(dir, p))).digest('hex');
    expect(await hash('a.safetensors')).toBe(await hash('b.safetensors'));
  });

  it('rejects data whose size does not match the shape, and duplicate names', async () => {
    const path = join(await scratchDir('st'), 'bad.safetensors');
    await expect(writeSafetensors(path, [{ name: 'x', dtype: 'f32', shape: [3], data: new Float32Array(2) }])).rejects.toThrow(
      /"x" f32 \[3\] needs 12 bytes, got 8/,
    );
    const one: TensorToWrite = { name: 'x', dtype: 'f32', shape: [1], data: new Float32Array(1) };
    await expect(writeSafetensors(path, [one, one])).rejects.toThrow(/duplicate/);
  });
});

describe('readSafetensorsHeader rejects malformed files', () => {
  const entry = (dtype: string, shape: number[], begin: number, end: number) => ({ dtype, shape, data_offsets: [begin, end] });
  const cases: [string, () => Promise<string>, RegExp][] = [
    ['a file shorter than 8 bytes', async () => {
      const p = join(await scratchDir('st'), 'short.safetensors');
      await writeFile(p, Buffer.from([1, 2, 3]));
      return p;
    }, /shorter than the 8-byte header length/],
    ['a header length beyond the file', () => rawFile({}, 0, { lengthOverride: 1000n }), /header length 1000 exceeds the file size/],
    ['a header that is not JSON', () => rawFile(null, 0, { headerText: '{"a": ' }), /not UTF-8 JSON/],
    ['a header that is a JSON array', () => rawFile([], 0), /not a JSON object/],
    ['an unknown dtype', () => rawFile({ x: entry('F128', [1], 0, 16) }, 16), /unknown dtype "F128"/],
    ['a negative dimension', () => rawFile({ x: entry('F32', [-1], 0, 4) }, 4), /invalid shape/],
    ['offsets beyond the data section', () => rawFile({ x: entry('F32', [4], 0, 16) }, 8), /fall outside the 8-byte data section/],
    ['a byte length that disagrees with the shape', () => rawFile({ x: entry('F32', [3], 0, 8) }, 8), /needs 12 bytes but spans 8/],
    ['overlapping tensors', () => rawFile({ x: entry('F32', [2], 0, 8), y: entry('F32', [2], 4, 12) }, 12), /"y" .* overlaps/],
    ['a gap between tensors', () => rawFile({ x: entry('F32', [1], 0, 4), y: entry('F32', [1], 8, 12) }, 12), /"y" .* leaves a gap/],
    ['trailing bytes after the last tensor', () => rawFile({ x: entry('F32', [1], 0, 4) }, 8), /ends at byte .* but the file has/],
    ['non-string metadata', () => rawFile({ __metadata__: { n: 1 } }, 0), /__metadata__.n is not a string/],
  ];
  for (const [what, make, message] of cases) {
    it(what, async () => {
      const path = await make();
      const error = await readSafetensorsHeader(path).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SafetensorsFormatError);
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).toContain(path);
    });
  }

  it('accepts a file with a stored type we cannot load, marking it dtype null', async () => {
    const path = await rawFile({ x: entry('I64', [2], 0, 16), y: entry('F32', [1], 16, 20) }, 20);
    const header = await readSafetensorsHeader(path);
    expect(header.tensors.map((t) => [t.name, t.dtype, t.storedDtype])).toEqual([['x', null, 'I64'], ['y', 'f32', 'F32']]);
  });
});

describe.skipIf(!HAS_SHARED_MODELS)(`reference checkpoints in ../shared/models${HAS_SHARED_MODELS ? '' : ` (skipped: ${SHARED_SKIP_REASON})`}`, () => {
  it('reads stories260K: 5 layers × 9 tensors + embedding + norm, f32, tied (no lm_head)', async () => {
    const header = await readSafetensorsHeader(join(SHARED_MODELS, 'stories260K', 'model.safetensors'));
    expect(header.tensors).toHaveLength(47);
    expect(header.tensors.every((t) => t.dtype === 'f32')).toBe(true);
    const byName = new Map(header.tensors.map((t) => [t.name, t]));
    expect(byName.get('model.embed_tokens.weight')!.shape).toEqual([512, 64]);
    expect(byName.get('model.layers.4.self_attn.k_proj.weight')!.shape).toEqual([32, 64]);
    expect(byName.get('model.layers.0.mlp.gate_proj.weight')!.shape).toEqual([172, 64]);
    expect(byName.has('lm_head.weight')).toBe(false);
    const bytes = header.tensors.reduce((n, t) => n + t.byteLength, 0);
    expect(header.dataStart + bytes).toBe(header.fileSize);
    // Trained weights: norm weights are far from zero and finite.
    const norm = await readTensorBytes(header.path, byName.get('model.norm.weight')!);
    const values = new Float32Array(norm.buffer.slice(norm.byteOffset, norm.byteOffset + norm.byteLength));
    expect(values.every((v) => Number.isFinite(v) && v !== 0)).toBe(true);
  });

  it('reads tiny-llama31-random: untied lm_head [512, 128], head_dim 32 projections', async () => {
    const header = await readSafetensorsHeader(join(SHARED_MODELS, 'tiny-llama31-random', 'model.safetensors'));
    const byName = new Map(header.tensors.map((t) => [t.name, t]));
    expect(byName.get('lm_head.weight')!.shape).toEqual([512, 128]);
    expect(byName.get('model.layers.2.self_attn.q_proj.weight')!.shape).toEqual([128, 128]);
    expect(byName.get('model.layers.2.self_attn.v_proj.weight')!.shape).toEqual([64, 128]);
    expect(header.tensors).toHaveLength(3 * 9 + 3);
  });
});
