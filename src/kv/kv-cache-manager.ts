/**
 * Per-request block tables over one BlockPool, with automatic prefix caching.
 *
 * Token position p of a request lives in block blockIds[floor(p / blockSize)] at row p % blockSize, i.e.
 * KV slot `blockIds[floor(p / blockSize)] * blockSize + p % blockSize` (the model runner's slot mapping).
 *
 * Life of a request's table: the scheduler calls getComputedBlocks (prefix hits, admission only) and
 * allocateSlots (admission and every later step) before the model runs, cacheFullBlocks after the step
 * computed the tokens, and free when the request finishes or is preempted.
 */
import type { BlockHash, BlockHasher } from './block-hash.ts';
import { defaultBlockHasher } from './block-hash.ts';
import { BlockPool } from './block-pool.ts';
import type { PrefixCacheStats } from './block-pool.ts';
import type { KVBlock } from './kv-block.ts';
import { checkKVIntegrity } from './kv-integrity.ts';
import type { BlockTableView } from './kv-integrity.ts';

/** What the KV manager needs to know about a request (src/engine/request.ts implements it). */
export interface KVRequest {
  readonly requestId: string;
  readonly numTokens: number;
  readonly numComputedTokens: number;
  readonly cacheSalt: string | null;
  /** Hashes of the request's full blocks so far; the KV manager appends to it, the request keeps it. */
  readonly blockHashes: BlockHash[];
  tokenIds(startPos: number, endPos: number): Int32Array;
}

export interface KVCacheConfig {
  /** Including the null block 0. */
  numBlocks: number;
  /** Tokens per block (CPU 16, Ascend 128). */
  blockSize: number;
  /** Off: no hashing and no reuse at all. */
  enablePrefixCaching: boolean;
  /** Default: the process-wide hasher (one random secret per process). */
  hasher?: BlockHasher;
}

export interface ComputedBlocks {
  /** Cached blocks covering the request's longest cached prefix, in order. */
  readonly blocks: readonly KVBlock[];
  /** blocks.length * blockSize. */
  readonly numComputedTokens: number;
}

/** A request's blocks plus a parallel id list (what the model runner reads every step). */
interface BlockTable extends BlockTableView {
  readonly blocks: KVBlock[];
  readonly blockIds: number[];
  /** Leading blocks already registered in the prefix cache (or found to be duplicates); only these may carry a hash. */
  numCachedBlocks: number;
}

const NO_BLOCKS: readonly KVBlock[] = Object.freeze([]);
const NO_IDS: readonly number[] = Object.freeze([]);
export const NO_COMPUTED_BLOCKS: ComputedBlocks = Object.freeze({ blocks: NO_BLOCKS, numComputedTokens: 0 });

export class KVCacheManager {
  readonly blockSize: number;
  readonly enablePrefixCaching: boolean;
  readonly pool: BlockPool;
  readonly #hasher: BlockHasher;
  readonly #tables = new Map<string, BlockTable>();

  constructor(config: KVCacheConfig) {
    if (!Number.isInteger(config.blockSize) || config.blockSize < 1) {
      throw new RangeError(`blockSize must be a positive integer, got ${config.blockSize}`);
    }
    this.blockSize = config.blockSize;
    this.enablePrefixCaching = config.enablePrefixCaching;
    this.pool = new BlockPool(config.numBlocks, config.enablePrefixCaching);
    this.#hasher = config.hasher ?? defaultBlockHasher();
  }

  get prefixCacheStats(): Readonly<PrefixCacheStats> {
    return this.pool.stats;
  }

  /** Fraction of usable blocks in use, 0..1. */
  usage(): number {
    return this.pool.usage();
  }

  blocksNeeded(numTokens: number): number {
    return Math.ceil(numTokens / this.blockSize);
  }

  /** The request's block ids (live view; do not mutate). Empty when it holds none. */
  blockIds(requestId: string): readonly number[] {
    return this.#tables.get(requestId)?.blockIds ?? NO_IDS;
  }

  /**
   * Longest cached prefix of full blocks. Capped at numTokens - 1 tokens: the last token must be
   * computed so the step produces logits to sample from. Records no stats (see recordPrefixLookup).
   */
  getComputedBlocks(request: KVRequest): ComputedBlocks {
    if (!this.enablePrefixCaching) return NO_COMPUTED_BLOCKS;
    this.#updateBlockHashes(request);
    const maxBlocks = Math.floor((request.numTokens - 1) / this.blockSize);
    const blocks: KVBlock[] = [];
    for (let i = 0; i < maxBlocks; i++) {
      const block = this.pool.getCachedBlock(request.blockHashes[i]!);
      if (block === undefined) break;
      blocks.push(block);
    }
    return blocks.length === 0 ? NO_COMPUTED_BLOCKS : { blocks, numComputedTokens: blocks.length * this.blockSize };
  }

  /** Counts one request's prefix lookup in the pool stats (the scheduler calls it once, at first admission). */
  recordPrefixLookup(numQueriedTokens: number, numHitTokens: number): void {
    if (this.enablePrefixCaching) this.pool.recordLookup(numQueriedTokens, numHitTokens);
  }

