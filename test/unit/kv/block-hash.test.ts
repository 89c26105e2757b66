import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { BlockHasher, defaultBlockHasher } from '../../../src/kv/block-hash.ts';
import type { KVRequest } from '../../../src/kv/kv-cache-manager.ts';
import { KVCacheManager } from '../../../src/kv/kv-cache-manager.ts';

const secret = new Uint8Array(32).fill(7);
const toks = (...xs: number[]): Int32Array => Int32Array.from(xs);

function chain(h: BlockHasher, tokens: number[], blockSize: number, salt = ''): string[] {
  const out: string[] = [];
  for (let i = 0; i + blockSize <= tokens.length; i += blockSize) {
    out.push(h.hashBlock(out.at(-1) ?? null, Int32Array.from(tokens.slice(i, i + blockSize)), out.length === 0 ? salt : ''));
  }
  return out;
}

describe('block hashes', () => {
  it('are 128-bit hex strings, deterministic for a given secret', () => {
    const a = new BlockHasher(secret).hashBlock(null, toks(1, 2, 3, 4));
    expect(a).toMatch(/^[0-9a-f]{32}$/);
    expect(new BlockHasher(secret).hashBlock(null, toks(1, 2, 3, 4))).toBe(a);
  });

  it('chain: a shared prefix gives equal hashes, and a block hash depends on everything before it', () => {
    const h = new BlockHasher(secret);
    const x = chain(h, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], 4);
    const y = chain(h, [1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0], 4);
    const z = chain(h, [9, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], 4);
    expect(y.slice(0, 2)).toEqual(x.slice(0, 2));
    expect(y[2]).not.toBe(x[2]);
    // Same tokens in blocks 1 and 2 as x, different first block: every hash differs.
    for (let i = 0; i < 3; i++) expect(z[i]).not.toBe(x[i]);
    // The same block content after a different parent hashes differently.
    expect(h.hashBlock(x[0]!, toks(5, 6, 7, 8))).toBe(x[1]);
    expect(h.hashBlock(null, toks(5, 6, 7, 8))).not.toBe(x[1]);
  });

  it('a different cache salt changes every block of the chain', () => {
    const h = new BlockHasher(secret);
    const tokens = Array.from({ length: 32 }, (_, i) => i);
    const a = chain(h, tokens, 8, 'tenant-a');
    const b = chain(h, tokens, 8, 'tenant-b');
    const none = chain(h, tokens, 8);
    for (let i = 0; i < a.length; i++) {
      expect(a[i]).not.toBe(b[i]);
      expect(a[i]).not.toBe(none[i]);
    }
  });

  it('encodes tokens and extra keys unambiguously', () => {
    const h = new BlockHasher(secret);
    expect(h.hashBlock(null, toks(1, 2))).not.toBe(h.hashBlock(null, toks(1, 2), 'x'));
    expect(h.hashBlock(null, toks(0x7800))).not.toBe(h.hashBlock(null, toks(), 'x'));
    expect(h.hashBlock(null, toks(1, 2, 3))).not.toBe(h.hashBlock(null, toks(1, 2)));
  });

  it('a different secret gives different hashes', () => {
    const other = new Uint8Array(32).fill(8);
    expect(new BlockHasher(secret).hashBlock(null, toks(1, 2))).not.toBe(new BlockHasher(other).hashBlock(null, toks(1, 2)));
    expect(() => new BlockHasher(new Uint8Array(8))).toThrow(/at least 16 bytes/);
  });

  it('each process draws its own secret', () => {
    const modulePath = fileURLToPath(new URL('../../../src/kv/block-hash.ts', import.meta.url));
    const script = `import { defaultBlockHasher } from ${JSON.stringify(modulePath)};
      process.stdout.write(defaultBlockHasher().hashBlock(null, Int32Array.from([1, 2, 3, 4])));`;
    const run = (): string => execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    const a = run();
    const b = run();
    const here = defaultBlockHasher().hashBlock(null, toks(1, 2, 3, 4));
    expect(a).toMatch(/^[0-9a-f]{32}$/);
    expect(new Set([a, b, here]).size).toBe(3);
    expect(defaultBlockHasher()).toBe(defaultBlockHasher());
  });

  it('the KV manager hashes each full block once, incrementally as the request grows', () => {
    let calls = 0;
    class CountingHasher extends BlockHasher {
      override hashBlock(parent: string | null, tokenIds: Int32Array, extraKeys?: string): string {
        calls++;
        return super.hashBlock(parent, tokenIds, extraKeys);
      }
    }
    const kv = new KVCacheManager({ numBlocks: 16, blockSize: 4, enablePrefixCaching: true, hasher: new CountingHasher(secret) });
    const tokens = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    const req: KVRequest & { numTokens: number } = {
      requestId: 'a',
      numTokens: 10,
      numComputedTokens: 0,
      cacheSalt: null,
      blockHashes: [],
      tokenIds: (s, e) => Int32Array.from(tokens.slice(s, e)),
    };
    kv.getComputedBlocks(req);
    expect(calls).toBe(2);
    kv.getComputedBlocks(req);
    expect(calls).toBe(2);
    tokens.push(11, 12);
    req.numTokens = 12;
    kv.getComputedBlocks(req);
    expect(calls).toBe(3);
    expect(req.blockHashes).toEqual(chain(new BlockHasher(secret), tokens, 4));
  });
});
