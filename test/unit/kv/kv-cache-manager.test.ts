import { describe, expect, it } from 'vitest';
import { BlockHasher } from '../../../src/kv/block-hash.ts';
import type { KVRequest } from '../../../src/kv/kv-cache-manager.ts';
import { KVCacheManager } from '../../../src/kv/kv-cache-manager.ts';

/** A minimal KVRequest: tokens plus the counters the manager reads. */
class FakeReq implements KVRequest {
  readonly blockHashes: string[] = [];
  numComputedTokens = 0;
  readonly requestId: string;
  readonly cacheSalt: string | null;
  readonly tokens: number[];
  constructor(requestId: string, tokens: number[], cacheSalt: string | null = null) {
    this.requestId = requestId;
    this.tokens = tokens;
    this.cacheSalt = cacheSalt;
  }
  get numTokens(): number {
    return this.tokens.length;
  }
  tokenIds(startPos: number, endPos: number): Int32Array {
    return Int32Array.from(this.tokens.slice(startPos, endPos));
  }
}

const range = (start: number, n: number): number[] => Array.from({ length: n }, (_, i) => start + i);
const make = (numBlocks: number, enablePrefixCaching = true): KVCacheManager =>
  new KVCacheManager({ numBlocks, blockSize: 4, enablePrefixCaching, hasher: new BlockHasher(new Uint8Array(32).fill(1)) });

/** Admits a request the way the scheduler does and marks everything computed and cached. */
function runPrefill(kv: KVCacheManager, req: FakeReq): number[] {
  const hit = kv.getComputedBlocks(req);
  req.numComputedTokens = 0;
  const ids = kv.allocateSlots(req, req.numTokens - hit.numComputedTokens, hit.blocks);
  if (ids === null) throw new Error('no room');
  req.numComputedTokens = req.numTokens;
  kv.cacheFullBlocks(req);
  return ids;
}

