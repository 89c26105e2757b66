/**
 * The engine's step timing as a server's GET /metrics reports it (updraft_engine_* counters), for
 * bench/gpu/serve.sh to split a run's TPOT into device time, host time on the critical path and device
 * idle time.
 *
 *   node bench/serve/engine-stats.ts URL                  prints the counters as JSON
 *   node bench/serve/engine-stats.ts URL --since JSON     prints per-step averages since that snapshot
 *
 * Against a server without these counters (not Updraft) it prints {} and exits 0.
 */
import { parseArgs } from 'node:util';

interface EngineCounters {
  steps: number;
  deviceSeconds: number;
  hostCriticalSeconds: number;
  deviceIdleSeconds: number;
  /** Requests preempted (KV taken back, prompt recomputed later): work a throughput run pays twice. */
  preemptions?: number;
}

const NAMES: Record<keyof EngineCounters, string> = {
  steps: 'updraft_engine_steps_total',
  deviceSeconds: 'updraft_engine_device_seconds_total',
  hostCriticalSeconds: 'updraft_engine_host_critical_seconds_total',
  deviceIdleSeconds: 'updraft_engine_device_idle_seconds_total',
  preemptions: 'updraft_num_preemptions_total',
};
const OPTIONAL: ReadonlySet<keyof EngineCounters> = new Set(['preemptions']);

/** The counters in a Prometheus text exposition (summed over label sets); null when absent. */
export function parseEngineCounters(text: string): EngineCounters | null {
  const found: Partial<EngineCounters> = {};
  for (const line of text.split('\n')) {
    for (const [key, name] of Object.entries(NAMES) as [keyof EngineCounters, string][]) {
      if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) found[key] = (found[key] ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  const keys = Object.keys(NAMES) as (keyof EngineCounters)[];
  return keys.every((k) => OPTIONAL.has(k) || found[k] !== undefined) ? (found as EngineCounters) : null;
}

export function describeSince(before: EngineCounters, after: EngineCounters): string {
  const steps = after.steps - before.steps;
  if (steps <= 0) return 'engine: no steps';
  const perStep = (key: 'deviceSeconds' | 'hostCriticalSeconds' | 'deviceIdleSeconds') => (((after[key] - before[key]) * 1000) / steps).toFixed(3);
  const preempted = after.preemptions !== undefined ? `; ${after.preemptions - (before.preemptions ?? 0)} preemptions` : '';
  return `engine: ${steps} steps; per step ${perStep('deviceSeconds')} ms on the device, ${perStep('hostCriticalSeconds')} ms of host work between steps, of which the device waited ${perStep('deviceIdleSeconds')} ms${preempted}`;
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({ options: { since: { type: 'string' } }, allowPositionals: true });
  const base = positionals[0];
  if (base === undefined) throw new Error('usage: engine-stats.ts URL [--since JSON]');
  const response = await fetch(`${base.replace(/\/$/, '')}/metrics`).catch(() => null);
  const counters = response?.ok ? parseEngineCounters(await response.text()) : null;
  if (values.since === undefined) console.log(JSON.stringify(counters ?? {}));
  else {
    const before = JSON.parse(values.since) as Partial<EngineCounters>;
    console.log(counters !== null && before.steps !== undefined ? describeSince(before as EngineCounters, counters) : 'engine: no updraft_engine_* counters');
  }
}
