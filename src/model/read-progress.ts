/**
 * Progress of reading the weights, without help from the native loader: it reads the safetensors
 * files with pread on a worker thread, and Linux counts every byte a process reads in
 * /proc/self/io (`rchar`, all threads). Polling that counter while the program is created gives the
 * bytes read so far. Elsewhere (no /proc) there is nothing to poll and only the phases are shown.
 */
import { readFileSync } from 'node:fs';

/** Bytes this process has read so far, or null where the kernel does not say. */
export function processBytesRead(): number | null {
  try {
    const match = /^rchar:\s*(\d+)$/m.exec(readFileSync('/proc/self/io', 'utf-8'));
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

/**
 * Calls `onRead(bytes read since the call)` every `intervalMs` until the returned stop function is
 * called. Returns null (and calls nothing) when the counter is unavailable.
 */
export function watchBytesRead(onRead: (bytes: number) => void, intervalMs = 200): (() => void) | null {
  const start = processBytesRead();
  if (start === null) return null;
  const timer = setInterval(() => {
    const now = processBytesRead();
    if (now !== null) onRead(now - start);
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
