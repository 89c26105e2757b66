/**
 * Random JSON Schemas in the subset src/structured enforces, random values that satisfy them, and
 * random walks through a grammar — shared by the recognizer tests and the end-to-end test.
 *
 * The schemas are bounded (strings have maxLength or enum, arrays maxItems), so every document they
 * allow has a bounded length: maxDocumentBytes() says how long, which bounds the tokens a
 * constrained generation can take (every token carries at least one byte).
 */
import type { State } from '../../../src/structured/index.ts';
import { MAX_EXP_DIGITS, MAX_FRAC_DIGITS, MAX_INT_DIGITS, MAX_WHITESPACE_RUN } from '../../../src/structured/index.ts';

export class Rand {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0 || 1;
  }
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

type Schema = Record<string, unknown>;

const WORDS = ['alpha', 'beta', 'name', 'id', 'x', 'value', 'count', 'tags', 'é', 'a b', 'quote"d', 'new\nline', 'ünï', '😀'];
const STRINGS = ['red', 'green', 'blue', '', 'a"b', 'back\\slash', 'tab\t', 'ünïcødé', '日本', '😀 ok'];

/** A random bounded schema (object at the top unless `anyTop`). */
export function randomSchema(rand: Rand, anyTop = false): Schema {
  const defs: Schema = {};
  const useDefs = rand.chance(0.3);
  if (useDefs) defs['item'] = randomSub(rand, 2, {});
  const top = anyTop && rand.chance(0.3) ? randomSub(rand, 0, defs) : randomObject(rand, 0, defs);
  if (useDefs) top['$defs'] = defs;
  return top;
}

function randomObject(rand: Rand, depth: number, defs: Schema): Schema {
  const properties: Schema = {};
  const required: string[] = [];
  const count = rand.int(1, depth === 0 ? 4 : 3);
  for (let i = 0; i < count; i++) {
    const name = `${rand.pick(WORDS)}${i}`;
    properties[name] = randomSub(rand, depth + 1, defs);
    if (rand.chance(0.6)) required.push(name);
  }
  const schema: Schema = { type: 'object', properties, required };
  if (rand.chance(0.5)) schema['additionalProperties'] = false;
  if (rand.chance(0.2)) schema['title'] = 'ignored annotation';
  return schema;
}

function randomSub(rand: Rand, depth: number, defs: Schema): Schema {
  const kinds = ['string', 'enum', 'integer', 'number', 'boolean', 'null', 'const', 'nullable'];
  if (depth < 3) kinds.push('object', 'array', 'anyOf');
  if ('item' in defs) kinds.push('ref');
  switch (rand.pick(kinds)) {
    case 'string': {
      const maxLength = rand.int(0, 10);
      return { type: 'string', minLength: rand.int(0, Math.min(2, maxLength)), maxLength, ...(rand.chance(0.3) ? { format: 'anything' } : {}) };
    }
    case 'enum': {
      const values = [...new Set(Array.from({ length: rand.int(1, 4) }, () => rand.pick([...STRINGS, 1, 2.5, -3, true, null])))];
      return rand.chance(0.5) ? { enum: values } : { type: ['string', 'number', 'boolean', 'null'], enum: values };
    }
    case 'const':
      return { const: rand.pick<unknown>([...STRINGS, 7, false, { k: [1, 'v'] }]) };
    case 'integer': {
      if (rand.chance(0.3)) return { type: 'integer' };
      const lo = rand.int(-1000, 1000);
      return rand.chance(0.5) ? { type: 'integer', minimum: lo, maximum: lo + rand.int(0, 500) } : { type: 'integer', exclusiveMinimum: lo, exclusiveMaximum: lo + rand.int(2, 50) };
    }
    case 'number': {
      if (rand.chance(0.4)) return { type: 'number' };
      const lo = Math.round((rand.next() * 200 - 100) * 4) / 4;
      return { type: 'number', minimum: lo, maximum: lo + rand.pick([0.5, 1, 7.25, 100]) };
    }
    case 'boolean':
      return { type: 'boolean' };
    case 'null':
      return { type: 'null' };
    case 'nullable':
      return { type: ['string', 'null'], maxLength: rand.int(1, 6) };
    case 'object':
      return randomObject(rand, depth, defs);
    case 'array':
      return { type: 'array', items: randomSub(rand, depth + 1, defs), minItems: rand.int(0, 1), maxItems: rand.int(1, 3) };
    case 'anyOf':
      // Options of different types, so oneOf's exclusivity holds too.
      return {
        [rand.pick(['anyOf', 'oneOf'])]: [
          { type: 'integer', minimum: 0, maximum: 9 },
          { type: 'string', maxLength: 4 },
          { type: 'array', items: { type: 'boolean' }, maxItems: 2 },
        ].slice(rand.int(0, 1)),
      };
    default:
      return { $ref: '#/$defs/item' };
  }
}

/** Upper bound on the bytes of any document the recognizer accepts for `schema`, whitespace runs included. */
export function maxDocumentBytes(schema: unknown): number {
  return 2 * MAX_WHITESPACE_RUN + maxValueBytes(schema, schema);
}

