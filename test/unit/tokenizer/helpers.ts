/**
 * Shared by the tokenizer tests: where the fixtures and the optional reference tokenizers live, a
 * seeded random generator, and a loader that loads each tokenizer once per test file.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TextTokenizer } from '../../../src/tokenizer/tokenizer.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** The committed tok512 tokenizer (stories260K's), so the core tests never need ../shared. */
export const TOK512_DIR = path.join(REPO_ROOT, 'test/fixtures/tok512');
/** Reference tokenizers and models beside the repository; CI may not have them. */
export const SHARED_DIR = path.resolve(REPO_ROOT, '../shared');

export const sharedPath = (...parts: string[]): string => path.join(SHARED_DIR, ...parts);
export const hasShared = (...parts: string[]): boolean => existsSync(sharedPath(...parts));
/** Appended to the names of suites that need ../shared, so a skip says why. */
export const NEEDS_SHARED = '(needs ../shared; skipped where it is absent, e.g. CI)';

const loaded = new Map<string, Promise<TextTokenizer>>();

export function loadTokenizer(dir: string): Promise<TextTokenizer> {
  let tokenizer = loaded.get(dir);
  if (tokenizer === undefined) {
    tokenizer = TextTokenizer.fromDirectory(dir);
    loaded.set(dir, tokenizer);
  }
  return tokenizer;
}

/** mulberry32: a small deterministic generator, so random-input tests replay identically. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomInt(random: () => number, below: number): number {
  return Math.floor(random() * below);
}

/** Texts every tokenizer must round-trip: Chinese, emoji (incl. ZWJ sequences), whitespace runs. */
export const ROUND_TRIP_TEXTS = [
  'Hello, world! This is a test.',
  '你好，世界！我们今天去公园散步。',
  'Emoji: 😀🎉🚀 family 👩‍👩‍👧 flag 🇫🇷 and ❤️',
  'tabs\t\tand   three spaces,\n\n\nthree newlines and a trailing space ',
  'Mixed 中文 English, 日本語 かな, Ελληνικά, عربى, and code: `x = 1 + 2;`',
];
