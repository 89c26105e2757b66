/**
 * The benchmark's synthetic datasets, all seeded:
 *  - random:   input and output lengths uniform in [len·(1 − r), len·(1 + r)] (vLLM's --random-range-ratio);
 *  - sharegpt: ShareGPT-like long-tailed lengths without the download: log-normal input (mean ≈ 200 tokens)
 *              and output (mean ≈ 180) lengths, truncated to vLLM's ShareGPT filter ([4, 1024] each, so
 *              prompt + output ≤ 2048), with the log-normal's location solved so the truncated mean hits
 *              the target;
 *  - prefix:   --num-prefixes groups of requests sharing a --prefix-len prefix, each with its own
 *              --suffix-len suffix, shuffled.
 * Prompts are token-id arrays (/v1/completions accepts them; ids from the --tokenizer's vocabulary,
 * special tokens left out) or text: random common words, cut to the exact token count when a tokenizer
 * is given (else about one token per word, and the server's usage tells the real count).
 */
import type { TextTokenizer } from '../../src/tokenizer/index.ts';
import { Rng } from './random.ts';
import { WORDS } from './words.ts';

export type DatasetName = 'random' | 'sharegpt' | 'prefix';
export const DATASET_NAMES: readonly DatasetName[] = ['random', 'sharegpt', 'prefix'];
export type PromptFormat = 'text' | 'ids';

/** What the datasets need of a tokenizer (TextTokenizer has it). */
export type DatasetTokenizer = Pick<TextTokenizer, 'encode' | 'decode' | 'vocabSize' | 'specialTokenIds'>;

export interface SampleRequest {
  prompt: string | number[];
  /** Prompt tokens: exact for token ids or text cut with a tokenizer, else an estimate. */
  promptLen: number;
  promptLenExact: boolean;
  /** max_tokens for the request. */
  expectedOutputLen: number;
}

export interface DatasetOptions {
  name: DatasetName;
  numPrompts: number;
  seed: number;
  randomInputLen: number;
  randomOutputLen: number;
  randomRangeRatio: number;
  /** Fixed output length for sharegpt (else the synthetic distribution's). */
  sharegptOutputLen: number | null;
  prefixLen: number;
  suffixLen: number;
  numPrefixes: number;
  promptFormat: PromptFormat;
  tokenizer: DatasetTokenizer | null;
}

export interface LengthDistribution {
  /** Target mean of the truncated distribution. */
  mean: number;
  sigma: number;
  min: number;
  max: number;
}

/** ShareGPT-like lengths (ShareGPT as vLLM filters it: 4 ≤ prompt ≤ 1024, 4 ≤ output, prompt + output ≤ 2048). */
export const SHAREGPT_LENGTHS: { input: LengthDistribution; output: LengthDistribution } = {
  input: { mean: 200, sigma: 1.0, min: 4, max: 1024 },
  output: { mean: 180, sigma: 0.9, min: 4, max: 1024 },
};

export interface RequestLengths {
  input: number;
  output: number;
  /** prefix dataset: which shared prefix, and the length of the suffix after it. */
  prefixIndex?: number;
}

// ----- distributions -----------------------------------------------------------------------------------

/** Φ, the standard normal CDF (erfc with the Numerical Recipes Chebyshev fit: |error| < 1.2e-7). */
export function normalCdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.5 * z);
  const erfc =
    t *
    Math.exp(
      -z * z - 1.26551223 +
        t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? 1 - erfc / 2 : erfc / 2;
}

/** Mean of exp(N(mu, sigma²)) conditioned on lying in [min, max]. */
export function truncatedLognormalMean(mu: number, sigma: number, min: number, max: number): number {
  const a = (Math.log(min) - mu) / sigma;
  const b = (Math.log(max) - mu) / sigma;
  const mass = normalCdf(b) - normalCdf(a);
  return (Math.exp(mu + (sigma * sigma) / 2) * (normalCdf(b - sigma) - normalCdf(a - sigma))) / mass;
}

