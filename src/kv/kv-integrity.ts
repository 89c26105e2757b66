/**
 * Whole-cache invariant check, cheap enough to run after every step in tests and when the engine is
 * idle in production (mini-sglang does the same). Every message names the block or request at fault.
 */
import type { BlockPool } from './block-pool.ts';
import type { KVBlock } from './kv-block.ts';

export interface BlockTableView {
  readonly blocks: readonly KVBlock[];
  readonly blockIds: readonly number[];
  readonly numCachedBlocks: number;
}

/**
 * Every usable block is either referenced (refCount > 0, appearing in exactly refCount tables and not in
 * the free list) or unreferenced and in the free list exactly once; tables hold real, distinct blocks
 * and their id lists match; the first numCachedBlocks of a table are the only ones that may carry a hash.
 */
export function checkKVIntegrity(pool: BlockPool, tables: ReadonlyMap<string, BlockTableView>): void {
  pool.checkIntegrity();
  const refs = new Int32Array(pool.numBlocks);
  const seen = new Set<number>();
  for (const [requestId, table] of tables) {
    if (table.blocks.length !== table.blockIds.length) {
      throw new Error(`request ${requestId}: ${table.blocks.length} blocks but ${table.blockIds.length} block ids`);
    }
    if (table.blocks.length === 0) throw new Error(`request ${requestId}: empty block table kept`);
    if (table.numCachedBlocks < 0 || table.numCachedBlocks > table.blocks.length) {
      throw new Error(`request ${requestId}: numCachedBlocks ${table.numCachedBlocks} outside [0, ${table.blocks.length}]`);
    }
    seen.clear();
    for (let i = 0; i < table.blocks.length; i++) {
      const block = table.blocks[i]!;
      const id = block.blockId;
      if (table.blockIds[i] !== id) throw new Error(`request ${requestId}: blockIds[${i}] is ${table.blockIds[i]}, block is ${id}`);
      if (id === pool.nullBlock.blockId) throw new Error(`request ${requestId}: holds the null block at index ${i}`);
      if (pool.blocks[id] !== block) throw new Error(`request ${requestId}: block ${id} at index ${i} is not the pool's block ${id}`);
      if (seen.has(id)) throw new Error(`request ${requestId}: block ${id} appears twice in its table`);
      seen.add(id);
      if (i >= table.numCachedBlocks && block.blockHash !== null) {
        throw new Error(`request ${requestId}: block ${id} at index ${i} is cached (${block.blockHash}) but lies past its ${table.numCachedBlocks} cached blocks`);
      }
      refs[id]!++;
    }
  }
  for (let id = 1; id < pool.numBlocks; id++) {
    const block = pool.blocks[id]!;
    if (refs[id] !== block.refCount) {
      throw new Error(`block ${id}: refCount ${block.refCount} but held by ${refs[id]} block tables`);
    }
  }
}
