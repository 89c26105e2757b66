/**
 * A small JSON Schema validator (the keywords src/structured compiles, plus a few common ones), used to
 * filter enum / const values by their sibling keywords when compiling, and by tests to check that
 * constrained output validates. It is deliberately independent of the recognizer: it works on parsed
 * values, not on bytes.
 *
 * Supported: type (string or list; "integer" = a number with no fraction), enum, const, properties,
 * required, additionalProperties, items (a schema), minItems, maxItems, uniqueItems, minLength,
 * maxLength (code points), pattern (JavaScript RegExp, 'u' flag), minimum, maximum,
 * exclusiveMinimum, exclusiveMaximum (numbers), multipleOf, minProperties, maxProperties, anyOf,
 * oneOf, allOf, not, $ref to "#..." JSON pointers ($defs / definitions). Annotations are ignored,
 * and so is `format`. Other keywords throw, so a test never trusts a check that did not happen.
 */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

const ANNOTATIONS = new Set([
  'title', 'description', 'default', 'examples', '$comment', '$schema', '$id', '$anchor', 'deprecated', 'readOnly', 'writeOnly',
  'format', 'contentEncoding', 'contentMediaType', '$defs', 'definitions',
]);
const CHECKED = new Set([
  'type', 'enum', 'const', 'properties', 'required', 'additionalProperties', 'items', 'minItems', 'maxItems', 'uniqueItems',
  'minLength', 'maxLength', 'pattern', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf',
  'minProperties', 'maxProperties', 'anyOf', 'oneOf', 'allOf', 'not', '$ref',
]);

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Deep equality of JSON values (object key order ignored; 1 and 1.0 are equal). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && jsonEqual(a[k], b[k]));
  }
  return false;
}

/** Resolves a local "$ref" ("#", "#/$defs/x", "#/definitions/x/properties/y", ~0 / ~1 escapes). */
export function resolvePointer(root: unknown, ref: string): unknown {
  if (!ref.startsWith('#')) throw new Error(`only local $ref ("#/...") is supported, got ${JSON.stringify(ref)}`);
  const path = ref.slice(1);
  if (path === '') return root;
  if (!path.startsWith('/')) throw new Error(`unsupported $ref ${JSON.stringify(ref)}`);
  let node: unknown = root;
  for (const raw of path.slice(1).split('/')) {
    const part = decodeURIComponent(raw).replaceAll('~1', '/').replaceAll('~0', '~');
    if (Array.isArray(node) && /^\d+$/.test(part)) node = node[Number(part)];
    else if (isPlainObject(node) && Object.hasOwn(node, part)) node = node[part];
    else throw new Error(`$ref ${JSON.stringify(ref)} points at nothing`);
  }
  return node;
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return 'number';
  return typeof value;
}

function hasType(value: unknown, type: string): boolean {
  switch (type) {
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    default:
      return typeOf(value) === type;
  }
}

