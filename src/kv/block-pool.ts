/**
 * All KV blocks of one cache: refcounts, the free list, and the prefix cache (hash → block).
 *
 * Block 0 is the null block: never allocated, never freed, never cached. The model runner may point
 * padding tokens (e.g. CUDA-graph batch padding) at slots [0, blockSize) so they never write into a live
 * block; block tables themselves are padded with -1 (see src/model/step-io.ts). Usable blocks: numBlocks - 1.
 *
 * Prefix caching is lazy, as in vLLM v1: a freed block keeps its hash and stays findable in the map
 * while it waits in the free list; only when the free list pops it for reuse is the hash dropped.
 * A cached block with refCount 0 is therefore both "free" (counts toward numFreeBlocks) and reusable by
 * `touch`. At most one block is registered per hash: if two requests computed the same block
 * concurrently, the second copy simply stays uncached and is recycled normally.
 */
import type { BlockHash } from './block-hash.ts';
import { FreeBlockQueue } from './free-block-queue.ts';
import { KVBlock } from './kv-block.ts';

export const NULL_BLOCK_ID = 0;

/** Token counts, recorded once per request at its first scheduling (recomputation after preemption is not counted). */
export interface PrefixCacheStats {
  /** Requests looked up. */
  requests: number;
  /** Prompt tokens looked up. */
  queries: number;
  /** Of those, tokens served from cache. */
  hits: number;
}

export class BlockPool {
  readonly numBlocks: number;
  readonly enableCaching: boolean;
  readonly blocks: readonly KVBlock[];
  readonly nullBlock: KVBlock;
  readonly stats: PrefixCacheStats = { requests: 0, queries: 0, hits: 0 };
  readonly #freeQueue: FreeBlockQueue;
  readonly #cachedBlocks = new Map<BlockHash, KVBlock>();

  constructor(numBlocks: number, enableCaching: boolean) {
    if (!Number.isInteger(numBlocks) || numBlocks < 2) {
      throw new RangeError(`numBlocks must be an integer >= 2 (block 0 is the null block), got ${numBlocks}`);
    }
    this.numBlocks = numBlocks;
    this.enableCaching = enableCaching;
    const blocks: KVBlock[] = [];
    for (let id = 0; id < numBlocks; id++) blocks.push(new KVBlock(id));
    this.blocks = blocks;
    this.nullBlock = blocks[NULL_BLOCK_ID]!;
    this.#freeQueue = new FreeBlockQueue(blocks.slice(1));
  }

  get numUsableBlocks(): number {
    return this.numBlocks - 1;
  }

  /** Blocks that can be handed out now: truly free plus cached-but-unreferenced (evictable). */
  get numFreeBlocks(): number {
    return this.#freeQueue.length;
  }

  get numCachedBlocks(): number {
    return this.#cachedBlocks.size;
  }

  /** Fraction of usable blocks referenced by some request, 0..1 (evictable cached blocks count as free). */
  usage(): number {
    return 1 - this.#freeQueue.length / this.numUsableBlocks;
  }

  /** Pops n blocks from the head of the free list (evicting their cache entries), each with refCount 1. */
  getNewBlocks(n: number): KVBlock[] {
    if (n > this.#freeQueue.length) {
      throw new Error(`cannot get ${n} blocks: only ${this.#freeQueue.length} free`);
    }
    const out: KVBlock[] = [];
    for (let i = 0; i < n; i++) {
      const block = this.#freeQueue.popLeft();
      this.#evict(block);
      block.refCount = 1;
      out.push(block);
    }
    return out;
  }

  /** Adds a reference to each block (prefix-cache hits), pulling unreferenced ones out of the free list. */
  touch(blocks: readonly KVBlock[]): void {
    for (const block of blocks) {
      if (block === this.nullBlock) throw new Error('touch: the null block cannot be referenced');
      if (block.refCount === 0) this.#freeQueue.remove(block);
      block.refCount++;
    }
  }

