/**
 * The byte-level recognizer (src/structured/grammar.ts) against JSON.parse and the schema validator:
 * hand-written accept / reject tables per schema, byte-by-byte feeding (every prefix of an accepted
 * document stays alive; a rejected one dies at its first bad byte), and randomized soundness and
 * completeness checks — every random walk through a grammar is JSON that validates, and every
 * random valid value, serialized compactly in schema property order, is accepted.
 */
import { describe, expect, it } from 'vitest';
import { compileJsonObject, compileJsonSchema, MAX_INT_DIGITS, MAX_WHITESPACE_RUN, SchemaError, validateJson } from '../../../src/structured/index.ts';
import type { Grammar } from '../../../src/structured/index.ts';
import { Rand, randomSchema, randomValue, randomWalk } from './random-schemas.ts';

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function accepts(grammar: Grammar, text: string): boolean {
  const state = grammar.initial.stepBytes(utf8.encode(text));
  return state !== null && state.accepting;
}

/** Index of the first byte the grammar rejects, or -1 when every byte is taken. */
function firstRejected(grammar: Grammar, text: string): number {
  const bytes = utf8.encode(text);
  let state = grammar.initial;
  for (let i = 0; i < bytes.length; i++) {
    const next = state.step(bytes[i]!);
    if (next === null) return i;
    state = next;
  }
  return -1;
}

function table(grammar: Grammar, good: string[], bad: string[]): void {
  for (const text of good) expect(accepts(grammar, text), `should accept ${JSON.stringify(text)}`).toBe(true);
  for (const text of bad) expect(accepts(grammar, text), `should reject ${JSON.stringify(text)}`).toBe(false);
}

describe('json_object grammar', () => {
  const g = compileJsonObject();
  it('accepts JSON objects and nothing else', () => {
    table(
      g,
      ['{}', '{"a":1}', ' {"a": [1, -2.5e+3, 0.125, "x", true, false, null, {"b": {}}, []]}\n', '{"":""}', '{"a":{"a":{"a":{}}}}', '{"k":"\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9"}', '{"é😀":"日本"}', '{"a":0,"a":1}'],
      ['', '[]', '"x"', '1', 'null', '{', '{"a"}', '{"a":}', '{"a":1,}', '{,}', '{"a":01}', '{"a":-}', '{"a":1.}', '{"a":.5}', '{"a":1e}', '{"a":tru}', '{"a":"\n"}', '{"a":"\\x"}', '{"a":"\\u12"}', "{'a':1}", '{"a":1}}', '{"a":1} x', '{"a":NaN}'],
    );
  });

  it('rejects invalid UTF-8 and escaped surrogates inside strings', () => {
    const state = g.initial.stepBytes(utf8.encode('{"a":"'))!;
    for (const bytes of [[0x80], [0xc0, 0x80], [0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xf5], [0xff]]) {
      expect(state.stepBytes(bytes), bytes.join(',')).toBeNull();
    }
    for (const bytes of [[0xc3, 0xa9], [0xe2, 0x82, 0xac], [0xf0, 0x9f, 0x98, 0x80], [0xed, 0x9f, 0xbf]]) expect(state.stepBytes(bytes)).not.toBeNull();
    expect(firstRejected(g, '{"a":"\\ud800"}')).toBe(9);
    expect(accepts(g, '{"a":"\\uD7FF\\uE000"}')).toBe(true);
  });

  it(`caps whitespace runs at ${MAX_WHITESPACE_RUN} bytes and digits at ${MAX_INT_DIGITS}`, () => {
    const run = ' '.repeat(MAX_WHITESPACE_RUN);
    expect(accepts(g, `${run}{${run}"a"${run}:${run}1${run}}${run}`)).toBe(true);
    expect(accepts(g, `{ ${run}}`)).toBe(false);
    expect(accepts(g, `{}${run} `)).toBe(false);
    expect(accepts(g, `{"a":${'9'.repeat(MAX_INT_DIGITS)}}`)).toBe(true);
    expect(accepts(g, `{"a":${'9'.repeat(MAX_INT_DIGITS + 1)}}`)).toBe(false);
  });

  it('keeps the state count small inside long strings and arrays (interned, no counters)', () => {
    const long = g.initial.stepBytes(utf8.encode(`{"a":"${'x'.repeat(1000)}`))!;
    const short = g.initial.stepBytes(utf8.encode('{"a":"x'))!;
    expect(long).toBe(short);
    expect(long.plainRunBudget).toBe(Infinity);
    const arr1 = g.initial.stepBytes(utf8.encode('{"a":[1,2'))!;
    const arr2 = g.initial.stepBytes(utf8.encode(`{"a":[${'1,'.repeat(200)}2`))!;
    expect(arr1).toBe(arr2);
  });
});

