/**
 * The free blocks as an intrusive doubly-linked list (vLLM v1's FreeKVCacheBlockQueue): O(1) popLeft,
 * append, and remove-from-the-middle (needed when a prefix-cache hit revives a free but cached block).
 *
 * Order is eviction order: the head is evicted/reused first. Freed blocks are appended at the tail, so a
 * cached block that was released long ago is reused before one released just now (LRU).
 * Two sentinels make every real block have non-null links while inside, so membership is `prevFree !== null`.
 */
import { KVBlock } from './kv-block.ts';

export class FreeBlockQueue {
  readonly #head = new KVBlock(-1);
  readonly #tail = new KVBlock(-2);
  #length = 0;

  constructor(blocks: Iterable<KVBlock> = []) {
    this.#head.nextFree = this.#tail;
    this.#tail.prevFree = this.#head;
    for (const block of blocks) this.append(block);
  }

  get length(): number {
    return this.#length;
  }

  contains(block: KVBlock): boolean {
    return block.prevFree !== null;
  }

  /** The block that would be popped next, or null when empty. */
  peekLeft(): KVBlock | null {
    return this.#length === 0 ? null : this.#head.nextFree;
  }

  popLeft(): KVBlock {
    const block = this.#head.nextFree;
    if (block === null || block === this.#tail) throw new Error('popLeft on an empty free block queue');
    this.#unlink(block);
    return block;
  }

  append(block: KVBlock): void {
    if (block.prevFree !== null || block.nextFree !== null) {
      throw new Error(`block ${block.blockId} is already in a free block queue`);
    }
    const last = this.#tail.prevFree!;
    last.nextFree = block;
    block.prevFree = last;
    block.nextFree = this.#tail;
    this.#tail.prevFree = block;
    this.#length++;
  }

  remove(block: KVBlock): void {
    if (block.prevFree === null) throw new Error(`block ${block.blockId} is not in the free block queue`);
    this.#unlink(block);
  }

  /** Head to tail, i.e. in eviction order. Do not mutate the queue while iterating. */
  *[Symbol.iterator](): IterableIterator<KVBlock> {
    for (let b = this.#head.nextFree!; b !== this.#tail; b = b.nextFree!) yield b;
  }

  /**
   * Walks the list both ways and throws on any broken link, cycle or length mismatch.
   * maxLength bounds the walk so a cycle cannot hang the check.
   */
  checkIntegrity(maxLength: number): void {
    let count = 0;
    let prev = this.#head;
    for (let b = this.#head.nextFree; b !== this.#tail; b = b.nextFree) {
      if (b === null) throw new Error(`free list: forward walk hit a null link after block ${prev.blockId}`);
      if (b.prevFree !== prev) {
        throw new Error(`free list: block ${b.blockId}.prevFree is ${b.prevFree?.blockId ?? 'null'}, expected ${prev.blockId}`);
      }
      if (++count > maxLength) throw new Error(`free list: more than ${maxLength} entries (cycle?)`);
      prev = b;
    }
    if (this.#tail.prevFree !== prev) {
      throw new Error(`free list: tail.prevFree is ${this.#tail.prevFree?.blockId ?? 'null'}, expected ${prev.blockId}`);
    }
    if (count !== this.#length) throw new Error(`free list: length is ${this.#length} but ${count} blocks are linked`);
  }

  #unlink(block: KVBlock): void {
    block.prevFree!.nextFree = block.nextFree;
    block.nextFree!.prevFree = block.prevFree;
    block.prevFree = null;
    block.nextFree = null;
    this.#length--;
  }
}
