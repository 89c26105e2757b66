/**
 * A progress bar on stderr while requests finish. On a terminal it redraws one line (at most ten times a
 * second); into a file or pipe (logs) it prints a plain line at each quarter instead, so logs stay short.
 */
export interface ProgressStream {
  isTTY?: boolean;
  write(text: string): unknown;
}

function clock(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  const two = (n: number) => String(n).padStart(2, '0');
  return s >= 3600 ? `${Math.floor(s / 3600)}:${two(Math.floor(s / 60) % 60)}:${two(s % 60)}` : `${two(Math.floor(s / 60))}:${two(s % 60)}`;
}

export class ProgressBar {
  readonly #total: number;
  readonly #stream: ProgressStream;
  readonly #enabled: boolean;
  readonly #start = performance.now();
  #done = 0;
  #failed = 0;
  #lastDraw = 0;
  #nextQuarter = 1;

  constructor(total: number, options: { stream?: ProgressStream; enabled?: boolean } = {}) {
    this.#total = total;
    this.#stream = options.stream ?? process.stderr;
    this.#enabled = options.enabled ?? true;
  }

  /** One request finished. */
  tick(failed = false): void {
    this.#done++;
    if (failed) this.#failed++;
    if (!this.#enabled) return;
    if (this.#stream.isTTY) {
      const now = performance.now();
      if (now - this.#lastDraw >= 100 || this.#done === this.#total) {
        this.#lastDraw = now;
        this.#stream.write(`\r${this.line()}\x1b[K`);
      }
    } else {
      while (this.#nextQuarter <= 4 && this.#done >= (this.#total * this.#nextQuarter) / 4) {
        this.#nextQuarter++;
        this.#stream.write(`${this.line()}\n`);
      }
    }
  }

  /** tqdm-like: " 37%|█████▌         | 370/1000 [00:12<00:20, 30.10 req/s] (2 failed)". */
  line(): string {
    const elapsed = (performance.now() - this.#start) / 1000;
    const fraction = this.#total === 0 ? 1 : this.#done / this.#total;
    const rate = elapsed > 0 ? this.#done / elapsed : 0;
    const remaining = rate > 0 ? (this.#total - this.#done) / rate : Infinity;
    const width = 25;
    const filled = Math.floor(fraction * width);
    const bar = '█'.repeat(filled) + (filled < width ? ' '.repeat(width - filled) : '');
    const failed = this.#failed > 0 ? ` (${this.#failed} failed)` : '';
    return `${String(Math.floor(fraction * 100)).padStart(3)}%|${bar}| ${this.#done}/${this.#total} [${clock(elapsed)}<${clock(remaining)}, ${rate.toFixed(2)} req/s]${failed}`;
  }

  /** Ends the bar's line on a terminal. */
  close(): void {
    if (this.#enabled && this.#stream.isTTY && this.#done > 0) this.#stream.write('\n');
  }
}