/** The location mu for which the truncated log-normal's mean is `d.mean` (bisection; the mean grows with mu). */
export function solveLognormalMu(d: LengthDistribution): number {
  if (!(d.mean > d.min && d.mean < d.max)) throw new RangeError(`a mean of ${d.mean} is not inside [${d.min}, ${d.max}]`);
  let lo = Math.log(d.min) - 6 * d.sigma;
  let hi = Math.log(d.max) + 6 * d.sigma;
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    if (truncatedLognormalMean(mid, d.sigma, d.min, d.max) < d.mean) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** Integer lengths from the truncated log-normal (redrawn until inside [min, max]). */
export function sampleTruncatedLognormal(d: LengthDistribution, n: number, rng: Rng): number[] {
  const mu = solveLognormalMu(d);
  const out: number[] = [];
  while (out.length < n) {
    const x = Math.exp(mu + d.sigma * rng.normal());
    if (x >= d.min && x <= d.max) out.push(Math.round(x));
  }
  return out;
}

/** vLLM's random lengths: uniform integers in [floor(len·(1 − r)), ceil(len·(1 + r))], at least `floor`. */
export function uniformLengths(len: number, ratio: number, n: number, rng: Rng, floor = 1): number[] {
  if (!(ratio >= 0 && ratio < 1)) throw new RangeError(`--random-range-ratio must be in [0, 1), got ${ratio}`);
  const low = Math.max(floor, Math.floor(len * (1 - ratio)));
  const high = Math.max(low, Math.ceil(len * (1 + ratio)));
  return Array.from({ length: n }, () => rng.int(low, high));
}

/** Every request's input and output length, without building prompts. */
export function sampleLengths(options: DatasetOptions): RequestLengths[] {
  const rng = new Rng(options.seed).fork(1);
  const n = options.numPrompts;
  switch (options.name) {
    case 'random': {
      const inputs = uniformLengths(options.randomInputLen, options.randomRangeRatio, n, rng);
      const outputs = uniformLengths(options.randomOutputLen, options.randomRangeRatio, n, rng);
      return inputs.map((input, i) => ({ input, output: outputs[i]! }));
    }
    case 'sharegpt': {
      const inputs = sampleTruncatedLognormal(SHAREGPT_LENGTHS.input, n, rng);
      const outputs = options.sharegptOutputLen !== null ? new Array<number>(n).fill(options.sharegptOutputLen) : sampleTruncatedLognormal(SHAREGPT_LENGTHS.output, n, rng);
      return inputs.map((input, i) => ({ input, output: outputs[i]! }));
    }
    case 'prefix': {
      if (!(options.numPrefixes >= 1)) throw new RangeError('--num-prefixes must be at least 1');
      const lengths: RequestLengths[] = [];
      for (let i = 0; i < n; i++) {
        lengths.push({ input: options.prefixLen + options.suffixLen, output: options.randomOutputLen, prefixIndex: i % options.numPrefixes });
      }
      return rng.shuffle(lengths);
    }
  }
}

// ----- prompts -------------------------------------------------------------------------------------------

export interface BuiltPrompt {
  prompt: string | number[];
  length: number;
  exact: boolean;
}

function randomWords(count: number, rng: Rng): string {
  const words: string[] = [];
  for (let i = 0; i < count; i++) words.push(WORDS[rng.int(0, WORDS.length - 1)]!);
  return words.join(' ');
}

function randomIds(count: number, tokenizer: DatasetTokenizer, rng: Rng): number[] {
  const ids: number[] = [];
  while (ids.length < count) {
    const id = rng.int(0, tokenizer.vocabSize - 1);
    if (!tokenizer.specialTokenIds.has(id)) ids.push(id);
  }
  return ids;
}

const noSpecial = { addSpecialTokens: false };

/** Tokens of each word alone at the start of a text and after a space, per tokenizer. */
const wordCountCache = new WeakMap<DatasetTokenizer, { first: number[]; rest: number[] }>();
function wordCounts(tokenizer: DatasetTokenizer): { first: number[]; rest: number[] } {
  let counts = wordCountCache.get(tokenizer);
  if (counts === undefined) {
    counts = {
      first: WORDS.map((w) => tokenizer.encode(w, noSpecial).length),
      rest: WORDS.map((w) => tokenizer.encode(` ${w}`, noSpecial).length),
    };
    wordCountCache.set(tokenizer, counts);
  }
  return counts;
}

/**
 * Random words that tokenize to exactly `length` tokens with this tokenizer. Fast path: with the usual
 * pre-tokenizers words do not merge across spaces, so a text's count is the sum of its words' counts;
 * pick words until the sum is `length`, then check with one encode. Else (or if the check fails): cut the
 * encoded text at a token boundary and re-check, a few times (decode → encode need not round-trip),
 * keeping the nearest length.
 */
export function textOfLength(length: number, tokenizer: DatasetTokenizer, rng: Rng): BuiltPrompt {
  const counts = wordCounts(tokenizer);
  const words: string[] = [];
  let total = 0;
  while (total < length) {
    const table = words.length === 0 ? counts.first : counts.rest;
    const remaining = length - total;
    let pick = rng.int(0, WORDS.length - 1);
    if (table[pick]! > remaining) {
      // The first word from a random start that fits.
      const offset = pick;
      pick = -1;
      for (let k = 0; k < WORDS.length; k++) {
        const j = (offset + k) % WORDS.length;
        if (table[j]! <= remaining && table[j]! > 0) {
          pick = j;
          break;
        }
      }
      if (pick === -1) break;
    }
    words.push(WORDS[pick]!);
    total += table[pick]!;
  }
  let text = words.join(' ');
  let ids = tokenizer.encode(text, noSpecial);
  for (let attempt = 0; attempt < 8; attempt++) {
    if (ids.length === length) return { prompt: text, length, exact: true };
    if (ids.length > length) text = tokenizer.decode(ids.slice(0, length - Math.max(0, attempt - 1)));
    else text = `${text} ${randomWords(length - ids.length, rng)}`;
    ids = tokenizer.encode(text, noSpecial);
  }
  return { prompt: text, length: ids.length, exact: ids.length === length };
}

function buildPrompt(length: number, options: DatasetOptions, rng: Rng): BuiltPrompt {
  const { tokenizer } = options;
  if (options.promptFormat === 'ids') {
    if (tokenizer === null) throw new RangeError('token-id prompts need --tokenizer (the vocabulary to draw ids from)');
    return { prompt: randomIds(length, tokenizer, rng), length, exact: true };
  }
  if (tokenizer !== null) return textOfLength(length, tokenizer, rng);
  return { prompt: randomWords(length, rng), length, exact: false };
}

function joinPrompts(prefix: BuiltPrompt, suffix: BuiltPrompt, tokenizer: DatasetTokenizer | null): BuiltPrompt {
  if (Array.isArray(prefix.prompt) && Array.isArray(suffix.prompt)) {
    return { prompt: [...prefix.prompt, ...suffix.prompt], length: prefix.length + suffix.length, exact: true };
  }
  const text = `${String(prefix.prompt)} ${String(suffix.prompt)}`;
  if (tokenizer !== null) return { prompt: text, length: tokenizer.encode(text, noSpecial).length, exact: true };
  return { prompt: text, length: prefix.length + suffix.length, exact: false };
}

export function sampleRequests(options: DatasetOptions): SampleRequest[] {
  if (!(options.numPrompts >= 1)) throw new RangeError('--num-prompts must be at least 1');
  const lengths = sampleLengths(options);
  const rng = new Rng(options.seed).fork(2);
  if (options.name === 'prefix') {
    const prefixes = Array.from({ length: options.numPrefixes }, () => buildPrompt(options.prefixLen, options, rng));
    return lengths.map((l) => {
      const built = joinPrompts(prefixes[l.prefixIndex!]!, buildPrompt(options.suffixLen, options, rng), options.tokenizer);
      return { prompt: built.prompt, promptLen: built.length, promptLenExact: built.exact, expectedOutputLen: l.output };
    });
  }
  return lengths.map((l) => {
    const built = buildPrompt(l.input, options, rng);
    return { prompt: built.prompt, promptLen: built.length, promptLenExact: built.exact, expectedOutputLen: l.output };
  });
}
