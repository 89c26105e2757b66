/**
 * Event-loop lag of the server process, for the serving benchmark (issue 7: "Node's event loop lag stays
 * under 5 ms at 256 concurrent streams"). Loaded with `node --import ./bench/serve/loop-lag.ts
 * bin/updraft.js serve ...`, so the product's code and API stay untouched. perf_hooks'
 * monitorEventLoopDelay samples every 10 ms; its values include that interval, which is taken off.
 * On SIGUSR2 it writes what it saw since the last report (then starts over), and on SIGTERM the rest:
 * one line `[event-loop-lag] {json}` on stderr, and the JSON alone appended to
 * $UPDRAFT_EVENT_LOOP_LAG_FILE when set. A benchmark script sends SIGUSR2 before and after each run.
 */
import { appendFileSync } from 'node:fs';
import { constants, monitorEventLoopDelay, performance, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';

const RESOLUTION_MS = 10;
const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
histogram.enable();
let utilization = performance.eventLoopUtilization();
let since = performance.now();
const file = process.env['UPDRAFT_EVENT_LOOP_LAG_FILE'];

const lagMs = (ns: number) => Math.max(0, ns / 1e6 - RESOLUTION_MS);

// GC pauses over the same window, so a lag spike can be told apart from a long GC: scavenges (the young
// generation, --max-semi-space-size) and mark-compacts separately.
interface GcStats { count: number; totalMs: number; maxMs: number; over5ms: number }
const emptyGc = (): GcStats => ({ count: 0, totalMs: 0, maxMs: 0, over5ms: 0 });
let gc = { minor: emptyGc(), major: emptyGc() };
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    const kind = ((entry as PerformanceEntry & { detail?: { kind?: number } }).detail)?.kind;
    const stats = kind === constants.NODE_PERFORMANCE_GC_MINOR ? gc.minor : gc.major;
    stats.count++;
    stats.totalMs += entry.duration;
    stats.maxMs = Math.max(stats.maxMs, entry.duration);
    if (entry.duration > 5) stats.over5ms++;
  }
}).observe({ entryTypes: ['gc'] });
const roundGc = (g: GcStats) => ({ count: g.count, total_ms: Number(g.totalMs.toFixed(1)), max_ms: Number(g.maxMs.toFixed(2)), over_5ms: g.over5ms });

function report(reason: string): void {
  const elu = performance.eventLoopUtilization(utilization);
  const now = performance.now();
  const samples = histogram.count;
  const line = JSON.stringify({
    reason,
    seconds: Number(((now - since) / 1000).toFixed(3)),
    samples,
    mean_ms: samples ? lagMs(histogram.mean) : 0,
    p50_ms: samples ? lagMs(histogram.percentile(50)) : 0,
    p90_ms: samples ? lagMs(histogram.percentile(90)) : 0,
    p99_ms: samples ? lagMs(histogram.percentile(99)) : 0,
    max_ms: samples ? lagMs(histogram.max) : 0,
    // Fraction of the time the loop was busy (JS, callbacks, GC) rather than waiting for I/O.
    utilization: Number(elu.utilization.toFixed(4)),
    gc_minor: roundGc(gc.minor),
    gc_major: roundGc(gc.major),
  });
  process.stderr.write(`[event-loop-lag] ${line}\n`);
  if (file) appendFileSync(file, `${line}\n`);
  histogram.reset();
  gc = { minor: emptyGc(), major: emptyGc() };
  utilization = performance.eventLoopUtilization();
  since = now;
}

process.on('SIGUSR2', () => report('SIGUSR2'));
// Registered before the server's own SIGTERM handler, so this runs first and the server still stops.
process.on('SIGTERM', () => {
  report('SIGTERM');
  if (process.listenerCount('SIGTERM') === 1) process.exit(143); // no server listening: keep SIGTERM's meaning
});
