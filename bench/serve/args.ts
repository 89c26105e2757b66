/**
 * `updraft bench serve` flags: vLLM's names where vLLM has the flag (so a `vllm bench serve` command line
 * mostly runs as is), plus --time-limit and --prompt-format. `--goodput`, `--metadata` and `--header`
 * take several values each, as in vLLM (`--goodput ttft:200 tpot:10`).
 */
import { DATASET_NAMES, type DatasetName, type PromptFormat } from './datasets.ts';
import type { Backend } from './client.ts';
import { GOODPUT_NAMES, METRIC_NAMES, type GoodputName, type GoodputSlos, type MetricName } from './metrics.ts';

export class BenchArgsError extends Error {
  override name = 'BenchArgsError';
}

export interface BenchServeOptions {
  backend: Backend;
  baseUrl: string;
  endpoint: string;
  /** Reported model id (and the `model` sent unless servedModelName); null = the server's first model. */
  model: string | null;
  servedModelName: string | null;
  tokenizer: string | null;
  apiKey: string | null;
  headers: Record<string, string>;
  datasetName: DatasetName;
  numPrompts: number;
  seed: number;
  randomInputLen: number;
  randomOutputLen: number;
  randomRangeRatio: number;
  sharegptOutputLen: number | null;
  prefixLen: number;
  suffixLen: number;
  numPrefixes: number;
  promptFormat: PromptFormat;
  requestRate: number;
  burstiness: number;
  maxConcurrency: number | null;
  ignoreEos: boolean;
  temperature: number;
  extraBody: Record<string, unknown>;
  percentileMetrics: MetricName[];
  percentiles: number[];
  goodput: GoodputSlos | null;
  numWarmups: number;
  readyCheckTimeoutSec: number;
  /** Seconds; 0 = none. */
  timeLimit: number;
  saveResult: boolean;
  saveDetailed: boolean;
  resultDir: string | null;
  resultFilename: string | null;
  label: string | null;
  metadata: Record<string, string>;
  progress: boolean;
  /** A server process to send SIGUSR2 just before and after the measured run (bench/serve/loop-lag.ts reports then). */
  lagReportPid: number | null;
}

type Kind = 'string' | 'number' | 'int' | 'bool' | 'list';
interface Flag {
  kind: Kind;
  help: string;
  arg?: string;
  aliases?: string[];
}

