/**
 * A checkpoint folder's tensors by name: a single `model.safetensors`, or shards listed by
 * `model.safetensors.index.json` (weight_map: tensor name → shard file). Only headers are read here;
 * the native loader reads the bytes from the FileSegments we hand out.
 */
import { readFile, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import type { DType, FileSegment } from '../device/program.ts';
import { readSafetensorsHeader } from './safetensors.ts';
import type { SafetensorsTensorInfo } from './safetensors.ts';

export const SINGLE_FILE_NAME = 'model.safetensors';
export const INDEX_FILE_NAME = 'model.safetensors.index.json';

export interface WeightEntry {
  name: string;
  dtype: DType;
  shape: number[];
  segment: FileSegment;
}

export interface WeightSource {
  /** The checkpoint folder (absolute). */
  readonly dir: string;
  /** Every tensor name in the checkpoint, sorted. */
  readonly names: readonly string[];
  has(name: string): boolean;
  /** Throws MissingTensorError / UnsupportedDtypeError with the folder and near names in the message. */
  get(name: string): WeightEntry;
}

export class MissingTensorError extends Error {
  constructor(dir: string, name: string, names: readonly string[]) {
    const prefix = name.split('.').slice(0, -2).join('.');
    const near = names.filter((n) => prefix && n.startsWith(prefix)).slice(0, 8);
    super(
      `checkpoint ${dir} has no tensor "${name}"` +
        (near.length ? `; tensors under "${prefix}": ${near.join(', ')}` : `; it has ${names.length} tensors, e.g. ${names.slice(0, 5).join(', ')}`),
    );
    this.name = 'MissingTensorError';
  }
}

/** Opens a checkpoint folder (reads config-free: only safetensors headers and the shard index). */
export async function openWeights(dir: string): Promise<WeightSource> {
  const root = resolve(dir);
  const single = join(root, SINGLE_FILE_NAME);
  const index = join(root, INDEX_FILE_NAME);
  // transformers prefers the single file over the index when both exist; so do we.
  if (await isFile(single)) return sourceFromShards(root, new Map([[SINGLE_FILE_NAME, null]]));
  if (await isFile(index)) return sourceFromShards(root, await readShardIndex(root, index));
  throw new Error(
    `no ${SINGLE_FILE_NAME} or ${INDEX_FILE_NAME} in ${root}: Updraft loads safetensors checkpoints only ` +
      `(convert .bin / .pth weights with transformers' save_pretrained(safe_serialization=True))`,
  );
}

/** shard file → the tensor names the index assigns to it (null: take whatever the file holds). */
type ShardPlan = Map<string, Set<string> | null>;

async function readShardIndex(root: string, indexPath: string): Promise<ShardPlan> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(indexPath, 'utf-8'));
  } catch (err) {
    throw new Error(`${indexPath}: not valid JSON (${(err as Error).message})`);
  }
  const weightMap = (parsed as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw new Error(`${indexPath}: missing "weight_map" object`);
  }
  const plan: ShardPlan = new Map();
  for (const [name, file] of Object.entries(weightMap)) {
    if (typeof file !== 'string' || file.length === 0) throw new Error(`${indexPath}: weight_map["${name}"] is not a file name`);
    // The index comes from a downloaded repo: keep shard paths inside the folder.
    if (!resolve(root, file).startsWith(root + sep)) throw new Error(`${indexPath}: shard "${file}" lies outside ${root}`);
    let names = plan.get(file);
    if (!names) plan.set(file, (names = new Set()));
    names!.add(name);
  }
  if (plan.size === 0) throw new Error(`${indexPath}: weight_map is empty`);
  return plan;
}

async function sourceFromShards(root: string, plan: ShardPlan): Promise<WeightSource> {
  const byName = new Map<string, { path: string; info: SafetensorsTensorInfo }>();
  for (const [file, expected] of plan) {
    const path = join(root, file);
    if (!(await isFile(path))) throw new Error(`shard ${file} listed in ${INDEX_FILE_NAME} is missing from ${root}`);
    const header = await readSafetensorsHeader(path);
    const inFile = new Set(header.tensors.map((t) => t.name));
    for (const name of expected ?? []) {
      if (!inFile.has(name)) throw new Error(`${INDEX_FILE_NAME} puts "${name}" in ${file}, but that shard has no such tensor`);
    }
    for (const info of header.tensors) {
      // A shard may hold tensors the index doesn't mention; the index is authoritative.
      if (expected && !expected.has(info.name)) continue;
      if (byName.has(info.name)) throw new Error(`tensor "${info.name}" appears in two shards of ${root}`);
      byName.set(info.name, { path, info });
    }
  }
  const names = [...byName.keys()].sort();
  return {
    dir: root,
    names,
    has: (name) => byName.has(name),
    get(name) {
      const found = byName.get(name);
      if (!found) throw new MissingTensorError(root, name, names);
      const { path, info } = found;
      if (info.dtype === null) {
        throw new Error(`tensor "${name}" in ${path} is stored as ${info.storedDtype}; Updraft loads F32, F16 and BF16 weights`);
      }
      return {
        name,
        dtype: info.dtype,
        shape: info.shape,
        segment: { path, offset: info.offset, byteLength: info.byteLength, dtype: info.dtype },
      };
    },
  };
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}
