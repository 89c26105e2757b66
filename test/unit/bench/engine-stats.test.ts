import { describe, expect, it } from 'vitest';
import { describeSince, parseEngineCounters } from '../../../bench/serve/engine-stats.ts';

const exposition = (steps: number, device: number, host: number, idle: number) =>
  [
    '# HELP updraft_engine_steps_total Model steps run by the engine loop.',
    '# TYPE updraft_engine_steps_total counter',
    `updraft_engine_steps_total{model_name="m"} ${steps}`,
    `updraft_engine_device_seconds_total{model_name="m"} ${device}`,
    `updraft_engine_host_critical_seconds_total{model_name="m"} ${host}`,
    `updraft_engine_device_idle_seconds_total{model_name="m"} ${idle}`,
    'updraft_engine_steps_totally_different 5',
  ].join('\n');

describe('bench/serve/engine-stats', () => {
  it('reads the engine counters from a Prometheus exposition, and per-step averages between two', () => {
    const before = parseEngineCounters(exposition(100, 0.5, 0.05, 0.001))!;
    expect(before).toEqual({ steps: 100, deviceSeconds: 0.5, hostCriticalSeconds: 0.05, deviceIdleSeconds: 0.001 });
    const after = parseEngineCounters(exposition(300, 1.7, 0.15, 0.003))!;
    expect(describeSince(before, after)).toBe('engine: 200 steps; per step 6.000 ms on the device, 0.500 ms of host work between steps, of which the device waited 0.010 ms');
  });

  it('counts the preemptions between two snapshots when the server reports them', () => {
    const withPreemptions = (n: number, steps: number) => `${exposition(steps, 1, 0.1, 0)}\nupdraft_num_preemptions_total{model_name="m"} ${n}`;
    const before = parseEngineCounters(withPreemptions(3, 100))!;
    const after = parseEngineCounters(withPreemptions(10, 200))!;
    expect(after.preemptions).toBe(10);
    expect(describeSince(before, after)).toMatch(/; 7 preemptions$/);
  });

  it('is null for a server without them', () => {
    expect(parseEngineCounters('vllm:num_requests_running{model_name="m"} 0\n')).toBeNull();
  });
});