  /**
   * Grows the request's table so it covers numComputedTokens + newComputedBlocks + numNewTokens tokens.
   * newComputedBlocks (from getComputedBlocks, admission only) are referenced first so allocating cannot
   * evict them. Returns the ids of the blocks appended to the table (hits, then fresh), or null, changing
   * nothing, when the pool cannot supply them.
   */
  allocateSlots(request: KVRequest, numNewTokens: number, newComputedBlocks: readonly KVBlock[] = NO_BLOCKS): number[] | null {
    const table = this.#tables.get(request.requestId);
    const numHeld = table?.blocks.length ?? 0;
    if (newComputedBlocks.length > 0 && (numHeld > 0 || request.numComputedTokens > 0)) {
      throw new Error(`allocateSlots: prefix hits for ${request.requestId}, which already holds ${numHeld} blocks`);
    }
    const numTokensNeedingSlots = request.numComputedTokens + newComputedBlocks.length * this.blockSize + numNewTokens;
    const numNewBlocks = Math.max(0, this.blocksNeeded(numTokensNeedingSlots) - numHeld - newComputedBlocks.length);
    // Hits that are currently unreferenced sit in the free list: reviving them uses up free capacity too.
    let numRevived = 0;
    for (const block of newComputedBlocks) if (block.refCount === 0) numRevived++;
    if (numNewBlocks + numRevived > this.pool.numFreeBlocks) return null;
    if (numNewBlocks === 0 && newComputedBlocks.length === 0) return [];

    const target = table ?? this.#newTable(request.requestId);
    this.pool.touch(newComputedBlocks);
    const fresh = this.pool.getNewBlocks(numNewBlocks);
    const newIds: number[] = [];
    for (const block of newComputedBlocks) {
      target.blocks.push(block);
      target.blockIds.push(block.blockId);
      newIds.push(block.blockId);
    }
    target.numCachedBlocks += newComputedBlocks.length;
    for (const block of fresh) {
      target.blocks.push(block);
      target.blockIds.push(block.blockId);
      newIds.push(block.blockId);
    }
    return newIds;
  }

  /**
   * Registers the request's blocks that are full and computed (the first floor(numComputedTokens /
   * blockSize)) in the prefix cache. Call after the step that computed them, never before: a block must
   * hold real KV before another request can hit it.
   */
  cacheFullBlocks(request: KVRequest, numComputedTokens: number = request.numComputedTokens): void {
    if (!this.enablePrefixCaching) return;
    const table = this.#tables.get(request.requestId);
    if (table === undefined) return;
    const numFull = Math.min(Math.floor(numComputedTokens / this.blockSize), table.blocks.length);
    if (numFull <= table.numCachedBlocks) return;
    this.#updateBlockHashes(request);
    for (let i = table.numCachedBlocks; i < numFull; i++) this.pool.cacheBlock(table.blocks[i]!, request.blockHashes[i]!);
    table.numCachedBlocks = numFull;
  }

  /** Releases all the request's blocks, tail first so its last blocks are evicted before its prefix. */
  free(request: KVRequest): void {
    const table = this.#tables.get(request.requestId);
    if (table === undefined) return;
    this.#tables.delete(request.requestId);
    this.pool.freeBlocks(table.blocks.reverse());
  }

  /** Request ids that currently hold blocks. */
  requestIds(): IterableIterator<string> {
    return this.#tables.keys();
  }

  numBlocksOf(requestId: string): number {
    return this.#tables.get(requestId)?.blocks.length ?? 0;
  }

  /** Throws with a precise message when a pool or block-table invariant is broken. */
  checkIntegrity(): void {
    checkKVIntegrity(this.pool, this.#tables);
  }

  /**
   * Per-request side of the invariants (the scheduler calls it for every live request): the table covers
   * exactly numTokensCovered tokens' worth of blocks, and its cached blocks carry the request's own hashes
   * and lie within the computed tokens.
   */
  checkRequestBlocks(request: KVRequest, numTokensCovered: number): void {
    const table = this.#tables.get(request.requestId);
    const numBlocks = table?.blocks.length ?? 0;
    const expected = this.blocksNeeded(numTokensCovered);
    if (numBlocks !== expected) {
      throw new Error(`request ${request.requestId}: holds ${numBlocks} blocks, expected ${expected} for ${numTokensCovered} tokens`);
    }
    if (table === undefined) return;
    if (table.numCachedBlocks * this.blockSize > request.numComputedTokens) {
      throw new Error(`request ${request.requestId}: ${table.numCachedBlocks} cached blocks but only ${request.numComputedTokens} computed tokens`);
    }
    for (let i = 0; i < table.numCachedBlocks; i++) {
      const h = table.blocks[i]!.blockHash;
      if (h !== null && h !== request.blockHashes[i]) {
        throw new Error(`request ${request.requestId}: block ${table.blocks[i]!.blockId} at index ${i} carries hash ${h}, request's is ${request.blockHashes[i]}`);
      }
    }
  }

  /** Hashes the request's full blocks not hashed yet (incremental: each block is hashed once per request). */
  #updateBlockHashes(request: KVRequest): void {
    const hashes = request.blockHashes;
    const numFull = Math.floor(request.numTokens / this.blockSize);
    for (let i = hashes.length; i < numFull; i++) {
      const tokens = request.tokenIds(i * this.blockSize, (i + 1) * this.blockSize);
      hashes.push(this.#hasher.hashBlock(i === 0 ? null : hashes[i - 1]!, tokens, i === 0 ? (request.cacheSalt ?? '') : ''));
    }
  }

  #newTable(requestId: string): BlockTable {
    const table: BlockTable = { blocks: [], blockIds: [], numCachedBlocks: 0 };
    this.#tables.set(requestId, table);
    return table;
  }
}