const FLAGS: Record<string, Flag> = {
  'base-url': { kind: 'string', arg: 'URL', help: 'Server base URL (default http://HOST:PORT)' },
  host: { kind: 'string', arg: 'HOST', help: 'Server host when no --base-url (default 127.0.0.1)' },
  port: { kind: 'int', arg: 'N', help: 'Server port when no --base-url (default 8000)' },
  endpoint: { kind: 'string', arg: 'PATH', help: '/v1/completions (default) or /v1/chat/completions' },
  backend: { kind: 'string', arg: 'openai|openai-chat', help: 'Request format (default: from --endpoint)' },
  model: { kind: 'string', arg: 'NAME', help: "Model to request (default: the server's first in /v1/models)" },
  'served-model-name': { kind: 'string', arg: 'NAME', help: 'The `model` sent, when it differs from --model' },
  tokenizer: { kind: 'string', arg: 'DIR', help: 'Tokenizer folder: exact prompt lengths, token-id prompts, output counts without usage' },
  'api-key': { kind: 'string', arg: 'KEY', help: 'Bearer token (default $OPENAI_API_KEY)' },
  header: { kind: 'list', arg: 'KEY=VALUE...', help: 'Extra request headers' },
  'dataset-name': { kind: 'string', arg: DATASET_NAMES.join('|'), help: 'random (default), sharegpt (synthetic ShareGPT-like lengths), prefix' },
  'num-prompts': { kind: 'int', arg: 'N', help: 'Requests to send (default 1000)' },
  seed: { kind: 'int', arg: 'N', help: 'Seed for prompts, lengths and arrivals (default 0)' },
  'random-input-len': { kind: 'int', arg: 'N', help: 'random: prompt tokens (default 1024)' },
  'random-output-len': { kind: 'int', arg: 'N', help: 'random and prefix: max_tokens (default 128)' },
  'random-range-ratio': { kind: 'number', arg: 'R', help: 'random: lengths uniform in [len(1-R), len(1+R)] (default 0)' },
  'sharegpt-output-len': { kind: 'int', arg: 'N', help: 'sharegpt: fixed max_tokens instead of the synthetic lengths' },
  'prefix-len': { kind: 'int', arg: 'N', help: 'prefix: shared prefix tokens (default 256)' },
  'suffix-len': { kind: 'int', arg: 'N', help: 'prefix: tokens after the prefix, per request (default 256)' },
  'num-prefixes': { kind: 'int', arg: 'N', help: 'prefix: distinct prefixes (default 10)' },
  'prompt-format': { kind: 'string', arg: 'text|ids', help: 'Prompts as text (default) or token ids (completions only; needs --tokenizer)' },
  'request-rate': { kind: 'number', arg: 'R', help: 'Requests per second, or inf: all at once (default inf)' },
  burstiness: { kind: 'number', arg: 'B', help: '1 = Poisson arrivals (default); gamma-distributed gaps otherwise (< 1 burstier)' },
  'max-concurrency': { kind: 'int', arg: 'N', help: 'Most requests in flight at once (closed loop)' },
  'ignore-eos': { kind: 'bool', help: "Send vLLM's ignore_eos (vLLM's bench turns it on for random datasets)" },
  temperature: { kind: 'number', arg: 'T', help: 'Sampling temperature (default 0, greedy)' },
  'extra-body': { kind: 'string', arg: 'JSON', help: 'Fields merged into every request body' },
  'percentile-metrics': { kind: 'string', arg: 'LIST', help: 'Metrics to report (default ttft,tpot,itl,e2el)' },
  'metric-percentiles': { kind: 'string', arg: 'LIST', aliases: ['percentiles'], help: 'Percentiles to report (default 90,99)' },
  goodput: { kind: 'list', arg: 'NAME:MS...', help: 'SLOs for goodput: ttft:MS tpot:MS e2el:MS' },
  'num-warmups': { kind: 'int', arg: 'N', help: 'Warm-up requests (the first prompt) before measuring (default 0)' },
  'ready-check-timeout-sec': { kind: 'int', arg: 'S', help: 'Retry the first prompt this long while the server starts; 0 skips the check (default 120)' },
  'time-limit': { kind: 'number', arg: 'S', help: 'Stop after S seconds: requests not sent are dropped, those in flight aborted and counted failed' },
  'save-result': { kind: 'bool', help: 'Write the result JSON' },
  'save-detailed': { kind: 'bool', help: 'Also write generated_texts' },
  'result-dir': { kind: 'string', arg: 'DIR', help: 'Folder for the result JSON' },
  'result-filename': { kind: 'string', arg: 'FILE', help: 'Result file name (default {label}-{rate}qps[-concurrency{N}]-{model}-{date}.json)' },
  label: { kind: 'string', arg: 'NAME', help: 'Result label (default: the backend)' },
  metadata: { kind: 'list', arg: 'KEY=VALUE...', help: 'Extra keys for the result JSON' },
  'disable-tqdm': { kind: 'bool', aliases: ['no-progress'], help: 'No progress bar' },
  'lag-report-pid': { kind: 'int', arg: 'PID', help: "Send SIGUSR2 to this server process right before and after the measured run (bench/serve/loop-lag.ts then reports the server's event-loop lag for exactly the run)" },
  help: { kind: 'bool', aliases: ['h'], help: 'Show this help' },
};

export function benchServeHelp(): string {
  const lines = [
    'Usage: updraft bench serve [options]',
    '',
    'Drives an OpenAI-compatible server (Updraft, vLLM, SGLang, llama.cpp ...) with streaming requests and',
    'reports throughput, TTFT, TPOT, ITL and end-to-end latency in the layout and JSON of `vllm bench serve`.',
    '',
    'Options:',
  ];
  for (const [name, flag] of Object.entries(FLAGS)) {
    const names = [name, ...(flag.aliases ?? [])].map((n) => (n.length === 1 ? `-${n}` : `--${n}`)).join(', ');
    lines.push(`  ${names}${flag.arg ? ` ${flag.arg}` : ''}`, `      ${flag.help}`);
  }
  return lines.join('\n');
}

function parseNumber(name: string, text: string, integer: boolean): number {
  if (/^\+?inf(inity)?$/i.test(text.trim())) {
    if (integer) throw new BenchArgsError(`--${name} must be an integer, got "${text}"`);
    return Infinity;
  }
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || (integer && !Number.isInteger(value))) {
    throw new BenchArgsError(`--${name} must be ${integer ? 'an integer' : 'a number'}, got "${text}"`);
  }
  return value;
}