describe('json_schema grammars', () => {
  it('objects: properties in schema order, required ones present, no extra keys', () => {
    const g = compileJsonSchema({
      type: 'object',
      properties: { a: { type: 'integer' }, b: { type: 'string' }, c: { type: 'boolean' } },
      required: ['b'],
      additionalProperties: false,
    });
    table(
      g,
      ['{"b":""}', '{"a":1,"b":"x"}', '{"b":"x","c":true}', '{ "a" : -7 , "b" : "y" , "c" : false }'],
      ['{}', '{"a":1}', '{"b":"x","a":1}', '{"b":"x","d":1}', '{"a":1.5,"b":""}', '{"b":1}', '{"c":true,"b":"x"}', '{"b":"x",}'],
    );
  });

  it('maps: an object without properties takes any keys with additionalProperties values', () => {
    const g = compileJsonSchema({ type: 'object', additionalProperties: { type: 'integer' } });
    table(g, ['{}', '{"x":1}', '{"x":1,"yy":-2,"":0}'], ['{"x":"1"}', '{"x":1,}', '{1:1}']);
    table(compileJsonSchema({ type: 'object', additionalProperties: false }), ['{}'], ['{"a":1}']);
  });

  it('arrays: items, minItems, maxItems', () => {
    const g = compileJsonSchema({ type: 'array', items: { type: 'number' }, minItems: 1, maxItems: 3 });
    table(g, ['[1]', '[1, 2.5,-3e2]', '[ 0 ]'], ['[]', '[1,2,3,4]', '["1"]', '[1,]', '[,1]']);
  });

  it('strings: minLength / maxLength in code points (escapes and UTF-8 count as one)', () => {
    const g = compileJsonSchema({ type: 'string', minLength: 2, maxLength: 3 });
    table(g, ['"ab"', '"abc"', '"é😀"', '"\\n\\t"', '"\\u0041b"'], ['""', '"a"', '"abcd"', '"😀"', '"é😀日本"']);
  });

  it('numbers and integers with bounds, exclusive bounds and negative ranges', () => {
    const g = compileJsonSchema({ type: 'integer', minimum: -5, maximum: 120 });
    table(g, ['-5', '0', '7', '99', '120', '-0'], ['-6', '121', '1000', '1.5', '1e2', '007']);
    // Prefixes that cannot reach the range die early.
    expect(firstRejected(g, '13')).toBe(-1); // 13 itself fits
    expect(firstRejected(g, '130')).toBe(2);
    expect(firstRejected(g, '-6')).toBe(1);
    const x = compileJsonSchema({ type: 'number', exclusiveMinimum: 0.5, exclusiveMaximum: 2 });
    table(x, ['0.51', '1', '1.99999', '0.6'], ['0.5', '2', '2.0', '0.49', '-1', '5e-1', '0']);
    const tight = compileJsonSchema({ type: 'integer', exclusiveMinimum: 3, exclusiveMaximum: 5 });
    table(tight, ['4'], ['3', '5', '40']);
  });

  it('enum, const, boolean, null and type lists', () => {
    table(compileJsonSchema({ enum: ['a', 1, 12, null, { x: [true] }] }), ['"a"', '1', '12', 'null', '{"x":[true]}'], ['"b"', '2', '121', '{"x": [true]}']);
    table(compileJsonSchema({ const: 'fixed' }), ['"fixed"'], ['"fixe"', '"fixedd"']);
    table(compileJsonSchema({ type: 'boolean' }), ['true', 'false'], ['null', '1']);
    table(compileJsonSchema({ type: ['string', 'null'] }), ['"x"', 'null'], ['1']);
    // Sibling keywords filter the enum.
    table(compileJsonSchema({ type: 'string', maxLength: 2, enum: ['ab', 'abc', 3] }), ['"ab"'], ['"abc"', '3']);
  });

  it('anyOf / oneOf with options that start alike, and nested unions', () => {
    const g = compileJsonSchema({
      anyOf: [
        { type: 'object', properties: { kind: { const: 'a' }, x: { type: 'integer' } }, required: ['kind', 'x'], additionalProperties: false },
        { type: 'object', properties: { kind: { const: 'b' }, y: { type: 'string' } }, required: ['kind', 'y'], additionalProperties: false },
        { oneOf: [{ type: 'integer' }, { type: 'array', items: { type: 'integer' } }] },
      ],
    });
    table(g, ['{"kind":"a","x":1}', '{"kind":"b","y":"s"}', '5', '[1,2]'], ['{"kind":"a","y":"s"}', '{"kind":"c","x":1}', '"s"', '[1.5]']);
  });

  it('$ref to $defs and definitions, recursion included', () => {
    const tree = {
      $defs: { node: { type: 'object', properties: { v: { type: 'integer' }, kids: { type: 'array', items: { $ref: '#/$defs/node' }, maxItems: 2 } }, required: ['v'], additionalProperties: false } },
      $ref: '#/$defs/node',
    };
    table(compileJsonSchema(tree), ['{"v":1}', '{"v":1,"kids":[{"v":2},{"v":3,"kids":[{"v":4}]}]}'], ['{"v":1,"kids":[{}]}', '{"v":1,"kids":[{"v":1},{"v":2},{"v":3}]}']);
    table(compileJsonSchema({ definitions: { s: { type: 'string' } }, type: 'object', properties: { a: { $ref: '#/definitions/s' } }, required: ['a'] }), ['{"a":"x"}'], ['{"a":1}']);
  });

  it('true / {} / false schemas, allOf of one, and inferred types', () => {
    table(compileJsonSchema({}), ['1', '"s"', '{"a":[null]}', '[]'], ['', '{']);
    table(compileJsonSchema(true), ['null'], []);
    table(compileJsonSchema({ type: 'object', properties: { a: false, b: { type: 'integer' } } }), ['{}', '{"b":1}'], ['{"a":1}']);
    table(compileJsonSchema({ allOf: [{ type: 'integer' }] }), ['3'], ['"3"']);
    table(compileJsonSchema({ properties: { a: { type: 'null' } }, required: ['a'] }), ['{"a":null}'], ['null']);
    table(compileJsonSchema({ maxLength: 1 }), ['"a"'], ['"ab"', '1']);
  });

  it('rejects what it cannot enforce with a SchemaError naming the keyword and the place', () => {
    const cases: [unknown, RegExp][] = [
      [{ type: 'string', pattern: 'a+' }, /"pattern" is not supported/],
      [{ type: 'array', uniqueItems: true }, /"uniqueItems"/],
      [{ type: 'object', properties: { a: { type: 'number', multipleOf: 2 } } }, /properties\/a: "multipleOf"/],
      [{ not: { type: 'string' } }, /"not"/],
      [{ $ref: 'http://example.com/s.json' }, /only local \$ref/],
      [{ $ref: '#/$defs/missing' }, /points at nothing/],
      [{ type: 'integer', minimum: 5, maximum: 4 }, /no integer satisfies/],
      [{ type: 'integer', exclusiveMinimum: 1, exclusiveMaximum: 2 }, /no integer satisfies/],
      [{ type: 'string', minLength: 3, maxLength: 2 }, /minLength/],
      [{ type: 'object', properties: { a: false }, required: ['a'] }, /required property "a" allows no value/],
      [{ type: 'object', required: ['a'], additionalProperties: false }, /not allowed by additionalProperties/],
      [{ type: 'array', items: [{ type: 'string' }] }, /tuple "items"/],
      [{ type: 'strange' }, /unknown type/],
      [{ type: 'integer', minimum: 1e20 }, /bounds beyond/],
      [{ anyOf: [] }, /non-empty array/],
      [{ type: 'string', anyOf: [{ maxLength: 1 }] }, /next to other keywords/],
    ];
    for (const [schema, message] of cases) {
      expect(() => compileJsonSchema(schema), JSON.stringify(schema)).toThrow(SchemaError);
      expect(() => compileJsonSchema(schema), JSON.stringify(schema)).toThrow(message);
    }
  });
});

