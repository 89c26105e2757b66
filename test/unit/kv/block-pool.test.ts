import { describe, expect, it } from 'vitest';
import { BlockPool, NULL_BLOCK_ID } from '../../../src/kv/block-pool.ts';

const ids = (xs: readonly { blockId: number }[]): number[] => xs.map((b) => b.blockId);

describe('BlockPool', () => {
  it('reserves block 0 as the null block and hands out 1..n-1 in order', () => {
    const pool = new BlockPool(5, true);
    expect(pool.nullBlock.blockId).toBe(NULL_BLOCK_ID);
    expect(pool.numUsableBlocks).toBe(4);
    expect(pool.numFreeBlocks).toBe(4);
    expect(ids(pool.getNewBlocks(4))).toEqual([1, 2, 3, 4]);
    expect(pool.numFreeBlocks).toBe(0);
    expect(() => pool.getNewBlocks(1)).toThrow(/only 0 free/);
    expect(() => pool.touch([pool.nullBlock])).toThrow(/null block/);
    expect(() => new BlockPool(1, true)).toThrow(/>= 2/);
  });

  it('counts references: new blocks start at 1, touch adds, free returns them to the free list at 0', () => {
    const pool = new BlockPool(4, true);
    const [a, b] = pool.getNewBlocks(2);
    expect(a!.refCount).toBe(1);
    pool.touch([a!]);
    expect(a!.refCount).toBe(2);
    pool.freeBlocks([a!, b!]);
    expect(a!.refCount).toBe(1);
    expect(b!.refCount).toBe(0);
    expect(ids(pool.freeBlocksInOrder())).toEqual([3, 2]);
    expect(() => pool.freeBlocks([b!])).toThrow(/refCount 0/);
    expect(pool.usage()).toBeCloseTo(1 / 3);
    pool.checkIntegrity();
  });

  it('keeps a freed cached block findable until it is popped for reuse (lazy eviction)', () => {
    const pool = new BlockPool(3, true);
    const [a, b] = pool.getNewBlocks(2);
    expect(pool.cacheBlock(a!, 'h-a')).toBe(true);
    expect(pool.cacheBlock(a!, 'h-a')).toBe(true); // idempotent
    expect(() => pool.cacheBlock(a!, 'h-other')).toThrow(/already cached/);
    pool.freeBlocks([a!]);
    expect(pool.getCachedBlock('h-a')).toBe(a);
    expect(a!.blockHash).toBe('h-a');
    pool.checkIntegrity();
    // Reusing it for something else drops the hash.
    const [reused] = pool.getNewBlocks(1);
    expect(reused).toBe(a);
    expect(a!.blockHash).toBeNull();
    expect(pool.getCachedBlock('h-a')).toBeUndefined();
    expect(pool.numCachedBlocks).toBe(0);
    pool.freeBlocks([b!]);
    pool.checkIntegrity();
  });

  it('touch revives a free cached block: out of the free list, referenced again, hash kept', () => {
    const pool = new BlockPool(4, true);
    const [a, b] = pool.getNewBlocks(2);
    pool.cacheBlock(a!, 'h-a');
    pool.freeBlocks([b!, a!]);
    expect(pool.numFreeBlocks).toBe(3);
    pool.touch([pool.getCachedBlock('h-a')!]);
    expect(a!.refCount).toBe(1);
    expect(pool.numFreeBlocks).toBe(2);
    expect(ids(pool.freeBlocksInOrder())).toEqual([3, 2]);
    expect(a!.blockHash).toBe('h-a');
    pool.checkIntegrity();
  });

  it('evicts in LRU order: the block freed first is reused first', () => {
    const pool = new BlockPool(4, true);
    const [a, b, c] = pool.getNewBlocks(3);
    pool.cacheBlock(a!, 'h-a');
    pool.cacheBlock(b!, 'h-b');
    pool.cacheBlock(c!, 'h-c');
    pool.freeBlocks([b!]);
    pool.freeBlocks([c!, a!]);
    expect(ids(pool.freeBlocksInOrder())).toEqual([2, 3, 1]);
    pool.getNewBlocks(1);
    expect(pool.getCachedBlock('h-b')).toBeUndefined();
    expect(pool.getCachedBlock('h-c')).toBe(c);
    expect(pool.getCachedBlock('h-a')).toBe(a);
  });

  it('keeps one block per hash: a duplicate stays uncached', () => {
    const pool = new BlockPool(4, true);
    const [a, b] = pool.getNewBlocks(2);
    expect(pool.cacheBlock(a!, 'same')).toBe(true);
    expect(pool.cacheBlock(b!, 'same')).toBe(false);
    expect(b!.blockHash).toBeNull();
    expect(pool.getCachedBlock('same')).toBe(a);
    pool.checkIntegrity();
  });

  it('caches nothing when prefix caching is off', () => {
    const pool = new BlockPool(4, false);
    const [a] = pool.getNewBlocks(1);
    expect(pool.cacheBlock(a!, 'h')).toBe(false);
    expect(a!.blockHash).toBeNull();
  });

  it('refuses to cache a free block', () => {
    const pool = new BlockPool(4, true);
    const [a] = pool.getNewBlocks(1);
    pool.freeBlocks([a!]);
    expect(() => pool.cacheBlock(a!, 'h')).toThrow(/is free/);
  });

  it('resetPrefixCache drops every hash, but only when nothing is in use', () => {
    const pool = new BlockPool(4, true);
    const [a, b] = pool.getNewBlocks(2);
    pool.cacheBlock(a!, 'h-a');
    pool.freeBlocks([a!]);
    expect(pool.resetPrefixCache()).toBe(false);
    pool.freeBlocks([b!]);
    expect(pool.resetPrefixCache()).toBe(true);
    expect(a!.blockHash).toBeNull();
    expect(pool.getCachedBlock('h-a')).toBeUndefined();
    pool.checkIntegrity();
  });

  it('records prefix-cache lookups', () => {
    const pool = new BlockPool(4, true);
    pool.recordLookup(100, 64);
    pool.recordLookup(10, 0);
    expect(pool.stats).toEqual({ requests: 2, queries: 110, hits: 64 });
  });

  it('checkIntegrity names the broken invariant', () => {
    const pool = new BlockPool(5, true);
    const [a, b] = pool.getNewBlocks(2);
    pool.cacheBlock(a!, 'h-a');
    pool.checkIntegrity();
    b!.refCount = 0;
    expect(() => pool.checkIntegrity()).toThrow(/block 2: refCount 0 but not in the free list/);
    b!.refCount = 1;
    b!.blockHash = 'h-a';
    expect(() => pool.checkIntegrity()).toThrow(/block 2: carries hash h-a but the map points to block 1/);
    b!.blockHash = null;
    pool.nullBlock.refCount = 1;
    expect(() => pool.checkIntegrity()).toThrow(/null block/);
    pool.nullBlock.refCount = 0;
    a!.blockHash = 'h-x';
    expect(() => pool.checkIntegrity()).toThrow(/hash h-x but the map points to block none/);
  });
});
