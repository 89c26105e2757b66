/**
 * `updraft serve --config FILE` (or UPDRAFT_CONFIG): the serve flags from a file, below flags and
 * environment variables in precedence. The file is a JSON object, or flat YAML (one `key: value`
 * per line, # comments, lists as `[a, b]` or `- item` lines): the subset a flag file needs, parsed
 * here strictly so no YAML dependency is needed; anything else is refused with its line number.
 *
 * Keys are flag names (`max-num-seqs`), also accepted as `max_num_seqs` or `maxNumSeqs`.
 *
 *   # updraft.yaml
 *   model: Qwen/Qwen2.5-0.5B-Instruct
 *   port: 8000
 *   max-num-seqs: 128
 *   enable-prefix-caching: true
 *   kv-cache-memory: 4GiB
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { ConfigError, SERVE_FLAGS } from '../config.ts';

export type ConfigFileValue = string | number | boolean | null | ConfigFileValue[];

/** flag name → value, from the file at `path`. Unknown keys are errors (typos must not pass silently). */
export function readConfigFile(path: string): Map<string, ConfigFileValue> {
  let text: string;
  try {
    text = readFileSync(path, 'utf-8');
  } catch (error) {
    throw new ConfigError(`--config ${path}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}`);
  }
  const entries = parseConfigText(text, path);
  const known = new Set(SERVE_FLAGS.map((spec) => spec.flag));
  const values = new Map<string, ConfigFileValue>();
  for (const [key, value] of entries) {
    const flag = flagNameOf(key);
    if (!known.has(flag)) {
      const near = [...known].filter((k) => k.includes(flag) || flag.includes(k) || editDistance(k, flag) <= 2);
      throw new ConfigError(`${path}: unknown setting "${key}"${near.length ? ` (did you mean ${near.slice(0, 3).join(', ')}?)` : ''}; see updraft serve --help`);
    }
    if (values.has(flag)) throw new ConfigError(`${path}: "${key}" is set twice`);
    values.set(flag, value);
  }
  return values;
}

/** The file's [key, value] pairs, keys as written; JSON when it is named *.json or starts with "{". */
export function parseConfigText(text: string, path: string): Array<[string, ConfigFileValue]> {
  const json = extname(path).toLowerCase() === '.json' || text.trimStart().startsWith('{');
  return json ? parseJsonConfig(text, path) : parseFlatYaml(text, path);
}

/** max_num_seqs / maxNumSeqs / max-num-seqs → max-num-seqs. */
export function flagNameOf(key: string): string {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .replaceAll('_', '-')
    .toLowerCase();
}

/** The value as the text a flag or environment variable would carry (lists comma-separated). */
export function configValueText(value: Exclude<ConfigFileValue, null>): string | boolean {
  if (Array.isArray(value)) return value.map((item) => String(item)).join(',');
  return typeof value === 'boolean' ? value : String(value);
}

function parseJsonConfig(text: string, path: string): Array<[string, ConfigFileValue]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`${path}: not valid JSON (${(error as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ConfigError(`${path}: expected a JSON object of settings`);
  return Object.entries(parsed).map(([key, value]) => {
    if (!isScalarOrList(value)) throw new ConfigError(`${path}: "${key}" must be a string, number, boolean, null or a list of them`);
    return [key, value];
  });
}

function isScalarOrList(value: unknown): value is ConfigFileValue {
  if (Array.isArray(value)) return value.every((item) => item === null || ['string', 'number', 'boolean'].includes(typeof item));
  return value === null || ['string', 'number', 'boolean'].includes(typeof value);
}

function parseFlatYaml(text: string, path: string): Array<[string, ConfigFileValue]> {
  const entries: Array<[string, ConfigFileValue]> = [];
  const lines = text.split(/\r?\n/);
  let openList: ConfigFileValue[] | null = null;
  lines.forEach((raw, index) => {
    const where = `${path}:${index + 1}`;
    const line = stripYamlComment(raw).trimEnd();
    if (line.trim() === '' || line.trim() === '---') return;
    const item = /^\s+-\s+(.*)$/.exec(line) ?? /^-\s+(.*)$/.exec(line);
    if (item) {
      if (openList === null) throw new ConfigError(`${where}: a "- item" line must follow "key:"`);
      openList.push(yamlScalar(item[1]!, where));
      return;
    }
    const pair = /^([A-Za-z][A-Za-z0-9_-]*)\s*:(?:\s+(.*))?$/.exec(line);
    if (!pair) throw new ConfigError(`${where}: expected "key: value" (config files are flat: one setting per line)`);
    const value = (pair[2] ?? '').trim();
    if (value === '') {
      openList = [];
      entries.push([pair[1]!, openList]);
      return;
    }
    openList = null;
    entries.push([pair[1]!, value.startsWith('[') ? yamlFlowList(value, where) : yamlScalar(value, where)]);
  });
  return entries;
}

/** Drops a # comment that is not inside quotes (YAML's rule: # starts a comment after whitespace). */
export function stripYamlComment(line: string): string {
  let quote: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quote !== null) {
      if (ch === '\\' && quote === '"') i++;
      else if (ch === quote) quote = null;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
    } else if (ch === '#' && (i === 0 || /\s/.test(line[i - 1]!))) {
      return line.slice(0, i);
    }
  }
  return line;
}

function yamlScalar(text: string, where: string): string | number | boolean | null {
  const value = text.trim();
  if (value.startsWith('"')) {
    try {
      return JSON.parse(value) as string;
    } catch {
      throw new ConfigError(`${where}: unterminated or invalid "double-quoted" string`);
    }
  }
  if (value.startsWith("'")) {
    if (!/^'(?:[^']|'')*'$/.test(value)) throw new ConfigError(`${where}: unterminated 'single-quoted' string`);
    return value.slice(1, -1).replaceAll("''", "'");
  }
  if (/^[{[|>&*!%@`]/.test(value)) throw new ConfigError(`${where}: "${value}" uses YAML beyond flat key: value settings; quote it if it is a string`);
  if (/^(true|yes|on)$/i.test(value)) return true;
  if (/^(false|no|off)$/i.test(value)) return false;
  if (/^(null|~)$/i.test(value)) return null;
  if (/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(value)) return Number(value);
  return value;
}

function yamlFlowList(text: string, where: string): ConfigFileValue[] {
  if (!text.endsWith(']')) throw new ConfigError(`${where}: unterminated [list]`);
  const inner = text.slice(1, -1).trim();
  if (inner === '') return [];
  return inner.split(',').map((item) => yamlScalar(item, where));
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}