/** An enum or const value that is an object or array (whose whitespace the grammar does not vary). */
function hasCompoundLiteral(schema: unknown): boolean {
  const compound = (v: unknown) => typeof v === 'object' && v !== null;
  if (typeof schema !== 'object' || schema === null) return false;
  const s = schema as Record<string, unknown>;
  if (compound(s['const']) || (Array.isArray(s['enum']) && s['enum'].some(compound))) return true;
  return Object.values(s).some((v) => (Array.isArray(v) ? v.some(hasCompoundLiteral) : hasCompoundLiteral(v)));
}

describe('randomized: recognizer vs JSON.parse and the validator', () => {
  it('every random walk through 300 random schemas is JSON that validates (soundness)', () => {
    const rand = new Rand(20260512);
    let walks = 0;
    for (let n = 0; n < 300; n++) {
      const schema = randomSchema(rand, true);
      const grammar = compileJsonSchema(schema);
      for (let k = 0; k < 4; k++) {
        const bytes = randomWalk(rand, grammar.initial);
        if (bytes === null) continue;
        walks++;
        const text = strictUtf8.decode(bytes);
        let value: unknown;
        try {
          value = JSON.parse(text);
        } catch (error) {
          throw new Error(`schema ${JSON.stringify(schema)}: walk ${JSON.stringify(text)} is not JSON: ${(error as Error).message}`);
        }
        expect(validateJson(value, schema), `${JSON.stringify(schema)}\n${text}`).toEqual([]);
      }
    }
    expect(walks).toBeGreaterThan(1000);
  });

  it('every random valid value, serialized in schema order, is accepted byte by byte (completeness)', () => {
    const rand = new Rand(7);
    for (let n = 0; n < 300; n++) {
      const schema = randomSchema(rand, true);
      const grammar = compileJsonSchema(schema);
      for (let k = 0; k < 5; k++) {
        const value = randomValue(rand, schema);
        expect(validateJson(value, schema), `generator: ${JSON.stringify(value)} vs ${JSON.stringify(schema)}`).toEqual([]);
        const compact = JSON.stringify(value);
        // Literals (enum / const values) are matched in their compact form only.
        const texts = hasCompoundLiteral(schema) ? [compact] : [compact, JSON.stringify(value, null, 2)];
        for (const text of texts) {
          expect(firstRejected(grammar, text), `${JSON.stringify(schema)}\n${text}`).toBe(-1);
          expect(accepts(grammar, text), `${JSON.stringify(schema)}\n${text}`).toBe(true);
        }
      }
    }
  });

  it('json_object: random walks parse as objects; mutated documents that JSON.parse rejects are rejected', () => {
    const rand = new Rand(99);
    const g = compileJsonObject();
    for (let k = 0; k < 300; k++) {
      const bytes = randomWalk(rand, g.initial);
      if (bytes === null) continue;
      const text = strictUtf8.decode(bytes);
      const value: unknown = JSON.parse(text);
      expect(typeof value === 'object' && value !== null && !Array.isArray(value), text).toBe(true);
      // Mutations: JSON.parse is the judge (a mutation it accepts may still exceed our caps, so only one direction).
      for (let m = 0; m < 5; m++) {
        const chars = [...text];
        const at = rand.int(0, chars.length - 1);
        const op = rand.int(0, 2);
        if (op === 0) chars.splice(at, 1);
        else if (op === 1) chars.splice(at, 0, rand.pick([...'{}[],:"\\ 1e-.tx']));
        else chars[at] = rand.pick([...'{}[],:"\\ 1e-.tx']);
        const mutated = chars.join('');
        let parses = true;
        try {
          const parsed: unknown = JSON.parse(mutated);
          parses = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed);
        } catch {
          parses = false;
        }
        if (!parses) expect(accepts(g, mutated), mutated).toBe(false);
      }
    }
  });
});
