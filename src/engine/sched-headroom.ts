/**
 * Decode headroom at admission (SGLang's "new token ratio"): a waiting request is admitted only if the
 * KV blocks left after its prompt still cover a fraction of what the running requests, and itself, may
 * yet generate. Without it (vLLM's policy) the scheduler admits whatever prompts fit now and preempts
 * later, when the decodes grow: with more requests than the cache can finish at once (1000 requests of
 * 1024 + 512 tokens on 898k tokens of KV), it recomputes prompts over and over.
 *
 * The fraction starts at `initialRatio`, falls by `decayPerStep` every step without a preemption down to
 * `minRatio` (most requests stop before max_tokens, so a fixed high reserve would waste the cache), and
 * jumps back to `initialRatio` when a step preempts or the scheduler is idle (as SGLang re-inits it on
 * an idle loop): what a burst meets must not depend on how long the server ran light traffic before.
 * Without the idle reset, throughput-1000 run after the rest of the serving suite met a reserve that
 * had decayed to its floor and preempted 197 times, against 80 on a fresh server (bench/NOTES.md).
 */
import type { Request } from './request.ts';

export interface HeadroomConfig {
  initialRatio: number;
  minRatio: number;
  decayPerStep: number;
}

/** SGLang's defaults (init_new_token_ratio 0.7, min 0.1, decaying over ~600 steps), scaled by conservativeness. */
export function headroomFromConservativeness(conservativeness: number): HeadroomConfig | null {
  if (!(conservativeness > 0)) return null;
  const initialRatio = Math.min(1, 0.7 * conservativeness);
  const minRatio = Math.min(initialRatio, 0.1 * conservativeness);
  return { initialRatio, minRatio, decayPerStep: (initialRatio - minRatio) / 600 };
}

export class DecodeHeadroom {
  readonly config: HeadroomConfig;
  #ratio: number;

  constructor(config: HeadroomConfig) {
    for (const [key, value] of Object.entries(config)) {
      if (!(value >= 0 && value <= 1)) throw new RangeError(`headroom ${key} must be in [0, 1], got ${value}`);
    }
    if (config.minRatio > config.initialRatio) throw new RangeError('headroom minRatio must be <= initialRatio');
    this.config = config;
    this.#ratio = config.initialRatio;
  }

  get ratio(): number {
    return this.#ratio;
  }

  /** After scheduling a step: back to the initial ratio when it preempted, else one decay step down. */
  afterStep(preempted: boolean): void {
    this.#ratio = preempted ? this.config.initialRatio : Math.max(this.config.minRatio, this.#ratio - this.config.decayPerStep);
  }

  /** Back to the initial ratio: nothing is running, so no decode has shown how long outputs are. */
  reset(): void {
    this.#ratio = this.config.initialRatio;
  }

  /** Tokens the request may still generate, of which `ratio` is reserved. */
  reservedTokens(request: Request, maxModelLen: number): number {
    const maxOutputs = Math.min(request.params.maxTokens, maxModelLen - request.numPromptTokens);
    const remaining = Math.max(0, maxOutputs - request.numOutputTokens - request.numOutputPlaceholders);
    return Math.ceil(remaining * this.#ratio);
  }
}