/** The problems of `value` against `schema` (empty: valid). `root` resolves $ref. */
export function validateJson(value: unknown, schema: unknown, root: unknown = schema, path = '$'): string[] {
  if (schema === true) return [];
  if (schema === false) return [`${path}: no value is allowed here`];
  if (!isPlainObject(schema)) throw new Error(`${path}: a schema must be an object or a boolean`);
  const errors: string[] = [];
  for (const key of Object.keys(schema)) {
    if (!CHECKED.has(key) && !ANNOTATIONS.has(key)) throw new Error(`validateJson: keyword "${key}" is not supported`);
  }
  const s = schema;
  if (typeof s['$ref'] === 'string') errors.push(...validateJson(value, resolvePointer(root, s['$ref']), root, path));
  if (s['type'] !== undefined) {
    const types = Array.isArray(s['type']) ? (s['type'] as string[]) : [s['type'] as string];
    if (!types.some((t) => hasType(value, t))) errors.push(`${path}: expected ${types.join(' or ')}, got ${typeOf(value)}`);
  }
  if (Array.isArray(s['enum']) && !s['enum'].some((e) => jsonEqual(e, value))) errors.push(`${path}: not one of the enum values`);
  if ('const' in s && !jsonEqual(s['const'], value)) errors.push(`${path}: not the const value`);
  if (typeof value === 'string') {
    const length = [...value].length;
    if (typeof s['minLength'] === 'number' && length < s['minLength']) errors.push(`${path}: shorter than ${s['minLength']}`);
    if (typeof s['maxLength'] === 'number' && length > s['maxLength']) errors.push(`${path}: longer than ${s['maxLength']}`);
    if (typeof s['pattern'] === 'string' && !new RegExp(s['pattern'], 'u').test(value)) errors.push(`${path}: does not match ${s['pattern']}`);
  }
  if (typeof value === 'number') {
    if (typeof s['minimum'] === 'number' && value < s['minimum']) errors.push(`${path}: below ${s['minimum']}`);
    if (typeof s['maximum'] === 'number' && value > s['maximum']) errors.push(`${path}: above ${s['maximum']}`);
    if (typeof s['exclusiveMinimum'] === 'number' && value <= s['exclusiveMinimum']) errors.push(`${path}: not above ${s['exclusiveMinimum']}`);
    if (typeof s['exclusiveMaximum'] === 'number' && value >= s['exclusiveMaximum']) errors.push(`${path}: not below ${s['exclusiveMaximum']}`);
    if (typeof s['multipleOf'] === 'number' && !Number.isInteger(value / s['multipleOf'])) errors.push(`${path}: not a multiple of ${s['multipleOf']}`);
  }
  if (Array.isArray(value)) {
    if (typeof s['minItems'] === 'number' && value.length < s['minItems']) errors.push(`${path}: fewer than ${s['minItems']} items`);
    if (typeof s['maxItems'] === 'number' && value.length > s['maxItems']) errors.push(`${path}: more than ${s['maxItems']} items`);
    if (s['uniqueItems'] === true && value.some((x, i) => value.some((y, j) => j < i && jsonEqual(x, y)))) errors.push(`${path}: items are not unique`);
    if (s['items'] !== undefined) {
      if (Array.isArray(s['items'])) throw new Error('validateJson: tuple "items" (an array) is not supported');
      value.forEach((item, i) => errors.push(...validateJson(item, s['items'], root, `${path}[${i}]`)));
    }
  }
  if (isPlainObject(value)) {
    const properties = isPlainObject(s['properties']) ? s['properties'] : {};
    const keys = Object.keys(value);
    if (typeof s['minProperties'] === 'number' && keys.length < s['minProperties']) errors.push(`${path}: fewer than ${s['minProperties']} properties`);
    if (typeof s['maxProperties'] === 'number' && keys.length > s['maxProperties']) errors.push(`${path}: more than ${s['maxProperties']} properties`);
    if (Array.isArray(s['required'])) {
      for (const name of s['required'] as string[]) if (!Object.hasOwn(value, name)) errors.push(`${path}: missing required "${name}"`);
    }
    for (const key of keys) {
      const where = `${path}.${key}`;
      if (Object.hasOwn(properties, key)) errors.push(...validateJson(value[key], properties[key], root, where));
      else if (s['additionalProperties'] !== undefined) errors.push(...validateJson(value[key], s['additionalProperties'], root, where));
    }
  }
  if (Array.isArray(s['allOf'])) for (const sub of s['allOf']) errors.push(...validateJson(value, sub, root, path));
  if (Array.isArray(s['anyOf']) && !s['anyOf'].some((sub) => validateJson(value, sub, root, path).length === 0)) {
    errors.push(`${path}: matches none of anyOf`);
  }
  if (Array.isArray(s['oneOf'])) {
    const matches = s['oneOf'].filter((sub) => validateJson(value, sub, root, path).length === 0).length;
    if (matches !== 1) errors.push(`${path}: matches ${matches} of oneOf (exactly one required)`);
  }
  if (s['not'] !== undefined && validateJson(value, s['not'], root, path).length === 0) errors.push(`${path}: matches "not"`);
  return errors;
}
