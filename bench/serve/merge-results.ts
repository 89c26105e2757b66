/**
 * Merges the runs of bench/gpu/serve.sh into one JSON and prints a summary against issue 7's targets.
 *
 *   node bench/serve/merge-results.ts --runs DIR --out FILE [--targets] [--meta KEY=VALUE ...]
 *
 * DIR holds NAME.json (an `updraft bench serve --save-result` file) and NAME.lag.json (the server's
 * event-loop lag during that run, from bench/serve/loop-lag.ts), in run order by NAME.order. The merged
 * file keeps every summary key and drops the per-request arrays (a 1000-request run's ITLs alone are
 * megabytes), keeping the distinct errors with their counts.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const PER_REQUEST = ['input_lens', 'output_lens', 'ttfts', 'itls', 'generated_texts', 'errors'];

interface Target {
  key: string;
  op: '>=' | '<=';
  value: number;
  what: string;
}

/** Issue 7's targets (H100 numbers; the device lends an H200) by run name. */
export const TARGETS: Record<string, Target[]> = {
  c1: [
    { key: 'output_throughput', op: '>=', value: 175, what: 'output tok/s' },
    { key: 'median_ttft_ms', op: '<=', value: 25, what: 'median TTFT ms' },
    { key: 'median_tpot_ms', op: '<=', value: 5.8, what: 'median TPOT ms' },
  ],
  c8: [
    { key: 'output_throughput', op: '>=', value: 1200, what: 'output tok/s' },
    { key: 'median_ttft_ms', op: '<=', value: 60, what: 'median TTFT ms' },
    { key: 'median_tpot_ms', op: '<=', value: 7, what: 'median TPOT ms' },
  ],
  c32: [
    { key: 'output_throughput', op: '>=', value: 3500, what: 'output tok/s' },
    { key: 'median_ttft_ms', op: '<=', value: 100, what: 'median TTFT ms' },
    { key: 'median_tpot_ms', op: '<=', value: 9, what: 'median TPOT ms' },
  ],
  c256: [{ key: 'server_event_loop_lag.p99_ms', op: '<=', value: 5, what: 'server event-loop lag p99 ms' }],
  'throughput-1000': [{ key: 'output_throughput', op: '>=', value: 10000, what: 'output tok/s' }],
  'sharegpt-inf': [{ key: 'request_throughput', op: '>=', value: 35, what: 'req/s' }],
  'sharegpt-16rps': [
    { key: 'median_ttft_ms', op: '<=', value: 40, what: 'median TTFT ms' },
    { key: 'median_tpot_ms', op: '<=', value: 12, what: 'median TPOT ms' },
    { key: 'p99_ttft_ms', op: '<=', value: 200, what: 'p99 TTFT ms' },
  ],
};

function lookup(run: Record<string, unknown>, key: string): number | null {
  let value: unknown = run;
  for (const part of key.split('.')) value = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[part] : undefined;
  return typeof value === 'number' ? value : null;
}

/** One run's result without the per-request arrays; errors folded into {message: count}. */
export function compactRun(result: Record<string, unknown>): Record<string, unknown> {
  const compact: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(result)) if (!PER_REQUEST.includes(key)) compact[key] = value;
  const errors = result['errors'];
  if (Array.isArray(errors)) {
    const counts: Record<string, number> = {};
    for (const error of errors) if (typeof error === 'string' && error !== '') counts[error] = (counts[error] ?? 0) + 1;
    compact['error_counts'] = counts;
  }
  return compact;
}

export function mergeRuns(dir: string): Record<string, Record<string, unknown>> {
  const names = readdirSync(dir)
    .filter((f) => f.endsWith('.order'))
    .sort()
    .map((f) => readFileSync(join(dir, f), 'utf-8').trim());
  const runs: Record<string, Record<string, unknown>> = {};
  for (const name of names) {
    const resultPath = join(dir, `${name}.json`);
    let run: Record<string, unknown>;
    try {
      run = compactRun(JSON.parse(readFileSync(resultPath, 'utf-8')) as Record<string, unknown>);
    } catch (error) {
      run = { error: existsSync(resultPath) ? `unreadable result: ${(error as Error).message}` : 'no result (the run failed or was cut off: see serve.txt)' };
    }
    const lagPath = join(dir, `${name}.lag.json`);
    if (existsSync(lagPath)) {
      try {
        run['server_event_loop_lag'] = JSON.parse(readFileSync(lagPath, 'utf-8')) as unknown;
      } catch {
        run['server_event_loop_lag'] = null;
      }
    }
    runs[name] = run;
  }
  return runs;
}

const fmt = (v: number | null, digits = 1) => (v === null ? '-' : v.toFixed(digits));

export function summaryTable(runs: Record<string, Record<string, unknown>>, withTargets: boolean): string {
  const header = ['run', 'ok/failed', 'req/s', 'out tok/s', 'TTFT med', 'TTFT p99', 'TPOT med', 'ITL p99', 'loop lag p99/max', withTargets ? 'targets (issue 7)' : ''];
  const rows = [header];
  for (const [name, run] of Object.entries(runs)) {
    const verdicts = withTargets
      ? (TARGETS[name] ?? []).map((t) => {
          const v = lookup(run, t.key);
          const verdict = v === null ? 'NOT MEASURED' : (t.op === '>=' ? v >= t.value : v <= t.value) ? 'MET' : 'MISSED';
          return `${verdict} ${t.what} ${t.op} ${t.value}`;
        })
      : [];
    const lagP99 = lookup(run, 'server_event_loop_lag.p99_ms');
    const lagMax = lookup(run, 'server_event_loop_lag.max_ms');
    rows.push([
      name,
      run['error'] !== undefined ? String(run['error']) : `${lookup(run, 'completed') ?? '-'}/${lookup(run, 'failed') ?? '-'}`,
      fmt(lookup(run, 'request_throughput'), 2),
      fmt(lookup(run, 'output_throughput')),
      fmt(lookup(run, 'median_ttft_ms')),
      fmt(lookup(run, 'p99_ttft_ms')),
      fmt(lookup(run, 'median_tpot_ms'), 2),
      fmt(lookup(run, 'p99_itl_ms'), 2),
      `${fmt(lagP99, 2)}/${fmt(lagMax, 1)}`,
      verdicts.join('; '),
    ]);
  }
  const widths = header.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join(' | ').trimEnd()).join('\n');
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { runs: { type: 'string' }, out: { type: 'string' }, targets: { type: 'boolean' }, meta: { type: 'string', multiple: true } } });
  if (!values.runs || !values.out) throw new Error('usage: merge-results.ts --runs DIR --out FILE [--targets] [--meta KEY=VALUE ...]');
  const meta: Record<string, string> = {};
  for (const item of values.meta ?? []) {
    const at = item.indexOf('=');
    if (at > 0) meta[item.slice(0, at)] = item.slice(at + 1);
  }
  const runs = mergeRuns(values.runs);
  writeFileSync(values.out, JSON.stringify({ meta, runs }, null, 1));
  console.log(summaryTable(runs, values.targets === true));
}
