/**
 * Writes the tiny test models (test/fixtures/tiny-models.ts) as HF model folders.
 *
 *   node scripts/gen-tiny-models.ts OUT_DIR [--seed N] [--only tiny-llama,tiny-qwen2]
 *
 * OUT_DIR/<name>/ then holds config.json, generation_config.json, model.safetensors and the tok512
 * tokenizer files; scripts/make-golden.py reads those folders.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_TINY_SEED, TINY_MODEL_NAMES, writeTinyModel } from '../test/fixtures/tiny-models.ts';
import type { TinyModelName } from '../test/fixtures/tiny-models.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { seed: { type: 'string' }, only: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
});
if (values.help || positionals.length !== 1) {
  console.error('usage: node scripts/gen-tiny-models.ts OUT_DIR [--seed N] [--only name,name]');
  console.error(`models: ${TINY_MODEL_NAMES.join(', ')}`);
  process.exit(values.help ? 0 : 2);
}
const seed = values.seed === undefined ? DEFAULT_TINY_SEED : Number(values.seed);
if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`--seed must be a non-negative integer, got ${values.seed}`);
const names = (values.only?.split(',') ?? [...TINY_MODEL_NAMES]) as TinyModelName[];
for (const name of names) {
  if (!TINY_MODEL_NAMES.includes(name)) throw new Error(`unknown model ${name}; models: ${TINY_MODEL_NAMES.join(', ')}`);
}
const root = resolve(positionals[0]!);
for (const name of names) {
  const dir = await writeTinyModel(name, join(root, name), { seed });
  const digest = createHash('sha256').update(await readFile(join(dir, 'model.safetensors'))).digest('hex');
  console.log(`${dir}  model.safetensors sha256 ${digest.slice(0, 16)}…`);
}
