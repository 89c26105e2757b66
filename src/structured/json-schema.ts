/**
 * JSON Schema → value nodes (nodes.ts) for the recognizer.
 *
 * Supported: type (one or a list), object (properties, required, additionalProperties), array (items,
 * minItems, maxItems), string (minLength, maxLength), number / integer (minimum, maximum,
 * exclusiveMinimum, exclusiveMaximum), boolean, null, enum, const, anyOf, oneOf (enforced as anyOf:
 * exclusivity is the schema's job), allOf with one entry, $ref to "#..." pointers ($defs,
 * definitions, recursion allowed), true / false / {} schemas. Annotations (title, description,
 * default, examples, format, ...) are ignored. Other assertion keywords (pattern, uniqueItems,
 * multipleOf, not, if / then / else, prefixItems, minProperties, ...) are rejected with a
 * SchemaError naming them: output that ignored them could fail the client's validation.
 *
 * The generated JSON is a subset of what the schema allows, in one fixed shape: properties in schema
 * order; when an object lists properties, only those (additionalProperties other than false does
 * not add free keys); an object without listed properties takes any keys (additionalProperties'
 * schema, or any value); a schema without "type" takes the type its keywords imply.
 */
import { anyValueNode, jsonObjectNode, NodeIds, type ObjectProperty, type ValueNode } from './nodes.ts';
import { isPlainObject, resolvePointer, validateJson } from './validate.ts';
import { Grammar, MAX_INT_DIGITS } from './grammar.ts';

export class SchemaError extends Error {
  /** JSON pointer-like path of the offending schema part. */
  readonly path: string;
  constructor(message: string, path: string) {
    super(`${path === '' ? 'schema' : path}: ${message}`);
    this.name = 'SchemaError';
    this.path = path;
  }
}

const ANNOTATIONS = new Set([
  'title', 'description', 'default', 'examples', '$comment', '$schema', '$id', '$anchor', 'deprecated', 'readOnly', 'writeOnly',
  'format', 'contentEncoding', 'contentMediaType', '$defs', 'definitions', 'strict', 'name',
]);
const UNSUPPORTED = new Set([
  'pattern', 'patternProperties', 'propertyNames', 'minProperties', 'maxProperties', 'dependentRequired', 'dependentSchemas',
  'dependencies', 'prefixItems', 'contains', 'minContains', 'maxContains', 'multipleOf', 'not', 'if', 'then', 'else',
  'unevaluatedProperties', 'unevaluatedItems', 'additionalItems', '$dynamicRef', '$recursiveRef', 'allOf',
]);
const OBJECT_KEYWORDS = ['properties', 'required', 'additionalProperties'];
const ARRAY_KEYWORDS = ['items', 'minItems', 'maxItems', 'uniqueItems'];
const STRING_KEYWORDS = ['minLength', 'maxLength'];
const NUMBER_KEYWORDS = ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'];
const TYPES = ['object', 'array', 'string', 'number', 'integer', 'boolean', 'null'];

/** Compiles a JSON Schema; throws SchemaError for what it cannot enforce. */
export function compileJsonSchema(schema: unknown): Grammar {
  return new Grammar(new SchemaCompiler(schema).compile(schema, ''));
}

/** response_format json_object: any JSON object. */
export function compileJsonObject(): Grammar {
  return new Grammar(jsonObjectNode(new NodeIds()));
}

class SchemaCompiler {
  readonly #root: unknown;
  readonly #ids = new NodeIds();
  readonly #refs = new Map<string, ValueNode & { kind: 'union' }>();
  #any: ValueNode | null = null;

  constructor(root: unknown) {
    this.#root = root;
  }