function keyValues(name: string, items: string[], separator: string): [string, string][] {
  return items.map((item) => {
    const at = item.indexOf(separator);
    if (at <= 0) throw new BenchArgsError(`--${name} takes KEY${separator}VALUE pairs, got "${item}"`);
    return [item.slice(0, at).trim(), item.slice(at + 1).trim()];
  });
}

export function parseGoodput(items: string[]): GoodputSlos {
  const slos: GoodputSlos = {};
  for (const [key, value] of keyValues('goodput', items.flatMap((i) => i.split(/[\s,]+/)).filter((i) => i !== ''), ':')) {
    if (!(GOODPUT_NAMES as readonly string[]).includes(key)) throw new BenchArgsError(`--goodput: "${key}" is not one of ${GOODPUT_NAMES.join(', ')}`);
    const ms = parseNumber('goodput', value, false);
    if (!(ms >= 0)) throw new BenchArgsError(`--goodput ${key} must be non-negative`);
    slos[key as GoodputName] = ms;
  }
  return slos;
}

/** Raw values by canonical flag name: strings, booleans, or lists for the multi-value flags. */
function scan(argv: string[]): Map<string, string | boolean | string[]> {
  const byAlias = new Map<string, string>();
  for (const [name, flag] of Object.entries(FLAGS)) {
    byAlias.set(name, name);
    for (const alias of flag.aliases ?? []) byAlias.set(alias, name);
  }
  const values = new Map<string, string | boolean | string[]>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const match = /^--?([^=]+)(?:=(.*))?$/s.exec(arg);
    if (!match) throw new BenchArgsError(`unexpected argument "${arg}"`);
    const name = byAlias.get(match[1]!);
    if (name === undefined) throw new BenchArgsError(`unknown option "${arg}"`);
    const flag = FLAGS[name]!;
    const inline = match[2];
    if (flag.kind === 'bool') {
      if (inline !== undefined) throw new BenchArgsError(`--${name} takes no value`);
      values.set(name, true);
    } else if (flag.kind === 'list') {
      const items = inline !== undefined ? [inline] : [];
      while (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) items.push(argv[++i]!);
      if (items.length === 0) throw new BenchArgsError(`--${name} needs at least one value`);
      const previous = values.get(name);
      values.set(name, [...(Array.isArray(previous) ? previous : []), ...items]);
    } else {
      let value = inline;
      if (value === undefined) {
        if (i + 1 >= argv.length) throw new BenchArgsError(`--${name} needs a value`);
        value = argv[++i]!;
      }
      values.set(name, value);
    }
  }
  return values;
}

export interface ParsedBenchArgs {
  options: BenchServeOptions;
  help: boolean;
}