  /**
   * Drops one reference from each block; blocks reaching 0 are appended to the free list in the given
   * order, so pass the order they should be evicted in (the KV manager passes a request's blocks tail first).
   */
  freeBlocks(blocksInEvictionOrder: Iterable<KVBlock>): void {
    for (const block of blocksInEvictionOrder) {
      if (block.refCount <= 0) throw new Error(`freeBlocks: block ${block.blockId} has refCount ${block.refCount}`);
      if (--block.refCount === 0) this.#freeQueue.append(block);
    }
  }

  getCachedBlock(blockHash: BlockHash): KVBlock | undefined {
    return this.#cachedBlocks.get(blockHash);
  }

  /**
   * Registers a full, computed block under its hash. Returns false when another block already holds that
   * hash (the block then stays uncached) or caching is off.
   */
  cacheBlock(block: KVBlock, blockHash: BlockHash): boolean {
    if (!this.enableCaching) return false;
    if (block.blockHash !== null) {
      if (block.blockHash === blockHash) return true;
      throw new Error(`cacheBlock: block ${block.blockId} already cached as ${block.blockHash}, not ${blockHash}`);
    }
    if (block.refCount === 0) throw new Error(`cacheBlock: block ${block.blockId} is free`);
    if (this.#cachedBlocks.has(blockHash)) return false;
    block.blockHash = blockHash;
    this.#cachedBlocks.set(blockHash, block);
    return true;
  }

  recordLookup(numQueriedTokens: number, numHitTokens: number): void {
    this.stats.requests++;
    this.stats.queries += numQueriedTokens;
    this.stats.hits += numHitTokens;
  }

  /** Forgets every cached hash (e.g. after weights change). Refused (false) while any block is in use. */
  resetPrefixCache(): boolean {
    if (this.#freeQueue.length !== this.numUsableBlocks) return false;
    for (const block of this.#cachedBlocks.values()) block.blockHash = null;
    this.#cachedBlocks.clear();
    return true;
  }

  /** Blocks in the free list, in eviction order (tests and integrity checks). */
  freeBlocksInOrder(): KVBlock[] {
    return [...this.#freeQueue];
  }

  /**
   * Pool-local invariants (the KV manager adds the block-table side):
   * free list sound; refCount 0 ⇔ in the free list; hash map and block hashes agree both ways; null block untouched.
   */
  checkIntegrity(): void {
    this.#freeQueue.checkIntegrity(this.numUsableBlocks);
    const nb = this.nullBlock;
    if (nb.refCount !== 0 || nb.blockHash !== null || this.#freeQueue.contains(nb)) {
      throw new Error(`null block: refCount ${nb.refCount}, hash ${nb.blockHash}, inFreeList ${this.#freeQueue.contains(nb)}`);
    }
    for (let id = 1; id < this.numBlocks; id++) {
      const block = this.blocks[id]!;
      if (block.blockId !== id) throw new Error(`blocks[${id}] has blockId ${block.blockId}`);
      if (block.refCount < 0) throw new Error(`block ${id}: negative refCount ${block.refCount}`);
      const inFree = this.#freeQueue.contains(block);
      if (inFree !== (block.refCount === 0)) {
        throw new Error(`block ${id}: refCount ${block.refCount} but ${inFree ? 'in' : 'not in'} the free list`);
      }
      if (block.blockHash !== null && this.#cachedBlocks.get(block.blockHash) !== block) {
        throw new Error(`block ${id}: carries hash ${block.blockHash} but the map points to block ${this.#cachedBlocks.get(block.blockHash)?.blockId ?? 'none'}`);
      }
    }
    for (const [h, block] of this.#cachedBlocks) {
      if (block.blockHash !== h) throw new Error(`hash map: ${h} → block ${block.blockId}, which carries ${block.blockHash}`);
      if (block === nb) throw new Error('hash map points to the null block');
    }
    if (!this.enableCaching && this.#cachedBlocks.size > 0) throw new Error('prefix caching is off but blocks are cached');
  }

  #evict(block: KVBlock): void {
    if (block.blockHash === null) return;
    this.#cachedBlocks.delete(block.blockHash);
    block.blockHash = null;
  }
}
