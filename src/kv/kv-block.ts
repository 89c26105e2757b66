import type { BlockHash } from './block-hash.ts';

/**
 * One KV cache block: `blockSize` token rows of K and V in every layer, addressed by `blockId`.
 * Mutable bookkeeping only; the memory itself lives on the device.
 */
export class KVBlock {
  readonly blockId: number;
  /** Block tables that hold this block. 0 means it sits in the free list (possibly still cached). */
  refCount = 0;
  /** Set once the block is full and computed and has been registered in the pool's hash map; cleared on eviction. */
  blockHash: BlockHash | null = null;
  /** Free-list links; both null exactly when the block is not in a free list. */
  prevFree: KVBlock | null = null;
  nextFree: KVBlock | null = null;

  constructor(blockId: number) {
    this.blockId = blockId;
  }
}
