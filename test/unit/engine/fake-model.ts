/**
 * A deterministic stand-in for the model that really goes through the paged KV cache.
 *
 * Each token's "KV" is a 32-bit state mixed from the previous position's state (read back from the cache
 * through the block table, never from the request's own history) plus its token id and position; the
 * sampled token is a function of the last state. So a request's outputs equal runAlone(...) only if every
 * block it reads — prefix hits, blocks kept across steps, recomputed blocks after preemption — holds
 * exactly the KV of its own prefix. Writes are checked too: only into blocks the request owns alone
 * and that are not in the prefix cache (cached blocks must be immutable).
 */
import type { BlockPool } from '../../../src/kv/block-pool.ts';
import type { SchedulerOutput } from '../../../src/engine/scheduler-output.ts';

const ROOT_STATE = 0x9e3779b9 | 0;

export function mixState(prev: number, tokenId: number, pos: number): number {
  let h = Math.imul(prev ^ tokenId, 0x85ebca6b) ^ Math.imul(pos + 1, 0xc2b2ae35);
  h ^= h >>> 13;
  h = Math.imul(h, 0x27d4eb2f);
  h ^= h >>> 16;
  return h | 0;
}

export function sampleFromState(state: number, vocabSize: number): number {
  return (Math.imul(state, 0x2545f491) >>> 7) % vocabSize;
}

export class FakeModel {
  readonly #slots: Int32Array;
  readonly #written: Uint8Array;
  readonly #pool: BlockPool;
  readonly #blockSize: number;
  readonly vocabSize: number;
  numTokensComputed = 0;

  constructor(pool: BlockPool, blockSize: number, vocabSize: number) {
    this.#pool = pool;
    this.#blockSize = blockSize;
    this.vocabSize = vocabSize;
    this.#slots = new Int32Array(pool.numBlocks * blockSize);
    this.#written = new Uint8Array(pool.numBlocks * blockSize);
  }

  /**
   * Runs one step; returns one sampled id per entry of out.scheduled (-1 where it does not sample).
   * Placeholder tokens (async scheduling) take the previous step's sample for the request, as the
   * device's select_tokens does.
   */
  step(out: SchedulerOutput, previousSamples: ReadonlyMap<string, number> = new Map()): number[] {
    const bs = this.#blockSize;
    return out.scheduled.map((s) => {
      const slotOf = (pos: number): number => {
        const blockId = s.blockIds[Math.floor(pos / bs)];
        if (blockId === undefined) throw new Error(`${s.requestId}: no block for position ${pos} (table ${s.blockIds.length})`);
        if (blockId === 0) throw new Error(`${s.requestId}: null block in table`);
        return blockId * bs + (pos % bs);
      };
      let state = 0;
      for (let i = 0; i < s.numScheduledTokens; i++) {
        const pos = s.startPos + i;
        let prev = ROOT_STATE;
        if (pos > 0) {
          const prevSlot = slotOf(pos - 1);
          if (!this.#written[prevSlot]) throw new Error(`${s.requestId}: reads unwritten slot ${prevSlot} (position ${pos - 1})`);
          prev = this.#slots[prevSlot]!;
        }
        let tokenId: number | undefined = s.tokenIds[i];
        if (i >= s.tokenIds.length) {
          tokenId = previousSamples.get(s.requestId);
          if (tokenId === undefined || tokenId < 0) throw new Error(`${s.requestId}: placeholder at ${pos} but the previous step sampled nothing for it`);
        }
        state = mixState(prev, tokenId!, pos);
        const slot = slotOf(pos);
        const block = this.#pool.blocks[Math.floor(slot / bs)]!;
        if (block.refCount !== 1) throw new Error(`${s.requestId}: writes position ${pos} into block ${block.blockId} with refCount ${block.refCount}`);
        if (block.blockHash !== null) throw new Error(`${s.requestId}: writes position ${pos} into cached block ${block.blockId}`);
        this.#slots[slot] = state;
        this.#written[slot] = 1;
      }
      this.numTokensComputed += s.numScheduledTokens;
      return s.willSample ? sampleFromState(state, this.vocabSize) : -1;
    });
  }
}

export interface AloneParams {
  maxTokens: number;
  minTokens: number;
  ignoreEos: boolean;
  stopTokenIds: readonly number[];
}

/**
 * What the request produces running alone on a cache-less model. Written independently of
 * src/engine/sched-stop.ts on purpose: length first, then min tokens, EOS, stop ids.
 */
export function runAlone(
  prompt: readonly number[],
  p: AloneParams,
  opts: { vocabSize: number; maxModelLen: number; eosTokenId: number },
): { outputTokenIds: number[]; finish: 'stop' | 'length'; stopReason: number | null } {
  const tokens = [...prompt];
  let state = ROOT_STATE;
  for (let pos = 0; pos < tokens.length; pos++) state = mixState(state, tokens[pos]!, pos);
  const out: number[] = [];
  for (;;) {
    const t = sampleFromState(state, opts.vocabSize);
    out.push(t);
    tokens.push(t);
    if (tokens.length >= opts.maxModelLen || out.length >= p.maxTokens) return { outputTokenIds: out, finish: 'length', stopReason: null };
    if (out.length >= p.minTokens) {
      if (!p.ignoreEos && t === opts.eosTokenId) return { outputTokenIds: out, finish: 'stop', stopReason: null };
      if (p.stopTokenIds.includes(t)) return { outputTokenIds: out, finish: 'stop', stopReason: t };
    }
    state = mixState(state, t, tokens.length - 1);
  }
}

/** Small seeded PRNG (mulberry32) so every randomized test is reproducible from its seed. */
export function makeRng(seed: number): { next(): number; int(lo: number, hi: number): number; pick<T>(xs: readonly T[]): T; chance(p: number): boolean } {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    /** Integer in [lo, hi]. */
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: (xs) => xs[Math.floor(next() * xs.length)]!,
    chance: (p) => next() < p,
  };
}
