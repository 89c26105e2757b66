/**
 * The safetensors file format: an 8-byte little-endian header length N, N bytes of JSON header, then the
 * tensor data. The reader only ever reads the header (checkpoints are many gigabytes; the native loader
 * reads tensor bytes itself from the offsets we return). The writer produces files that the Rust
 * `safetensors` crate (and so HF transformers) accepts.
 *
 * Validation mirrors the Rust crate's: the data offsets of all tensors must tile the data section
 * exactly (no holes, no overlaps), and each tensor's byte length must equal numel × element size.
 */
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import type { DType } from '../device/program.ts';

/** Element sizes in bits of every dtype the format defines (sub-byte types included for validation). */
const STORED_DTYPE_BITS: Record<string, number> = {
  BOOL: 8, U8: 8, I8: 8, F8_E4M3: 8, F8_E5M2: 8, F8_E8M0: 8, F4: 4, F6_E2M3: 6, F6_E3M2: 6,
  I16: 16, U16: 16, F16: 16, BF16: 16, I32: 32, U32: 32, F32: 32, F64: 64, I64: 64, U64: 64, C64: 64,
};

/** The stored dtypes we can load, and what they are called in ProgramSpec. */
const STORED_TO_DTYPE: Record<string, DType> = {
  F32: 'f32', F16: 'f16', BF16: 'bf16', I32: 'i32', U32: 'u32', U64: 'u64',
};
const DTYPE_TO_STORED: Record<DType, string> = {
  f32: 'F32', f16: 'F16', bf16: 'BF16', i32: 'I32', u32: 'U32', u64: 'U64', f8e4m3: 'F8_E4M3',
};

/** The safetensors crate refuses headers above 100 MB; so do we (a corrupt length would otherwise allocate). */
const MAX_HEADER_BYTES = 100_000_000;

export interface SafetensorsTensorInfo {
  name: string;
  /** Our dtype, or null when the tensor is stored in a type we cannot load (I64, F8_*, ...). */
  dtype: DType | null;
  /** The dtype string as stored ("BF16"). */
  storedDtype: string;
  shape: number[];
  /** Absolute byte offset of the tensor's data in the file. */
  offset: number;
  byteLength: number;
}

export interface SafetensorsHeader {
  path: string;
  fileSize: number;
  /** Absolute offset of the data section (8 + header length). */
  dataStart: number;
  /** In file order (ascending offset). */
  tensors: SafetensorsTensorInfo[];
  metadata: Record<string, string>;
}

export class SafetensorsFormatError extends Error {
  constructor(path: string, problem: string) {
    super(`${path}: not a valid safetensors file: ${problem}`);
    this.name = 'SafetensorsFormatError';
  }
}

