/**
 * The compiled form of a JSON Schema (or of "any JSON object"): a graph of value nodes that the
 * recognizer (grammar.ts) walks byte by byte. Nodes may form cycles ($ref recursion). Every node
 * describes a set of JSON texts in the exact shape the recognizer produces: objects list their
 * properties in schema order, literals (enum / const / true / false / null) are their compact
 * JSON.stringify form, whitespace goes only between tokens (grammar.ts caps its runs).
 */

export interface ObjectProperty {
  /** The key's JSON text, quotes included: JSON.stringify(name). */
  readonly name: string;
  readonly value: ValueNode;
  readonly required: boolean;
}

export interface NumberBounds {
  /** Inclusive / exclusive limits (null: none). */
  readonly minimum: number | null;
  readonly exclusiveMinimum: number | null;
  readonly maximum: number | null;
  readonly exclusiveMaximum: number | null;
}

export type ValueNode =
  /** Properties in order, each optional one may be skipped; `additional` (no listed properties): a map of any string keys. */
  | { readonly kind: 'object'; readonly id: number; readonly properties: readonly ObjectProperty[]; readonly additional: ValueNode | null }
  | { readonly kind: 'array'; readonly id: number; items: ValueNode; readonly minItems: number; readonly maxItems: number }
  /** Lengths in Unicode code points (JSON Schema's); maxLength Infinity = none. */
  | { readonly kind: 'string'; readonly id: number; readonly minLength: number; readonly maxLength: number }
  | { readonly kind: 'number'; readonly id: number; readonly integer: boolean; readonly bounds: NumberBounds | null }
  /** One of a finite set of exact JSON texts (compact JSON.stringify of each value). */
  | { readonly kind: 'literal'; readonly id: number; readonly texts: readonly string[] }
  | { readonly kind: 'union'; readonly id: number; options: ValueNode[] }
  /** Matches nothing (a `false` schema, an empty enum). */
  | { readonly kind: 'never'; readonly id: number };

/** Hands out node ids (unique within one compiled grammar). */
export class NodeIds {
  #next = 0;
  next(): number {
    return this.#next++;
  }
}

/** Any JSON value: objects (any keys) and arrays of any values, strings, numbers, true / false / null. */
export function anyValueNode(ids: NodeIds): ValueNode {
  const union: ValueNode & { kind: 'union' } = { kind: 'union', id: ids.next(), options: [] };
  const object: ValueNode = { kind: 'object', id: ids.next(), properties: [], additional: union };
  const array: ValueNode & { kind: 'array' } = { kind: 'array', id: ids.next(), items: union, minItems: 0, maxItems: Infinity };
  union.options.push(
    object,
    array,
    { kind: 'string', id: ids.next(), minLength: 0, maxLength: Infinity },
    { kind: 'number', id: ids.next(), integer: false, bounds: null },
    { kind: 'literal', id: ids.next(), texts: ['true', 'false', 'null'] },
  );
  return union;
}

/** response_format json_object: any JSON object at the top level. */
export function jsonObjectNode(ids: NodeIds): ValueNode {
  const any = anyValueNode(ids);
  return { kind: 'object', id: ids.next(), properties: [], additional: any };
}