function maxValueBytes(schema: unknown, root: unknown): number {
  const ws = MAX_WHITESPACE_RUN;
  const s = schema as Schema;
  if (typeof s['$ref'] === 'string') return maxValueBytes(((root as Schema)['$defs'] as Schema)['item'], root);
  if ('const' in s) return Buffer.byteLength(JSON.stringify(s['const']));
  if (Array.isArray(s['enum'])) return Math.max(...s['enum'].map((v) => Buffer.byteLength(JSON.stringify(v))));
  for (const key of ['anyOf', 'oneOf']) if (Array.isArray(s[key])) return Math.max(...(s[key] as unknown[]).map((o) => maxValueBytes(o, root)));
  const types = Array.isArray(s['type']) ? (s['type'] as string[]) : [s['type'] as string];
  return Math.max(
    ...types.map((type) => {
      switch (type) {
        case 'object': {
          // { ws ( "key" ws : ws value ws , ws )* }
          const props = Object.entries((s['properties'] as Schema) ?? {});
          return 2 + ws + props.reduce((n, [name, sub]) => n + Buffer.byteLength(JSON.stringify(name)) + 4 * ws + 2 + maxValueBytes(sub, root), 0);
        }
        case 'array':
          return 2 + ws + ((s['maxItems'] as number) ?? 0) * (2 * ws + 1 + maxValueBytes(s['items'], root));
        case 'string':
          return 2 + 6 * ((s['maxLength'] as number) ?? 0);
        case 'integer':
        case 'number':
          return 4 + MAX_INT_DIGITS + MAX_FRAC_DIGITS + MAX_EXP_DIGITS;
        default:
          return 5;
      }
    }),
  );
}

/** A random value that satisfies a schema from randomSchema. */
export function randomValue(rand: Rand, schema: unknown, root: unknown = schema): unknown {
  const s = schema as Schema;
  if (typeof s['$ref'] === 'string') return randomValue(rand, ((root as Schema)['$defs'] as Schema)['item'], root);
  if ('const' in s) return s['const'];
  if (Array.isArray(s['enum'])) {
    const types = Array.isArray(s['type']) ? (s['type'] as string[]) : null;
    const ok = (v: unknown) => types === null || types.includes(v === null ? 'null' : typeof v);
    return rand.pick(s['enum'].filter(ok));
  }
  for (const key of ['anyOf', 'oneOf']) if (Array.isArray(s[key])) return randomValue(rand, rand.pick(s[key] as unknown[]), root);
  const type = Array.isArray(s['type']) ? rand.pick(s['type'] as string[]) : (s['type'] as string);
  switch (type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      const required = new Set((s['required'] as string[]) ?? []);
      for (const [name, sub] of Object.entries((s['properties'] as Schema) ?? {})) {
        if (required.has(name) || rand.chance(0.5)) out[name] = randomValue(rand, sub, root);
      }
      return out;
    }
    case 'array': {
      const n = rand.int((s['minItems'] as number) ?? 0, (s['maxItems'] as number) ?? 3);
      return Array.from({ length: n }, () => randomValue(rand, s['items'], root));
    }
    case 'string': {
      const n = rand.int((s['minLength'] as number) ?? 0, (s['maxLength'] as number) ?? 8);
      return Array.from({ length: n }, () => rand.pick([...'abc xyz"\\\n\té😀日'])).join('');
    }
    case 'integer': {
      const lo = (s['minimum'] as number) ?? ((s['exclusiveMinimum'] as number) ?? -100) + 1;
      const hi = (s['maximum'] as number) ?? ((s['exclusiveMaximum'] as number) ?? 100) - 1;
      return rand.int(lo, hi);
    }
    case 'number': {
      const lo = (s['minimum'] as number) ?? -1e6;
      const hi = (s['maximum'] as number) ?? 1e6;
      return Math.round((lo + rand.next() * (hi - lo)) * 1000) / 1000;
    }
    case 'boolean':
      return rand.chance(0.5);
    default:
      return null;
  }
}

const STRUCTURAL = new Set([...'"{}[],:'].map((c) => c.charCodeAt(0)));

/**
 * A random document the recognizer accepts, built byte by byte from `state`: at each step a random
 * allowed byte, structural bytes favoured more and more as the text grows, so walks end.
 */
export function randomWalk(rand: Rand, start: State, maxBytes = 4000): Uint8Array | null {
  const bytes: number[] = [];
  let state = start;
  while (bytes.length < maxBytes) {
    if (state.accepting && rand.chance(Math.min(0.9, 0.2 + bytes.length / 200))) return Uint8Array.from(bytes);
    const allowed: number[] = [];
    for (let b = 0; b < 256; b++) if (state.step(b) !== null) allowed.push(b);
    if (allowed.length === 0) return state.accepting ? Uint8Array.from(bytes) : null;
    const pressure = Math.min(0.95, bytes.length / 300);
    const structural = allowed.filter((b) => STRUCTURAL.has(b));
    const b = structural.length > 0 && rand.chance(0.3 + pressure * 0.6) ? rand.pick(structural) : rand.pick(allowed);
    bytes.push(b);
    state = state.step(b)!;
  }
  return null;
}