describe('KVCacheManager', () => {
  it('allocates ceil(tokens / blockSize) blocks and grows the table only when a block fills', () => {
    const kv = make(10);
    const req = new FakeReq('a', range(0, 5));
    expect(kv.allocateSlots(req, 5)).toEqual([1, 2]);
    req.numComputedTokens = 5;
    req.tokens.push(5, 6, 7);
    expect(kv.allocateSlots(req, 3)).toEqual([]);
    req.numComputedTokens = 8;
    req.tokens.push(8);
    expect(kv.allocateSlots(req, 1)).toEqual([3]);
    expect(kv.blockIds('a')).toEqual([1, 2, 3]);
    kv.checkIntegrity();
    kv.checkRequestBlocks(req, 9);
    expect(() => kv.checkRequestBlocks(req, 13)).toThrow(/holds 3 blocks, expected 4 for 13 tokens/);
  });

  it('returns null and changes nothing when the pool cannot satisfy an allocation', () => {
    const kv = make(4);
    const a = new FakeReq('a', range(0, 8));
    kv.allocateSlots(a, 8);
    const b = new FakeReq('b', range(100, 8));
    const freeBefore = kv.pool.numFreeBlocks;
    expect(kv.allocateSlots(b, 8)).toBeNull();
    expect(kv.pool.numFreeBlocks).toBe(freeBefore);
    expect(kv.blockIds('b')).toEqual([]);
    expect([...kv.requestIds()]).toEqual(['a']);
    kv.checkIntegrity();
  });

  it('finds the longest cached prefix of full blocks, never the whole prompt', () => {
    const kv = make(16);
    const a = new FakeReq('a', range(0, 12));
    runPrefill(kv, a);
    // Same 12 tokens: 3 full cached blocks, but the last token must be computed, so only 2 are hits.
    const b = new FakeReq('b', range(0, 12));
    const hitB = kv.getComputedBlocks(b);
    expect(hitB.numComputedTokens).toBe(8);
    expect(hitB.blocks.map((x) => x.blockId)).toEqual(kv.blockIds('a').slice(0, 2));
    // A longer prompt sharing 10 tokens: 2 full shared blocks.
    const c = new FakeReq('c', [...range(0, 10), 99, 98, 97, 96, 95]);
    expect(kv.getComputedBlocks(c).numComputedTokens).toBe(8);
    // A different salt shares nothing.
    expect(kv.getComputedBlocks(new FakeReq('d', range(0, 12), 'tenant')).numComputedTokens).toBe(0);
  });

  it('shares hit blocks by reference and keeps them cached while either request holds them', () => {
    const kv = make(16);
    const a = new FakeReq('a', range(0, 12));
    runPrefill(kv, a);
    const b = new FakeReq('b', [...range(0, 8), 50, 51, 52]);
    const idsB = runPrefill(kv, b);
    expect(idsB.slice(0, 2)).toEqual(kv.blockIds('a').slice(0, 2));
    expect(kv.pool.blocks[idsB[0]!]!.refCount).toBe(2);
    kv.free(a);
    expect(kv.pool.blocks[idsB[0]!]!.refCount).toBe(1);
    kv.checkIntegrity();
  });

  it('frees tail first, so a request’s last blocks are evicted before its prefix', () => {
    const kv = make(5);
    const a = new FakeReq('a', range(0, 16));
    const ids = runPrefill(kv, a);
    kv.free(a);
    expect(kv.pool.freeBlocksInOrder().map((b) => b.blockId)).toEqual([...ids].reverse());
    // One new block evicts a's last block; its first three stay hits.
    const other = new FakeReq('o', range(200, 3));
    kv.allocateSlots(other, 3);
    expect(kv.getComputedBlocks(new FakeReq('b', range(0, 16))).numComputedTokens).toBe(12);
    kv.checkIntegrity();
  });

  it('counts reviving a free cached hit against free capacity, so hits cannot be evicted by the same allocation', () => {
    const kv = make(5); // 4 usable
    const a = new FakeReq('a', range(0, 8));
    runPrefill(kv, a);
    kv.free(a); // both blocks free but cached
    const filler = new FakeReq('f', range(300, 8));
    kv.allocateSlots(filler, 8); // takes the 2 truly free blocks
    expect(kv.pool.numFreeBlocks).toBe(2);
    // b hits 1 block (the 2nd is capped by numTokens - 1... b has 10 tokens: 2 hits) and needs 1 more: 3 > 2 free.
    const b = new FakeReq('b', [...range(0, 8), 1, 2]);
    const hit = kv.getComputedBlocks(b);
    expect(hit.blocks).toHaveLength(2);
    expect(kv.allocateSlots(b, 2, hit.blocks)).toBeNull();
    kv.checkIntegrity();
    kv.free(filler);
    const ids = kv.allocateSlots(b, 2, hit.blocks);
    expect(ids?.slice(0, 2)).toEqual(hit.blocks.map((x) => x.blockId));
    kv.checkIntegrity();
  });

  it('caches only blocks that are full and computed', () => {
    const kv = make(16);
    const a = new FakeReq('a', range(0, 11));
    kv.allocateSlots(a, 11);
    a.numComputedTokens = 6;
    kv.cacheFullBlocks(a);
    const blocks = kv.blockIds('a').map((id) => kv.pool.blocks[id]!);
    expect(blocks.map((b) => b.blockHash !== null)).toEqual([true, false, false]);
    a.numComputedTokens = 11;
    kv.cacheFullBlocks(a);
    expect(blocks.map((b) => b.blockHash !== null)).toEqual([true, true, false]);
    expect(blocks[1]!.blockHash).toBe(a.blockHashes[1]);
    kv.checkRequestBlocks(a, 11);
  });

  it('with prefix caching off hashes nothing and reuses nothing', () => {
    const kv = make(16, false);
    const a = new FakeReq('a', range(0, 12));
    runPrefill(kv, a);
    kv.free(a);
    const b = new FakeReq('b', range(0, 12));
    expect(kv.getComputedBlocks(b).numComputedTokens).toBe(0);
    expect(a.blockHashes).toEqual([]);
    expect(b.blockHashes).toEqual([]);
    expect(kv.pool.numCachedBlocks).toBe(0);
    kv.recordPrefixLookup(12, 0);
    expect(kv.prefixCacheStats.requests).toBe(0);
  });

  it('reports usage as the fraction of usable blocks referenced', () => {
    const kv = make(9);
    expect(kv.usage()).toBe(0);
    kv.allocateSlots(new FakeReq('a', range(0, 8)), 8);
    expect(kv.usage()).toBe(0.25);
  });

  it('checkIntegrity catches refcount drift, tables pointing at free blocks and stray hashes', () => {
    const kv = make(8);
    const a = new FakeReq('a', range(0, 8));
    runPrefill(kv, a);
    kv.checkIntegrity();
    const block = kv.pool.blocks[kv.blockIds('a')[0]!]!;
    block.refCount = 2;
    expect(() => kv.checkIntegrity()).toThrow(/block 1: refCount 2 but held by 1 block tables/);
    block.refCount = 1;
    // b's table lies past its cached prefix but carries a hash.
    const b = new FakeReq('b', range(50, 4));
    kv.allocateSlots(b, 4);
    const bBlock = kv.pool.blocks[kv.blockIds('b')[0]!]!;
    kv.pool.cacheBlock(bBlock, 'stray');
    expect(() => kv.checkIntegrity()).toThrow(/request b: block 3 at index 0 is cached \(stray\) but lies past its 0 cached blocks/);
  });

  it('checkRequestBlocks catches a cached block carrying another prefix’s hash', () => {
    const kv = make(8);
    const a = new FakeReq('a', range(0, 8));
    runPrefill(kv, a);
    a.blockHashes[1] = 'f'.repeat(32);
    expect(() => kv.checkRequestBlocks(a, 8)).toThrow(/carries hash .* request's is f{32}/);
  });
});
