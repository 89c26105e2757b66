/**
 * Chained block hashes for automatic prefix caching.
 *
 * hash(block i) = H(secret ‖ parentHash ‖ tokenIds of block i ‖ extraKeys), where parentHash is the hash
 * of block i-1 (none for block 0), so a hash names the whole prefix up to and including its block.
 * extraKeys carries whatever else changes the KV of the block (the tenant's cache salt; later LoRA ids,
 * multimodal hashes). The KV manager passes the cache salt with block 0 only: the chain carries it on.
 *
 * Why a process-random secret: without it, anyone who can guess a prompt can also predict which blocks
 * are cached and probe other tenants' prompts through timing (the attack vLLM's cache_salt addresses).
 * A secret prefix with SHA-256 truncated to 128 bits is enough here: the digest never leaves the process,
 * so length extension is moot, and it is ~30x cheaper than node's HMAC (which re-derives its key pads
 * on every call). 128 bits keeps accidental collisions out of reach for any realistic cache lifetime.
 */
import { hash, randomBytes } from 'node:crypto';

/** 32 hex characters (128 bits). Strings are cheap Map keys and compare by value. */
export type BlockHash = string;

const SECRET_BYTES = 32;
const HASH_BYTES = 16;

export class BlockHasher {
  readonly #secret: Buffer;
  /** Reused input buffer: secret ‖ flag ‖ parent(16) ‖ numTokens(u32) ‖ tokens ‖ extraKeys. Grows on demand. */
  #scratch: Buffer;

  /** secret: leave out to draw a fresh random one (the normal case); tests pass one to compare hashers. */
  constructor(secret: Uint8Array = randomBytes(SECRET_BYTES)) {
    if (secret.length < 16) throw new RangeError(`BlockHasher secret must be at least 16 bytes, got ${secret.length}`);
    this.#secret = Buffer.from(secret);
    this.#scratch = Buffer.alloc(this.#secret.length + 1 + HASH_BYTES + 4 + 4 * 16 + 64);
    this.#secret.copy(this.#scratch, 0);
  }

  /**
   * parentHash: the previous block's hash, null for the first block.
   * tokenIds: exactly the block's tokens (a view into the request's token buffer; not retained).
   * extraKeys: '' when there are none. It is encoded last, after fixed-size fields, so no two
   * (parent, tokens, extraKeys) triples share an encoding.
   */
  hashBlock(parentHash: BlockHash | null, tokenIds: Int32Array, extraKeys = ''): BlockHash {
    const extraBytes = extraKeys.length === 0 ? 0 : Buffer.byteLength(extraKeys, 'utf8');
    const size = this.#secret.length + 1 + HASH_BYTES + 4 + tokenIds.byteLength + extraBytes;
    if (size > this.#scratch.length) {
      const grown = Buffer.alloc(Math.max(size, 2 * this.#scratch.length));
      this.#secret.copy(grown, 0);
      this.#scratch = grown;
    }
    const buf = this.#scratch;
    let pos = this.#secret.length;
    if (parentHash === null) {
      buf[pos++] = 0;
      buf.fill(0, pos, pos + HASH_BYTES);
    } else {
      buf[pos++] = 1;
      if (buf.write(parentHash, pos, HASH_BYTES, 'hex') !== HASH_BYTES) {
        throw new RangeError(`not a block hash: ${parentHash}`);
      }
    }
    pos += HASH_BYTES;
    buf.writeUInt32LE(tokenIds.length, pos);
    pos += 4;
    // Host byte order is fine: hashes never leave the process.
    buf.set(new Uint8Array(tokenIds.buffer, tokenIds.byteOffset, tokenIds.byteLength), pos);
    pos += tokenIds.byteLength;
    if (extraBytes > 0) pos += buf.write(extraKeys, pos, 'utf8');
    return hash('sha256', buf.subarray(0, pos), 'hex').slice(0, 2 * HASH_BYTES);
  }
}

let processHasher: BlockHasher | null = null;

/** The hasher every KV manager in this process uses unless given another: one secret per process. */
export function defaultBlockHasher(): BlockHasher {
  processHasher ??= new BlockHasher();
  return processHasher;
}
