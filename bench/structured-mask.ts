/**
 * Structured output's host cost: building the vocabulary trie, and the allowed-token mask per step per
 * request, for real tokenizers (../shared/tokenizers: Llama 3.2 128k, Qwen2.5 151k, Llama 2 32k).
 *
 *   node bench/structured-mask.ts [tokenizer-dir ...]
 *
 * Each document is tokenized and fed through a GrammarMatcher token by token, timing fillMask at
 * every step: "cold" with a fresh grammar (no state seen before, no mask cached), "warm" with the same
 * grammar again (what a second request with the same schema sees). Times are per step per request,
 * in CPU time of this thread (process.cpuUsage), so a busy machine does not inflate them.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileJsonObject, compileJsonSchema, GrammarMatcher, VocabularyTrie } from '../src/structured/index.ts';
import type { Grammar } from '../src/structured/index.ts';
import { TextTokenizer } from '../src/tokenizer/index.ts';

const SHARED = fileURLToPath(new URL('../../shared/tokenizers/', import.meta.url));
const dirs = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['llama3.2', 'qwen2.5', 'llama2'].map((n) => join(SHARED, n)).filter(existsSync);

const SCHEMA = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    age: { type: 'integer', minimum: 0, maximum: 150 },
    email: { type: 'string', maxLength: 64 },
    tags: { type: 'array', items: { type: 'string' }, maxItems: 8 },
    address: { type: 'object', properties: { street: { type: 'string' }, city: { type: 'string' }, zip: { type: 'string', maxLength: 10 } }, required: ['city'] },
    active: { type: 'boolean' },
    score: { type: 'number' },
    role: { enum: ['admin', 'user', 'guest'] },
  },
  required: ['name', 'age', 'tags', 'active'],
  additionalProperties: false,
};

const DOCS: [string, () => Grammar, unknown][] = [
  [
    'schema, compact',
    () => compileJsonSchema(SCHEMA),
    { name: 'Ada Lovelace, Countess of Lovelace', age: 36, email: 'ada@example.com', tags: ['math', 'poetry', 'engines'], address: { street: '12 St James Square', city: 'London', zip: 'SW1Y 4JH' }, active: true, score: 98.25, role: 'admin' },
  ],
  ['json_object, pretty', () => compileJsonObject(), null],
];

/** CPU milliseconds (user + system) of this process so far. */
function cpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

function stats(times: number[]): string {
  const sorted = [...times].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  return `mean ${mean.toFixed(2)} ms, median ${at(0.5).toFixed(2)}, p90 ${at(0.9).toFixed(2)}, max ${sorted.at(-1)!.toFixed(2)} (${times.length} steps)`;
}

for (const dir of dirs) {
  const tokenizer = await TextTokenizer.fromDirectory(dir);
  let start = cpuMs();
  const trie = new VocabularyTrie(tokenizer);
  const buildMs = cpuMs() - start;
  console.log(`${dir}: ${tokenizer.vocabSize} tokens, trie of ${trie.numNodes} nodes built in ${buildMs.toFixed(0)} ms`);
  const words = new Uint32Array(trie.numWords);
  for (const [label, makeGrammar, value] of DOCS) {
    const text = value === null ? JSON.stringify(DOCS[0]![2], null, 2) : JSON.stringify(value);
    const ids = tokenizer.encode(text, { addSpecialTokens: false });
    const grammar = makeGrammar();
    for (const pass of ['cold', 'warm']) {
      const matcher = new GrammarMatcher(grammar, trie, tokenizer.eosTokenIds);
      const times: number[] = [];
      for (const id of ids) {
        start = cpuMs();
        matcher.fillMask(words);
        times.push(cpuMs() - start);
        if (!((words[id >>> 5]! >>> (id & 31)) & 1)) throw new Error(`${label}: token ${id} (${JSON.stringify(tokenizer.decode([id]))}) masked out`);
        matcher.accept(id);
      }
      if (!matcher.accepting) throw new Error(`${label}: document not complete`);
      console.log(`  ${label}, ${pass}: ${stats(times)}`);
    }
  }
}