  #anyNode(): ValueNode {
    this.#any ??= anyValueNode(this.#ids);
    return this.#any;
  }

  compile(schema: unknown, path: string): ValueNode {
    if (schema === true) return this.#anyNode();
    if (schema === false) return { kind: 'never', id: this.#ids.next() };
    if (!isPlainObject(schema)) throw new SchemaError('a schema must be an object or a boolean', path);
    const s = schema;
    for (const key of Object.keys(s)) {
      if (UNSUPPORTED.has(key) && !(key === 'allOf' && Array.isArray(s['allOf']) && s['allOf'].length === 1)) {
        throw new SchemaError(`"${key}" is not supported in structured output`, path);
      }
    }
    if (s['uniqueItems'] === true) throw new SchemaError('"uniqueItems" is not supported in structured output', path);
    const assertions = Object.keys(s).filter((k) => !ANNOTATIONS.has(k));

    if (s['$ref'] !== undefined) {
      if (typeof s['$ref'] !== 'string') throw new SchemaError('"$ref" must be a string', path);
      if (assertions.length > 1) throw new SchemaError(`"$ref" next to other keywords (${assertions.filter((k) => k !== '$ref').join(', ')}) is not supported`, path);
      return this.#ref(s['$ref'], path);
    }
    if (s['allOf'] !== undefined) {
      if (assertions.length > 1) throw new SchemaError('"allOf" next to other keywords is not supported', path);
      return this.compile((s['allOf'] as unknown[])[0], `${path}/allOf/0`);
    }
    if ('enum' in s || 'const' in s) return this.#literal(s, path);
    for (const keyword of ['anyOf', 'oneOf'] as const) {
      if (s[keyword] === undefined) continue;
      const options = s[keyword];
      if (!Array.isArray(options) || options.length === 0) throw new SchemaError(`"${keyword}" must be a non-empty array`, path);
      if (assertions.length > 1) throw new SchemaError(`"${keyword}" next to other keywords (${assertions.filter((k) => k !== keyword).join(', ')}) is not supported`, path);
      return this.#union(options.map((option, i) => this.compile(option, `${path}/${keyword}/${i}`)));
    }

    let types: string[];
    if (s['type'] === undefined) {
      types = this.#impliedTypes(s);
      if (types.length === 0) return this.#anyNode();
    } else {
      types = Array.isArray(s['type']) ? (s['type'] as unknown[]).map(String) : [String(s['type'])];
      for (const t of types) if (!TYPES.includes(t)) throw new SchemaError(`unknown type "${t}"`, `${path}/type`);
      if (types.length === 0) throw new SchemaError('"type" is an empty list', `${path}/type`);
    }
    // "number" covers integers: ["integer", "number"] is just "number".
    if (types.includes('number')) types = types.filter((t) => t !== 'integer');
    return this.#union([...new Set(types)].map((t) => this.#typed(t, s, path)));
  }

  #impliedTypes(s: Record<string, unknown>): string[] {
    const has = (keys: string[]) => keys.some((k) => k in s);
    const types: string[] = [];
    if (has(OBJECT_KEYWORDS)) types.push('object');
    if (has(ARRAY_KEYWORDS)) types.push('array');
    if (has(STRING_KEYWORDS)) types.push('string');
    if (has(NUMBER_KEYWORDS)) types.push('number');
    return types;
  }

  #union(options: ValueNode[]): ValueNode {
    const flat: ValueNode[] = [];
    for (const option of options) {
      if (option.kind === 'never') continue;
      // Inline plain unions (not $ref placeholders, which may still be filling in).
      if (option.kind === 'union' && !this.#isRefNode(option)) flat.push(...option.options);
      else flat.push(option);
    }
    if (flat.length === 0) return { kind: 'never', id: this.#ids.next() };
    if (flat.length === 1) return flat[0]!;
    return { kind: 'union', id: this.#ids.next(), options: flat };
  }

  #isRefNode(node: ValueNode): boolean {
    for (const ref of this.#refs.values()) if (ref === node) return true;
    return false;
  }

  #ref(ref: string, path: string): ValueNode {
    const known = this.#refs.get(ref);
    if (known !== undefined) return known;
    let target: unknown;
    try {
      target = resolvePointer(this.#root, ref);
    } catch (error) {
      throw new SchemaError((error as Error).message, path);
    }
    // A placeholder first, so recursive references find it; filled once the target is compiled.
    const node: ValueNode & { kind: 'union' } = { kind: 'union', id: this.#ids.next(), options: [] };
    this.#refs.set(ref, node);
    const compiled = this.compile(target, ref.slice(1));
    if (compiled.kind !== 'never') node.options.push(compiled);
    return node;
  }

  #literal(s: Record<string, unknown>, path: string): ValueNode {
    const values = 'const' in s ? [s['const']] : s['enum'];
    if (!Array.isArray(values)) throw new SchemaError('"enum" must be an array', path);
    if ('const' in s && 'enum' in s) throw new SchemaError('"enum" and "const" together are not supported', path);
    // The other keywords (type, minLength, ...) narrow the list.
    const rest: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(s)) if (key !== 'enum' && key !== 'const') rest[key] = value;
    const texts: string[] = [];
    for (const value of values) {
      let ok: boolean;
      try {
        ok = validateJson(value, rest, this.#root).length === 0;
      } catch (error) {
        throw new SchemaError((error as Error).message, path);
      }
      const text = JSON.stringify(value);
      if (ok && text !== undefined && !texts.includes(text)) texts.push(text);
    }
    if (texts.length === 0) return { kind: 'never', id: this.#ids.next() };
    return { kind: 'literal', id: this.#ids.next(), texts };
  }

  #typed(type: string, s: Record<string, unknown>, path: string): ValueNode {
    switch (type) {
      case 'object':
        return this.#object(s, path);
      case 'array':
        return this.#array(s, path);
      case 'string': {
        const minLength = this.#count(s, 'minLength', path, 0);
        const maxLength = this.#count(s, 'maxLength', path, Infinity);
        if (minLength > maxLength) throw new SchemaError('"minLength" is larger than "maxLength"', path);
        return { kind: 'string', id: this.#ids.next(), minLength, maxLength };
      }
      case 'number':
      case 'integer':
        return this.#number(s, type === 'integer', path);
      case 'boolean':
        return { kind: 'literal', id: this.#ids.next(), texts: ['true', 'false'] };
      default:
        return { kind: 'literal', id: this.#ids.next(), texts: ['null'] };
    }
  }

  #count(s: Record<string, unknown>, key: string, path: string, fallback: number): number {
    const value = s[key];
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw new SchemaError(`"${key}" must be a non-negative integer`, `${path}/${key}`);
    return value;
  }

  #object(s: Record<string, unknown>, path: string): ValueNode {
    const declared = s['properties'] === undefined ? {} : s['properties'];
    if (!isPlainObject(declared)) throw new SchemaError('"properties" must be an object', `${path}/properties`);
    const requiredList = s['required'] === undefined ? [] : s['required'];
    if (!Array.isArray(requiredList) || !requiredList.every((r) => typeof r === 'string')) {
      throw new SchemaError('"required" must be an array of strings', `${path}/required`);
    }
    const required = new Set(requiredList as string[]);
    const additionalSchema = s['additionalProperties'];
    if (additionalSchema !== undefined && typeof additionalSchema !== 'boolean' && !isPlainObject(additionalSchema)) {
      throw new SchemaError('"additionalProperties" must be a boolean or a schema', `${path}/additionalProperties`);
    }
    const additional = additionalSchema === false ? null : additionalSchema === undefined || additionalSchema === true ? null : additionalSchema;
    const properties: ObjectProperty[] = [];
    for (const [name, sub] of Object.entries(declared)) {
      const value = this.compile(sub, `${path}/properties/${name}`);
      if (value.kind === 'never') {
        if (required.has(name)) throw new SchemaError(`required property "${name}" allows no value`, `${path}/properties/${name}`);
        continue;
      }
      properties.push({ name: JSON.stringify(name), value, required: required.has(name) });
    }
    // Required names without a schema of their own take additionalProperties' (or any value).
    for (const name of required) {
      if (Object.hasOwn(declared, name)) continue;
      if (additionalSchema === false) throw new SchemaError(`required property "${name}" is not allowed by additionalProperties: false`, path);
      const value = additional === null ? this.#anyNode() : this.compile(additional, `${path}/additionalProperties`);
      if (value.kind === 'never') throw new SchemaError(`required property "${name}" allows no value`, path);
      properties.push({ name: JSON.stringify(name), value, required: true });
    }
    // Without listed properties the object is a map: any keys, with additionalProperties' values.
    let mapValues: ValueNode | null = null;
    if (properties.length === 0 && additionalSchema !== false) {
      mapValues = additional === null ? this.#anyNode() : this.compile(additional, `${path}/additionalProperties`);
      if (mapValues.kind === 'never') mapValues = null;
    }
    return { kind: 'object', id: this.#ids.next(), properties, additional: mapValues };
  }

  #array(s: Record<string, unknown>, path: string): ValueNode {
    const minItems = this.#count(s, 'minItems', path, 0);
    let maxItems = this.#count(s, 'maxItems', path, Infinity);
    if (minItems > maxItems) throw new SchemaError('"minItems" is larger than "maxItems"', path);
    if (Array.isArray(s['items'])) throw new SchemaError('tuple "items" (an array) is not supported', `${path}/items`);
    const items = s['items'] === undefined ? this.#anyNode() : this.compile(s['items'], `${path}/items`);
    if (items.kind === 'never') {
      if (minItems > 0) throw new SchemaError('"items" allows no value but "minItems" asks for some', path);
      maxItems = 0;
    }
    return { kind: 'array', id: this.#ids.next(), items, minItems, maxItems };
  }

  #number(s: Record<string, unknown>, integer: boolean, path: string): ValueNode {
    const bound = (key: string): number | null => {
      const value = s[key];
      if (value === undefined) return null;
      if (typeof value !== 'number' || !Number.isFinite(value)) throw new SchemaError(`"${key}" must be a number`, `${path}/${key}`);
      return value;
    };
    const bounds = {
      minimum: bound('minimum'),
      exclusiveMinimum: bound('exclusiveMinimum'),
      maximum: bound('maximum'),
      exclusiveMaximum: bound('exclusiveMaximum'),
    };
    const any = Object.values(bounds).some((v) => v !== null);
    if (!any) return { kind: 'number', id: this.#ids.next(), integer, bounds: null };
    const lo = Math.max(bounds.minimum ?? -Infinity, bounds.exclusiveMinimum ?? -Infinity);
    const hi = Math.min(bounds.maximum ?? Infinity, bounds.exclusiveMaximum ?? Infinity);
    const limit = 10 ** MAX_INT_DIGITS;
    if (lo >= limit || hi <= -limit) throw new SchemaError(`bounds beyond ±1e${MAX_INT_DIGITS} are not supported`, path);
    const loOpen = bounds.exclusiveMinimum !== null && bounds.exclusiveMinimum >= (bounds.minimum ?? -Infinity);
    const hiOpen = bounds.exclusiveMaximum !== null && bounds.exclusiveMaximum <= (bounds.maximum ?? Infinity);
    const empty = lo > hi || (lo === hi && (loOpen || hiOpen));
    const noInteger = integer && (() => {
      let first = Math.ceil(lo);
      if (loOpen && first === lo) first += 1;
      let last = Math.floor(hi);
      if (hiOpen && last === hi) last -= 1;
      return first > last;
    })();
    if (empty || noInteger) throw new SchemaError(`no ${integer ? 'integer' : 'number'} satisfies the bounds`, path);
    return { kind: 'number', id: this.#ids.next(), integer, bounds };
  }
}
