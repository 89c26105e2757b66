/**
 * A strict parser for the YAML that Kubernetes manifests are written in here (no YAML package in the
 * dependencies): `---` documents, block mappings and sequences by indentation (sequences indented or
 * at their key's level), `- key: value` items, `[a, b]` and `{}` flow collections of scalars, quoted
 * and plain scalars, # comments. Anything else (anchors, tags, multi-line scalars) is an error naming
 * the line, so a manifest cannot silently mean something else than the test checked.
 */

import { stripYamlComment } from '../../../src/cli/config-file.ts';

export type Yaml = string | number | boolean | null | Yaml[] | { [key: string]: Yaml };

interface Line {
  indent: number;
  text: string;
  number: number;
}

export function parseYamlDocuments(source: string, name = 'yaml'): Yaml[] {
  const documents: Line[][] = [[]];
  source.split(/\r?\n/).forEach((raw, index) => {
    const text = stripYamlComment(raw).trimEnd();
    if (text.trim() === '') return;
    if (text === '---') {
      documents.push([]);
      return;
    }
    if (/\t/.test(raw.slice(0, raw.length - raw.trimStart().length))) fail(name, index + 1, 'tab in indentation');
    documents.at(-1)!.push({ indent: text.length - text.trimStart().length, text: text.trim(), number: index + 1 });
  });
  return documents.filter((lines) => lines.length > 0).map((lines) => new Parser(lines, name).document());
}

class Parser {
  #i = 0;
  private readonly lines: Line[];
  private readonly name: string;
  constructor(lines: Line[], name: string) {
    this.lines = lines;
    this.name = name;
  }

  document(): Yaml {
    const value = this.block(this.lines[0]!.indent);
    if (this.#i < this.lines.length) this.fail(this.lines[this.#i]!, 'unexpected indentation');
    return value;
  }

  private block(indent: number): Yaml {
    const line = this.lines[this.#i]!;
    return isItem(line.text) ? this.sequence(indent) : this.mapping(indent);
  }

  private mapping(indent: number): { [key: string]: Yaml } {
    const result: { [key: string]: Yaml } = {};
    while (this.#i < this.lines.length) {
      const line = this.lines[this.#i]!;
      if (line.indent < indent) break;
      if (line.indent > indent) this.fail(line, 'unexpected indentation');
      if (isItem(line.text)) break;
      const match = /^("(?:[^"\\]|\\.)*"|'[^']*'|[^\s:"'][^:]*?)\s*:(?:\s+(.*))?$/.exec(line.text);
      if (!match) this.fail(line, `expected "key: value", got "${line.text}"`);
      const key = String(scalar(match![1]!, () => this.fail(line, 'bad key')));
      if (key in result) this.fail(line, `duplicate key "${key}"`);
      this.#i++;
      const rest = match![2];
      if (rest !== undefined && rest !== '') {
        result[key] = this.inline(rest, line);
        continue;
      }
      const next = this.lines[this.#i];
      if (next && next.indent > indent) result[key] = this.block(next.indent);
      else if (next && next.indent === indent && isItem(next.text)) result[key] = this.sequence(indent);
      else result[key] = null;
    }
    return result;
  }

  private sequence(indent: number): Yaml[] {
    const result: Yaml[] = [];
    while (this.#i < this.lines.length) {
      const line = this.lines[this.#i]!;
      if (line.indent !== indent || !isItem(line.text)) break;
      const content = line.text === '-' ? '' : line.text.slice(2).trimStart();
      if (content === '') {
        this.#i++;
        const next = this.lines[this.#i];
        result.push(next && next.indent > indent ? this.block(next.indent) : null);
      } else if (/^("(?:[^"\\]|\\.)*"|'[^']*'|[^\s:"'[{][^:]*?)\s*:(\s|$)/.test(content)) {
        // "- key: value": a mapping whose keys sit where this key starts.
        const keyIndent = indent + (line.text.length - content.length);
        this.lines[this.#i] = { indent: keyIndent, text: content, number: line.number };
        result.push(this.mapping(keyIndent));
      } else {
        this.#i++;
        result.push(this.inline(content, line));
      }
    }
    return result;
  }

  private inline(text: string, line: Line): Yaml {
    if (text.startsWith('[')) {
      if (!text.endsWith(']')) this.fail(line, 'unterminated [ ]');
      const inner = text.slice(1, -1).trim();
      return inner === '' ? [] : splitFlow(inner).map((item) => scalar(item, () => this.fail(line, `bad item "${item}"`)));
    }
    if (text.startsWith('{')) {
      if (text !== '{}') this.fail(line, 'only empty {} flow mappings are supported');
      return {};
    }
    if (/^[|>&*!%@`]/.test(text)) this.fail(line, `unsupported YAML: "${text}"`);
    return scalar(text, () => this.fail(line, `bad scalar "${text}"`));
  }

  private fail(line: Line, why: string): never {
    fail(this.name, line.number, why);
  }
}

function isItem(text: string): boolean {
  return text === '-' || text.startsWith('- ');
}

function splitFlow(inner: string): string[] {
  const items: string[] = [];
  let current = '';
  let quote: string | null = null;
  for (const ch of inner) {
    if (quote) {
      current += ch;
      if (ch === quote) quote = null;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      current += ch;
    } else if (ch === ',') {
      items.push(current.trim());
      current = '';
    } else {
      current += ch;
    }
  }
  items.push(current.trim());
  return items;
}

function scalar(text: string, bad: () => never): string | number | boolean | null {
  const t = text.trim();
  if (t.startsWith('"')) {
    try {
      return JSON.parse(t) as string;
    } catch {
      return bad();
    }
  }
  if (t.startsWith("'")) return t.endsWith("'") && t.length >= 2 ? t.slice(1, -1).replaceAll("''", "'") : bad();
  if (/^(true|false)$/.test(t)) return t === 'true';
  if (/^(null|~)$/.test(t)) return null;
  if (/^[-+]?\d+$/.test(t)) return Number(t);
  if (/^[-+]?(\d+\.\d*|\.\d+)([eE][-+]?\d+)?$/.test(t)) return Number(t);
  if (/^[[\]{},&*!|>%@`#]/.test(t)) return bad();
  return t;
}

function fail(name: string, line: number, why: string): never {
  throw new Error(`${name}:${line}: ${why}`);
}