async function readExactly(file: FileHandle, length: number, position: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await file.read(buffer, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return buffer.subarray(0, done);
}

/** Reads and validates the header of a safetensors file without reading any tensor data. */
export async function readSafetensorsHeader(path: string): Promise<SafetensorsHeader> {
  const file = await open(path, 'r');
  try {
    const fileSize = (await file.stat()).size;
    const bad = (problem: string) => new SafetensorsFormatError(path, problem);
    if (fileSize < 8) throw bad(`file is ${fileSize} bytes, shorter than the 8-byte header length`);
    const headerLength = (await readExactly(file, 8, 0)).readBigUInt64LE(0);
    if (headerLength > BigInt(fileSize - 8)) {
      throw bad(`header length ${headerLength} exceeds the file size ${fileSize}`);
    }
    if (headerLength > BigInt(MAX_HEADER_BYTES)) throw bad(`header length ${headerLength} exceeds 100 MB`);
    const dataStart = 8 + Number(headerLength);
    const headerBytes = await readExactly(file, Number(headerLength), 8);
    return parseHeaderJson(path, headerBytes, dataStart, fileSize);
  } finally {
    await file.close();
  }
}

function parseHeaderJson(path: string, bytes: Buffer, dataStart: number, fileSize: number): SafetensorsHeader {
  const bad = (problem: string) => new SafetensorsFormatError(path, problem);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    throw bad(`header is not UTF-8 JSON (${(err as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw bad('header is not a JSON object');

  const metadata: Record<string, string> = {};
  const tensors: SafetensorsTensorInfo[] = [];
  const dataSize = fileSize - dataStart;
  for (const [name, entry] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw bad('__metadata__ is not an object');
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== 'string') throw bad(`__metadata__.${k} is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    tensors.push(parseTensorEntry(name, entry, dataStart, dataSize, bad));
  }

  // The data offsets must tile [0, dataSize) exactly, as the safetensors crate requires.
  tensors.sort((a, b) => a.offset - b.offset || a.byteLength - b.byteLength);
  let expectedStart = dataStart;
  for (const t of tensors) {
    if (t.offset !== expectedStart) {
      const what = t.offset < expectedStart ? 'overlaps the previous tensor' : 'leaves a gap before it';
      throw bad(`tensor "${t.name}" starts at data offset ${t.offset - dataStart}, which ${what}`);
    }
    expectedStart = t.offset + t.byteLength;
  }
  if (expectedStart !== fileSize) {
    throw bad(`tensor data ends at byte ${expectedStart} but the file has ${fileSize} bytes`);
  }
  return { path, fileSize, dataStart, tensors, metadata };
}

function parseTensorEntry(
  name: string,
  entry: unknown,
  dataStart: number,
  dataSize: number,
  bad: (problem: string) => Error,
): SafetensorsTensorInfo {
  if (typeof entry !== 'object' || entry === null) throw bad(`entry "${name}" is not an object`);
  const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
  if (typeof dtype !== 'string' || !(dtype in STORED_DTYPE_BITS)) {
    throw bad(`tensor "${name}" has unknown dtype ${JSON.stringify(dtype)}`);
  }
  const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
  if (!Array.isArray(shape) || !shape.every(isCount)) throw bad(`tensor "${name}" has an invalid shape`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
    throw bad(`tensor "${name}" has invalid data_offsets`);
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin || end > dataSize) {
    throw bad(`tensor "${name}" data_offsets [${begin}, ${end}] fall outside the ${dataSize}-byte data section`);
  }
  const numel = shape.reduce((a: number, b: number) => a * b, 1);
  const expectedBytes = Math.ceil((numel * STORED_DTYPE_BITS[dtype]!) / 8);
  if (end - begin !== expectedBytes) {
    throw bad(`tensor "${name}" (${dtype} [${shape.join(', ')}]) needs ${expectedBytes} bytes but spans ${end - begin}`);
  }
  return {
    name,
    dtype: STORED_TO_DTYPE[dtype] ?? null,
    storedDtype: dtype,
    shape: shape as number[],
    offset: dataStart + begin,
    byteLength: end - begin,
  };
}

/** Reads one tensor's raw bytes (little-endian, as stored). For tests and small tensors. */
export async function readTensorBytes(path: string, info: { offset: number; byteLength: number }): Promise<Uint8Array> {
  const file = await open(path, 'r');
  try {
    const bytes = await readExactly(file, info.byteLength, info.offset);
    if (bytes.length !== info.byteLength) throw new Error(`${path}: file ends inside the tensor at ${info.offset}`);
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  } finally {
    await file.close();
  }
}

export type TensorBytes = Float32Array | Uint16Array | Int32Array | Uint32Array | BigUint64Array | Uint8Array;

export interface TensorToWrite {
  name: string;
  dtype: DType;
  shape: number[];
  /** Element values in the host's (little-endian) byte order; f16 and bf16 as raw 16-bit patterns. */
  data: TensorBytes;
}

/**
 * Writes a safetensors file: header JSON padded with spaces to a multiple of 8 bytes (so the data section
 * is 8-byte aligned), then the tensors at ascending offsets, widest dtypes first and otherwise in the
 * given order.
 */
export async function writeSafetensors(
  path: string,
  unordered: TensorToWrite[],
  metadata?: Record<string, string>,
): Promise<void> {
  // Wider elements first (stable otherwise), as the safetensors crate orders them: with the data section
  // 8-byte aligned, every tensor then starts at a multiple of its element size.
  const elementBytes = (t: TensorToWrite) => STORED_DTYPE_BITS[DTYPE_TO_STORED[t.dtype]]! / 8;
  const tensors = [...unordered].sort((a, b) => elementBytes(b) - elementBytes(a));
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header['__metadata__'] = metadata;
  const seen = new Set<string>();
  let dataOffset = 0;
  for (const t of tensors) {
    if (seen.has(t.name) || t.name === '__metadata__') throw new Error(`writeSafetensors: duplicate or reserved name "${t.name}"`);
    seen.add(t.name);
    const numel = t.shape.reduce((a, b) => a * b, 1);
    const expected = numel * (STORED_DTYPE_BITS[DTYPE_TO_STORED[t.dtype]]! / 8);
    if (t.data.byteLength !== expected) {
      throw new Error(`writeSafetensors: "${t.name}" ${t.dtype} [${t.shape.join(', ')}] needs ${expected} bytes, got ${t.data.byteLength}`);
    }
    header[t.name] = { dtype: DTYPE_TO_STORED[t.dtype], shape: t.shape, data_offsets: [dataOffset, dataOffset + expected] };
    dataOffset += expected;
  }
  const json = Buffer.from(JSON.stringify(header), 'utf-8');
  const paddedLength = Math.ceil(json.length / 8) * 8;
  const prefix = Buffer.alloc(8 + paddedLength, 0x20);
  prefix.writeBigUInt64LE(BigInt(paddedLength), 0);
  json.copy(prefix, 8);

  const file = await open(path, 'w');
  try {
    await file.write(prefix, 0, prefix.length, 0);
    let position = prefix.length;
    for (const t of tensors) {
      const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      await file.write(bytes, 0, bytes.length, position);
      position += bytes.length;
    }
  } finally {
    await file.close();
  }
}
