import { describe, expect, it } from 'vitest';
import { FreeBlockQueue } from '../../../src/kv/free-block-queue.ts';
import { KVBlock } from '../../../src/kv/kv-block.ts';
import { makeRng } from '../engine/fake-model.ts';

const blocks = (n: number): KVBlock[] => Array.from({ length: n }, (_, i) => new KVBlock(i));
const ids = (q: FreeBlockQueue): number[] => [...q].map((b) => b.blockId);

describe('FreeBlockQueue', () => {
  it('pops from the head in insertion order and appends at the tail', () => {
    const bs = blocks(4);
    const q = new FreeBlockQueue(bs);
    expect(q.length).toBe(4);
    expect(q.popLeft().blockId).toBe(0);
    q.append(bs[0]!);
    expect(ids(q)).toEqual([1, 2, 3, 0]);
    expect(q.peekLeft()?.blockId).toBe(1);
  });

  it('removes from the head, middle and tail in O(1) and clears the links', () => {
    const bs = blocks(5);
    const q = new FreeBlockQueue(bs);
    q.remove(bs[2]!);
    q.remove(bs[0]!);
    q.remove(bs[4]!);
    expect(ids(q)).toEqual([1, 3]);
    expect(q.length).toBe(2);
    expect(bs[2]!.prevFree).toBeNull();
    expect(bs[2]!.nextFree).toBeNull();
    expect(q.contains(bs[2]!)).toBe(false);
    expect(q.contains(bs[3]!)).toBe(true);
    q.checkIntegrity(5);
  });

  it('refuses double insertion, removing a non-member and popping an empty queue', () => {
    const bs = blocks(2);
    const q = new FreeBlockQueue([bs[0]!]);
    expect(() => q.append(bs[0]!)).toThrow(/already in a free block queue/);
    expect(() => q.remove(bs[1]!)).toThrow(/not in the free block queue/);
    q.popLeft();
    expect(() => q.popLeft()).toThrow(/empty/);
    expect(q.peekLeft()).toBeNull();
  });

  it('checkIntegrity detects a broken back link, a cycle and a wrong length', () => {
    const bs = blocks(4);
    const q = new FreeBlockQueue(bs);
    q.checkIntegrity(4);
    bs[2]!.prevFree = bs[0]!;
    expect(() => q.checkIntegrity(4)).toThrow(/block 2\.prevFree is 0, expected 1/);
    bs[2]!.prevFree = bs[1]!;
    const savedNext = bs[3]!.nextFree;
    bs[3]!.nextFree = bs[0]!; // cycle
    expect(() => q.checkIntegrity(4)).toThrow(/free list/);
    bs[3]!.nextFree = savedNext;
    q.checkIntegrity(4);
    expect(() => q.checkIntegrity(3)).toThrow(/more than 3 entries/);
  });

  it('matches an array model over thousands of random operations', () => {
    const rng = makeRng(7);
    const bs = blocks(64);
    const q = new FreeBlockQueue(bs);
    const model = bs.map((b) => b.blockId);
    for (let i = 0; i < 5000; i++) {
      const op = rng.int(0, 2);
      if (op === 0 && model.length > 0) {
        expect(q.popLeft().blockId).toBe(model.shift());
      } else if (op === 1 && model.length > 0) {
        const id = rng.pick(model);
        q.remove(bs[id]!);
        model.splice(model.indexOf(id), 1);
      } else {
        const out = bs.filter((b) => !model.includes(b.blockId));
        if (out.length === 0) continue;
        const b = rng.pick(out);
        q.append(b);
        model.push(b.blockId);
      }
      expect(q.length).toBe(model.length);
    }
    expect(ids(q)).toEqual(model);
    q.checkIntegrity(64);
  });
});
