/** A small trie over byte strings with a value per terminal node (literal sets: enum values, object keys). */
export class ByteTrie {
  /** children[node]: byte → child node. Node 0 is the root. */
  readonly #children: Map<number, number>[] = [new Map()];
  /** value[node]: what the string ending here stands for, or -1. */
  readonly #value: number[] = [-1];

  /** Adds `bytes` with `value` (the first value wins for a string added twice). */
  add(bytes: Uint8Array, value: number): void {
    let node = 0;
    for (const byte of bytes) {
      let child = this.#children[node]!.get(byte);
      if (child === undefined) {
        child = this.#children.length;
        this.#children.push(new Map());
        this.#value.push(-1);
        this.#children[node]!.set(byte, child);
      }
      node = child;
    }
    if (this.#value[node] === -1) this.#value[node] = value;
  }

  /** The child of `node` along `byte`, or -1. */
  child(node: number, byte: number): number {
    return this.#children[node]!.get(byte) ?? -1;
  }

  /** The value of the string ending at `node`, or -1. */
  value(node: number): number {
    return this.#value[node]!;
  }

  get size(): number {
    return this.#children.length;
  }
}

const utf8 = new TextEncoder();

export function utf8Bytes(text: string): Uint8Array {
  return utf8.encode(text);
}
