/**
 * How progress looks: on a terminal, one bar redrawn in place
 *
 *   Qwen/Qwen2.5-0.5B-Instruct  [██████████░░░░░░░░░░]  512.30 MiB / 988.10 MiB  23.4 MiB/s  eta 20 s  model.safetensors
 *
 * and otherwise (logs, CI, pipes) a plain line every few seconds, then the summary.
 */
import { formatBytes } from '../model/memory.ts';
import type { ProgressReporter, ProgressTask } from '../model/progress.ts';

export interface ProgressLine {
  label: string;
  doneBytes: number;
  totalBytes: number;
  /** Over the last few seconds; null until measurable. */
  bytesPerSecond: number | null;
  detail: string | null;
}

export interface ProgressDisplayOptions {
  /** Where the bar is drawn (default: stderr). */
  stream?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Draw a bar (default: whether the stream is a terminal). */
  tty?: boolean;
  /** Without a terminal: a line at most this often (default 5000 ms). */
  intervalMs?: number;
  /** Without a terminal: where lines go (default: the stream); `fields` for structured logs. */
  writeLine?: (text: string, fields: ProgressLine | { label: string; summary: string }) => void;
  /** Monotonic milliseconds (tests). */
  now?: () => number;
}

const BAR_WIDTH = 20;
const REDRAW_MS = 100;
const SPEED_WINDOW_MS = 5000;

export function createProgressDisplay(options: ProgressDisplayOptions = {}): ProgressReporter {
  const stream = options.stream ?? process.stderr;
  const tty = options.tty ?? stream.isTTY === true;
  const now = options.now ?? (() => performance.now());
  const intervalMs = options.intervalMs ?? 5000;
  const writeLine = options.writeLine ?? ((text: string) => void stream.write(`${text}\n`));

  return {
    begin(label: string, totalBytes: number, doneBytes = 0): ProgressTask {
      const samples: Array<[number, number]> = [[now(), doneBytes]];
      let done = doneBytes;
      let detail: string | null = null;
      let lastDraw = -Infinity;
      let ended = false;

      const speed = (): number | null => {
        const [t0, b0] = samples[0]!;
        const [t1, b1] = samples[samples.length - 1]!;
        return t1 - t0 >= 250 ? Math.max(0, ((b1 - b0) / (t1 - t0)) * 1000) : null;
      };
      const line = (): ProgressLine => ({ label, doneBytes: done, totalBytes, bytesPerSecond: speed(), detail });
      const draw = () => {
        // A terminal of unknown width (0 under some wrappers) gets 100 columns.
        const text = formatBar(line(), stream.columns && stream.columns >= 40 ? stream.columns : 100);
        stream.write(`\r${text}\x1b[K`);
      };
      if (tty) draw();
      else writeLine(formatPlain(line()), line());
      lastDraw = now();

      return {
        update(doneBytes: number, newDetail?: string) {
          if (ended) return;
          done = doneBytes;
          if (newDetail !== undefined) detail = newDetail;
          const t = now();
          samples.push([t, done]);
          while (samples.length > 2 && t - samples[0]![0] > SPEED_WINDOW_MS) samples.shift();
          if (t - lastDraw < (tty ? REDRAW_MS : intervalMs)) return;
          lastDraw = t;
          if (tty) draw();
          else writeLine(formatPlain(line()), line());
        },
        end(summary?: string) {
          if (ended) return;
          ended = true;
          const text = summary ?? formatPlain(line());
          if (tty) stream.write(`\r${text}\x1b[K\n`);
          else writeLine(text, { label, summary: text });
        },
      };
    },
  };
}

export function formatPlain(p: ProgressLine): string {
  const percent = p.totalBytes > 0 ? ` (${Math.floor((p.doneBytes / p.totalBytes) * 100)}%)` : '';
  const parts = [`${p.label}: ${formatBytes(p.doneBytes)} of ${formatBytes(p.totalBytes)}${percent}`];
  if (p.bytesPerSecond !== null) parts.push(`${formatRate(p.bytesPerSecond)}`, ...eta(p));
  if (p.detail) parts.push(p.detail);
  return parts.join(', ');
}

export function formatBar(p: ProgressLine, columns: number): string {
  const fraction = p.totalBytes > 0 ? Math.min(1, p.doneBytes / p.totalBytes) : 0;
  const filled = Math.round(fraction * BAR_WIDTH);
  const bar = `[${'█'.repeat(filled)}${'░'.repeat(BAR_WIDTH - filled)}]`;
  const parts = [p.label, bar, `${formatBytes(p.doneBytes)} / ${formatBytes(p.totalBytes)}`];
  if (p.bytesPerSecond !== null) parts.push(formatRate(p.bytesPerSecond), ...eta(p));
  let text = parts.join('  ');
  if (p.detail) text += `  ${p.detail}`;
  // One terminal line: a wrapped line could not be redrawn in place.
  return text.length >= columns ? `${text.slice(0, Math.max(0, columns - 2))}…` : text;
}

function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(Math.round(bytesPerSecond))}/s`;
}

function eta(p: ProgressLine): string[] {
  if (p.bytesPerSecond === null || p.bytesPerSecond <= 0 || p.totalBytes <= p.doneBytes) return [];
  return [`eta ${formatDuration((p.totalBytes - p.doneBytes) / p.bytesPerSecond)}`];
}

export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${Math.ceil(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.ceil(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
}
