/**
 * Reads the files of a Hugging Face model folder that the text layer needs, as parsed JSON / text.
 * Interpreting them is tokenizer-config.ts's job; this module only knows file names and which are optional.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';

export type JsonObject = Record<string, unknown>;

export interface TokenizerFiles {
  /** tokenizer.json (the fast-tokenizer pipeline: model, normalizer, pre-tokenizer, decoder, added tokens). */
  tokenizerJson: JsonObject;
  /** tokenizer_config.json (special token strings, chat_template, clean-up flag). */
  tokenizerConfig: JsonObject;
  /** generation_config.json, when present (the EOS ids the model was released with). */
  generationConfig?: JsonObject | null;
  /** config.json, when present (eos_token_id of the architecture). */
  modelConfig?: JsonObject | null;
  /** chat_template.jinja beside the tokenizer: the current transformers convention, preferred over tokenizer_config's. */
  chatTemplateJinja?: string | null;
}

export async function readTokenizerFiles(dir: string): Promise<TokenizerFiles> {
  const [tokenizerJson, tokenizerConfig, generationConfig, modelConfig, chatTemplateJinja] = await Promise.all([
    readJson(path.join(dir, 'tokenizer.json')),
    readJson(path.join(dir, 'tokenizer_config.json')),
    readOptional(path.join(dir, 'generation_config.json')).then((text) => (text === null ? null : parseJson(text, 'generation_config.json'))),
    readOptional(path.join(dir, 'config.json')).then((text) => (text === null ? null : parseJson(text, 'config.json'))),
    readOptional(path.join(dir, 'chat_template.jinja')),
  ]);
  return { tokenizerJson, tokenizerConfig, generationConfig, modelConfig, chatTemplateJinja };
}

async function readJson(file: string): Promise<JsonObject> {
  return parseJson(await readFile(file, 'utf8'), file);
}

export function parseJson(text: string, what: string): JsonObject {
  const value: unknown = JSON.parse(text);
  if (!isJsonObject(value)) throw new Error(`${what}: expected a JSON object`);
  return value;
}

/** The file's text, or null when it does not exist (other errors still throw). */
export async function readOptional(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if (isErrnoCode(error, 'ENOENT')) return null;
    throw error;
  }
}

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isErrnoCode(error: unknown, code: string): boolean {
  return typeof error === 'object' && error !== null && 'code' in error && error.code === code;
}