export function parseBenchServeArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): ParsedBenchArgs {
  const raw = scan(argv);
  const str = (name: string): string | undefined => {
    const v = raw.get(name);
    return typeof v === 'string' ? v : undefined;
  };
  const num = (name: string, fallback: number, integer = false): number => {
    const v = str(name);
    return v === undefined ? fallback : parseNumber(name, v, integer);
  };
  const list = (name: string): string[] => {
    const v = raw.get(name);
    return Array.isArray(v) ? v : [];
  };
  const bool = (name: string) => raw.get(name) === true;

  const endpointGiven = str('endpoint');
  const backendGiven = str('backend');
  if (backendGiven !== undefined && backendGiven !== 'openai' && backendGiven !== 'openai-chat') {
    throw new BenchArgsError(`--backend must be openai or openai-chat, got "${backendGiven}"`);
  }
  const endpoint = endpointGiven ?? (backendGiven === 'openai-chat' ? '/v1/chat/completions' : '/v1/completions');
  const backend: Backend = backendGiven ?? (endpoint.includes('chat') ? 'openai-chat' : 'openai');

  const datasetName = str('dataset-name') ?? 'random';
  if (!(DATASET_NAMES as readonly string[]).includes(datasetName)) throw new BenchArgsError(`--dataset-name must be one of ${DATASET_NAMES.join(', ')}, got "${datasetName}"`);
  const promptFormat = str('prompt-format') ?? 'text';
  if (promptFormat !== 'text' && promptFormat !== 'ids') throw new BenchArgsError(`--prompt-format must be text or ids, got "${promptFormat}"`);
  if (promptFormat === 'ids' && backend === 'openai-chat') throw new BenchArgsError('--prompt-format ids works with /v1/completions only (chat messages are text)');
  if (promptFormat === 'ids' && str('tokenizer') === undefined) throw new BenchArgsError('--prompt-format ids needs --tokenizer (the vocabulary to draw ids from)');

  const percentileMetrics = (str('percentile-metrics') ?? METRIC_NAMES.join(',')).split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const m of percentileMetrics) {
    if (!(METRIC_NAMES as readonly string[]).includes(m)) throw new BenchArgsError(`--percentile-metrics: "${m}" is not one of ${METRIC_NAMES.join(', ')}`);
  }
  const percentiles = (str('metric-percentiles') ?? '90,99').split(',').map((s) => s.trim()).filter((s) => s !== '').map((s) => parseNumber('metric-percentiles', s, false));
  for (const p of percentiles) if (!(p >= 0 && p <= 100)) throw new BenchArgsError(`--metric-percentiles: ${p} is not in [0, 100]`);

  let extraBody: Record<string, unknown> = {};
  const extra = str('extra-body');
  if (extra !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(extra);
    } catch {
      throw new BenchArgsError('--extra-body must be a JSON object');
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new BenchArgsError('--extra-body must be a JSON object');
    extraBody = parsed as Record<string, unknown>;
  }

  const maxConcurrencyText = str('max-concurrency');
  const maxConcurrency = maxConcurrencyText === undefined ? null : parseNumber('max-concurrency', maxConcurrencyText, true);
  const goodputItems = list('goodput');
  const sharegptOut = str('sharegpt-output-len');
  const baseUrl = (str('base-url') ?? `http://${str('host') ?? '127.0.0.1'}:${num('port', 8000, true)}`).replace(/\/+$/, '');

  const options: BenchServeOptions = {
    backend,
    baseUrl,
    endpoint,
    model: str('model') ?? null,
    servedModelName: str('served-model-name') ?? null,
    tokenizer: str('tokenizer') ?? null,
    apiKey: str('api-key') ?? (env['OPENAI_API_KEY'] || null),
    headers: Object.fromEntries(keyValues('header', list('header'), '=')),
    datasetName: datasetName as DatasetName,
    numPrompts: num('num-prompts', 1000, true),
    seed: num('seed', 0, true),
    randomInputLen: num('random-input-len', 1024, true),
    randomOutputLen: num('random-output-len', 128, true),
    randomRangeRatio: num('random-range-ratio', 0),
    sharegptOutputLen: sharegptOut === undefined ? null : parseNumber('sharegpt-output-len', sharegptOut, true),
    prefixLen: num('prefix-len', 256, true),
    suffixLen: num('suffix-len', 256, true),
    numPrefixes: num('num-prefixes', 10, true),
    promptFormat,
    requestRate: num('request-rate', Infinity),
    burstiness: num('burstiness', 1),
    maxConcurrency,
    ignoreEos: bool('ignore-eos'),
    temperature: num('temperature', 0),
    extraBody,
    percentileMetrics: percentileMetrics as MetricName[],
    percentiles,
    goodput: goodputItems.length > 0 ? parseGoodput(goodputItems) : null,
    numWarmups: num('num-warmups', 0, true),
    readyCheckTimeoutSec: num('ready-check-timeout-sec', 120, true),
    timeLimit: num('time-limit', 0),
    saveResult: bool('save-result'),
    saveDetailed: bool('save-detailed'),
    resultDir: str('result-dir') ?? null,
    resultFilename: str('result-filename') ?? null,
    label: str('label') ?? null,
    metadata: Object.fromEntries(keyValues('metadata', list('metadata'), '=')),
    progress: !bool('disable-tqdm'),
    lagReportPid: str('lag-report-pid') === undefined ? null : num('lag-report-pid', 0, true),
  };
  for (const key of ['numPrompts', 'randomInputLen', 'randomOutputLen', 'numPrefixes'] as const) {
    if (!(options[key] >= 1)) throw new BenchArgsError(`--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} must be at least 1`);
  }
  if (!(options.requestRate > 0)) throw new BenchArgsError('--request-rate must be positive (inf: all at once)');
  if (!(options.burstiness > 0)) throw new BenchArgsError('--burstiness must be positive');
  if (options.maxConcurrency !== null && !(options.maxConcurrency >= 1)) throw new BenchArgsError('--max-concurrency must be at least 1');
  if (!(options.randomRangeRatio >= 0 && options.randomRangeRatio < 1)) throw new BenchArgsError('--random-range-ratio must be in [0, 1)');
  if (!(options.timeLimit >= 0)) throw new BenchArgsError('--time-limit must be non-negative');
  return { options, help: bool('help') };
}
