/**
 * OpenAI `stop` semantics over a stream of text deltas: the output ends just before the first stop
 * string and never includes it. Text that could be the start of a stop string is held back until the
 * following deltas show whether it is one, so a match spanning deltas is still caught and nothing that
 * turns out to be part of a stop string has already been sent.
 */

export type StopMatch =
  /** No stop string yet: `text` is safe to send now (possibly '' while a partial match is pending). */
  | { text: string; stop: null }
  /** A stop string completed: `text` is what precedes it (send it, then end with finish_reason 'stop'). */
  | { text: string; stop: string };

export class StopStringMatcher {
  readonly #stops: readonly string[];
  /** Received but not yet released: always shorter than the longest stop string. */
  #pending = '';
  #matched: string | null = null;

  /** Empty stop strings are ignored (they would match before any text). */
  constructor(stops: readonly string[]) {
    this.#stops = stops.filter((stop) => stop.length > 0);
  }

  /** The stop string that ended the stream, or null. */
  get matched(): string | null {
    return this.#matched;
  }

  /**
   * Feeds the next delta. When several stop strings complete in the same delta, the one that starts
   * first wins (on a tie, the one listed first); after a match, further deltas are ignored.
   */
  push(delta: string): StopMatch {
    if (this.#matched !== null) return { text: '', stop: this.#matched };
    const text = this.#pending + delta;
    const match = this.#firstMatch(text);
    if (match !== null) {
      this.#pending = '';
      this.#matched = match.stop;
      return { text: text.slice(0, match.index), stop: match.stop };
    }
    const held = this.#partialMatchLength(text);
    this.#pending = text.slice(text.length - held);
    return { text: text.slice(0, text.length - held), stop: null };
  }

  /** Releases the held-back text at the end of the stream (it was not a stop string after all). */
  flush(): string {
    const text = this.#pending;
    this.#pending = '';
    return text;
  }

  #firstMatch(text: string): { index: number; stop: string } | null {
    let best: { index: number; stop: string } | null = null;
    for (const stop of this.#stops) {
      // The pending text holds no complete stop string, so the search is bounded by it plus the delta.
      const index = text.indexOf(stop);
      if (index !== -1 && (best === null || index < best.index)) best = { index, stop };
    }
    return best;
  }

  /** Length of the longest suffix of `text` that is a proper prefix of some stop string. */
  #partialMatchLength(text: string): number {
    let longest = 0;
    for (const stop of this.#stops) {
      for (let length = Math.min(stop.length - 1, text.length); length > longest; length--) {
        if (text.endsWith(stop.slice(0, length))) {
          longest = length;
          break;
        }
      }
    }
    return longest;
  }
}
