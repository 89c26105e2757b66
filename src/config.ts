/**
 * Every serving setting in one place: its flag, type, default and help text. The CLI parses flags
 * from this table, `--help` prints it, and environment variables UPDRAFT_<FLAG> set any of them.
 */
import type { LogFormat, LogLevel } from './logging/logger.ts';

export type LoadFormat = 'auto' | 'dummy';
export type DTypeOption = 'auto' | 'float32' | 'bfloat16' | 'float16';
/** vLLM's --kv-cache-dtype: auto = the compute dtype; fp8 and fp8_e4m3 = FP8 E4M3 storage, unscaled. */
export type KvCacheDtypeOption = 'auto' | 'fp8' | 'fp8_e4m3';
export const KV_CACHE_DTYPE_CHOICES: readonly KvCacheDtypeOption[] = ['auto', 'fp8', 'fp8_e4m3'];

export interface ServeConfig {
  /** Local folder or Hugging Face Hub id. */
  model: string;
  revision: string;
  device: string;
  host: string;
  port: number;
  servedModelName: string | null;
  /** Context window; null = the model's max_position_embeddings. */
  maxModelLen: number | null;
  /** Decode headroom kept at admission, as SGLang's --schedule-conservativeness (default 1, as SGLang; 0: none, vLLM's policy). */
  scheduleConservativeness: number;
  /** Sequences in one step; null = the device's default (src/model/batch-limits.ts). */
  maxNumSeqs: number | null;
  /** Token budget of one step; null = the device's default. */
  maxNumBatchedTokens: number | null;
  /** KV block size in tokens; null = the device's preferred size. */
  blockSize: number | null;
  /** Bytes for the KV cache; null = the device's default budget. */
  kvCacheMemoryBytes: number | null;
  /** Fraction of device memory to use for weights + KV cache (GPUs). */
  gpuMemoryUtilization: number;
  numThreads: number;
  /** Ranks of tensor parallelism: one device (GPU) per rank, weights sharded across them. */
  tensorParallelSize: number;
  /** Worker threads that tokenize prompts; 0 = the main thread; null = min(4, cores - 1). */
  tokenizerWorkers: number | null;
  dtype: DTypeOption;
  /** Storage dtype of the KV cache (src/model/kv-cache-dtype.ts). */
  kvCacheDtype: KvCacheDtypeOption;
  loadFormat: LoadFormat;
  chatTemplate: string | null;
  enablePrefixCaching: boolean;
  enableChunkedPrefill: boolean;
  /** Schedule step N+1 while step N runs (its samples filled in on the device). */
  asyncScheduling: boolean;
  /** Run every step op by op, never as a captured device graph (vLLM's --enforce-eager; profiling, debugging). */
  enforceEager: boolean;
  /** Largest accepted request body. */
  maxRequestBodyBytes: number;
  /** Requests that may wait for admission before new ones get 429. */
  maxQueuedRequests: number;
  /** Check the scheduler and KV invariants after every step and whenever idle (slow; for debugging). */
  debugIntegrity: boolean;
  /** Largest `n` (choices per prompt) a request may ask for. */
  maxN: number;
  /** Tool-call format to parse (llama3_json, hermes); null = detect it from the chat template. */
  toolCallParser: string | null;
  /** Least severe log level written (--log-level). */
  logLevel: LogLevel;
  /** auto: human-readable on a terminal, JSON lines otherwise. */
  logFormat: LogFormat;

  // Reliability and security (issue 8; README "Operating Updraft").
  /** Keys clients must send as `Authorization: Bearer <key>`; empty = no authentication. */
  apiKeys: string[];
  /** With API keys: /health, /metrics and /version answer without one (probes, Prometheus). */
  publicHealth: boolean;
  /** Browser origins allowed to call the API (CORS); empty = CORS off; '*' = any origin. */
  corsOrigins: string[];
  /** Log each request's prompt and output text; off, they are never logged. */
  logPrompts: boolean;
  /** Seconds SIGTERM waits for in-flight requests to finish before aborting what is left. */
  shutdownTimeout: number;
  /** Seconds a client has to send a request's headers and body (408 after); responses are not limited. */
  readTimeout: number;
  /** Longest prompt in tokens; null = the context window. */
  maxPromptTokens: number | null;
  /** Most tokens one request may generate; null = the rest of the context window. */
  maxOutputTokens: number | null;
  /** Longest stop string in characters. */
  maxStopLength: number;
  /** Most stop_token_ids in one request. */
  maxStopTokenIds: number;
}

export const DEFAULT_HUB_MODEL = 'Qwen/Qwen2.5-0.5B-Instruct';

/** 'list': repeatable flag, each value (and the environment variable) comma-separated. */
type FlagType = 'string' | 'int' | 'number' | 'bytes' | 'boolean' | 'list';

export interface FlagSpec {
  key: keyof ServeConfig;
  flag: string;
  type: FlagType;
  help: string;
  choices?: readonly string[];
}

export const SERVE_FLAGS: readonly FlagSpec[] = [
  { key: 'model', flag: 'model', type: 'string', help: `Model folder or Hugging Face Hub id (default: $UPDRAFT_MODEL, else ${DEFAULT_HUB_MODEL})` },
  { key: 'revision', flag: 'revision', type: 'string', help: 'Hub revision (branch, tag or commit)' },
  { key: 'device', flag: 'device', type: 'string', help: 'Backend: cpu, cuda, ascend, ascend-sim' },
  { key: 'host', flag: 'host', type: 'string', help: 'Address to listen on' },
  { key: 'port', flag: 'port', type: 'int', help: 'Port to listen on (0 picks a free one; the startup log shows it)' },
  { key: 'servedModelName', flag: 'served-model-name', type: 'string', help: 'Name clients use as `model` (default: the model argument)' },
  { key: 'maxModelLen', flag: 'max-model-len', type: 'int', help: "Context window in tokens (default: the model's)" },
  { key: 'maxNumSeqs', flag: 'max-num-seqs', type: 'int', help: 'Most sequences in one step (default: 1024 on an accelerator with 70 GiB or more, 256 on a smaller one, 64 on the CPU)' },
  { key: 'scheduleConservativeness', flag: 'schedule-conservativeness', type: 'number', help: "Decode headroom at admission, SGLang's option: admit a request only while the KV cache keeps room for a share of what running requests may still generate (1, the default as in SGLang, reserves 70% of the remaining max_tokens, decaying to 10% while nothing is preempted, back to 70% on a preemption or when idle; higher is safer). 0 admits whatever fits now and preempts later, as vLLM does, and recomputes the preempted prompts: 229 preemptions and 5.6% less output in 1000 × 1024/512 tokens on an H200 (bench/NOTES.md, GPU run 16). Only matters when the KV cache is nearly full" },
  { key: 'maxNumBatchedTokens', flag: 'max-num-batched-tokens', type: 'int', help: 'Token budget of one step, prompt chunks + decodes (default: 8192 on an accelerator with 70 GiB or more, else 2048; at least --max-num-seqs)' },
  { key: 'blockSize', flag: 'block-size', type: 'int', help: "KV cache block size in tokens (default: the device's)" },
  { key: 'kvCacheMemoryBytes', flag: 'kv-cache-memory', type: 'bytes', help: 'KV cache size, e.g. 2GiB (default: gpu-memory-utilization x device memory - weights and scratch, capped at max-num-seqs full contexts)' },
  { key: 'gpuMemoryUtilization', flag: 'gpu-memory-utilization', type: 'number', help: 'Fraction of device memory (host RAM for cpu) for weights, scratch and KV cache' },
  { key: 'numThreads', flag: 'num-threads', type: 'int', help: 'CPU backend threads (0 = all cores)' },
  { key: 'tensorParallelSize', flag: 'tensor-parallel-size', type: 'int', help: 'Shard the model over N devices of this machine (devices 0..N-1), all-reduce through NCCL on cuda; N must divide the attention heads and the MLP size' },
  { key: 'tokenizerWorkers', flag: 'tokenizer-workers', type: 'int', help: 'Worker threads that tokenize prompts off the event loop; 0 = on the main thread (default: min(4, CPU cores - 1))' },
  { key: 'dtype', flag: 'dtype', type: 'string', choices: ['auto', 'float32', 'bfloat16', 'float16'], help: "Model dtype (auto: GPUs compute in bfloat16; the CPU keeps the checkpoint's weights and computes in float32). On a GPU it sets the weights and the activations, as vLLM's; on the CPU the weights only" },
  { key: 'kvCacheDtype', flag: 'kv-cache-dtype', type: 'string', choices: KV_CACHE_DTYPE_CHOICES, help: "KV cache storage dtype, as vLLM's: auto = the compute dtype (f32 on the CPU, bfloat16 on GPUs); fp8 or fp8_e4m3 = FP8 E4M3, unscaled: half of bfloat16's bytes, so twice the tokens in the same memory, at a small accuracy cost (cpu and cuda; ascend refuses it at start)" },
  { key: 'loadFormat', flag: 'load-format', type: 'string', choices: ['auto', 'dummy'], help: 'dummy = random weights from config.json alone (benchmarks)' },
  { key: 'chatTemplate', flag: 'chat-template', type: 'string', help: "Chat template file or inline Jinja, overriding the model's" },
  { key: 'enablePrefixCaching', flag: 'enable-prefix-caching', type: 'boolean', help: 'Reuse KV blocks of shared prompt prefixes (--no-enable-prefix-caching to turn off)' },
  { key: 'enableChunkedPrefill', flag: 'enable-chunked-prefill', type: 'boolean', help: 'Split long prompts across steps (--no-enable-chunked-prefill to turn off)' },
  { key: 'asyncScheduling', flag: 'async-scheduling', type: 'boolean', help: 'Prepare the next step while the device runs the current one (--no-async-scheduling to turn off)' },
  { key: 'enforceEager', flag: 'enforce-eager', type: 'boolean', help: 'Never replay decode steps as captured device graphs (CUDA graphs / ACL graphs): every op is launched one by one. Slower; for profiling and debugging' },
  { key: 'maxRequestBodyBytes', flag: 'max-request-body', type: 'bytes', help: 'Largest request body accepted (413 above)' },
  { key: 'maxQueuedRequests', flag: 'max-queued-requests', type: 'int', help: 'Requests that may wait for admission; more get 429 with Retry-After' },
  { key: 'debugIntegrity', flag: 'debug-integrity', type: 'boolean', help: 'Check scheduler and KV cache invariants after every step and when idle (slow)' },
  { key: 'maxN', flag: 'max-n', type: 'int', help: 'Largest n (choices per prompt) a request may ask for; more is a 400' },
  { key: 'toolCallParser', flag: 'tool-call-parser', type: 'string', choices: ['llama3_json', 'hermes'], help: "Tool-call format the model writes (default: detected from the chat template)" },
  { key: 'logLevel', flag: 'log-level', type: 'string', choices: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], help: 'Least severe log level written (debug adds a line per HTTP request)' },
  { key: 'logFormat', flag: 'log-format', type: 'string', choices: ['auto', 'json', 'pretty'], help: 'Log lines as JSON or human-readable text (auto: text on a terminal, JSON otherwise)' },
  { key: 'apiKeys', flag: 'api-key', type: 'list', help: 'API key clients must send as "Authorization: Bearer <key>"; repeat the flag or separate keys with commas (prefer the variable: flags show in ps)' },
  { key: 'publicHealth', flag: 'public-health', type: 'boolean', help: 'With --api-key: serve /health, /metrics and /version without a key (load balancers, Prometheus)' },
  { key: 'corsOrigins', flag: 'cors-origins', type: 'list', help: 'Browser origins allowed to call the API (CORS), comma-separated; * for any (default: CORS off)' },
  { key: 'logPrompts', flag: 'log-prompts', type: 'boolean', help: "Log each request's prompt and output text (never logged otherwise)" },
  { key: 'shutdownTimeout', flag: 'shutdown-timeout', type: 'number', help: 'Seconds SIGTERM/SIGINT wait for in-flight requests before aborting them' },
  { key: 'readTimeout', flag: 'read-timeout', type: 'number', help: "Seconds a client has to send a request's headers and body (408 after; responses are not limited)" },
  { key: 'maxPromptTokens', flag: 'max-prompt-tokens', type: 'int', help: 'Longest prompt in tokens, 400 above (default: the context window)' },
  { key: 'maxOutputTokens', flag: 'max-output-tokens', type: 'int', help: 'Most tokens one request may generate: a larger max_tokens gets 400, a request without one gets at most this (default: the rest of the context)' },
  { key: 'maxStopLength', flag: 'max-stop-length', type: 'int', help: 'Longest stop string in characters (400 above)' },
  { key: 'maxStopTokenIds', flag: 'max-stop-token-ids', type: 'int', help: 'Most stop_token_ids in one request (400 above)' },
];

export function defaultServeConfig(): ServeConfig {
  return {
    model: '',
    revision: 'main',
    device: 'cpu',
    host: '127.0.0.1',
    port: 8000,
    servedModelName: null,
    maxModelLen: null,
    maxNumSeqs: null,
    maxNumBatchedTokens: null,
    scheduleConservativeness: 1,
    blockSize: null,
    kvCacheMemoryBytes: null,
    gpuMemoryUtilization: 0.9,
    numThreads: 0,
    tensorParallelSize: 1,
    tokenizerWorkers: null,
    dtype: 'auto',
    kvCacheDtype: 'auto',
    loadFormat: 'auto',
    chatTemplate: null,
    enablePrefixCaching: true,
    enableChunkedPrefill: true,
    asyncScheduling: true,
    enforceEager: false,
    maxRequestBodyBytes: 16 * 1024 * 1024,
    maxQueuedRequests: 1024,
    debugIntegrity: false,
    maxN: 16,
    toolCallParser: null,
    logLevel: 'info',
    logFormat: 'auto',
    apiKeys: [],
    publicHealth: false,
    corsOrigins: [],
    logPrompts: false,
    shutdownTimeout: 30,
    readTimeout: 30,
    maxPromptTokens: null,
    maxOutputTokens: null,
    maxStopLength: 1024,
    maxStopTokenIds: 256,
  };
}

const BYTE_UNITS: Record<string, number> = {
  '': 1, b: 1, k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9,
  kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, tib: 1024 ** 4,
};

/** "2GiB", "512MB", "1e9" → bytes. */
export function parseBytes(text: string): number {
  const match = /^\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = match ? BYTE_UNITS[match[2]!.toLowerCase()] : undefined;
  if (!match || unit === undefined) throw new ConfigError(`not a byte size: "${text}" (try 512MiB or 2GiB)`);
  return Math.floor(Number(match[1]) * unit);
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Checks ranges that the flag types alone cannot. */
export function validateServeConfig(config: ServeConfig): void {
  const positive: (keyof ServeConfig)[] = ['maxRequestBodyBytes', 'maxQueuedRequests', 'maxN'];
  positive.push('readTimeout', 'maxStopLength', 'maxStopTokenIds');
  for (const key of positive) {
    const value = config[key];
    if (typeof value !== 'number' || !(value > 0)) throw new ConfigError(`--${flagOf(key)} must be positive`);
  }
  for (const key of ['maxModelLen', 'maxNumSeqs', 'maxNumBatchedTokens', 'blockSize', 'kvCacheMemoryBytes', 'maxPromptTokens', 'maxOutputTokens'] as const) {
    const value = config[key];
    if (value !== null && !(value > 0)) throw new ConfigError(`--${flagOf(key)} must be positive`);
  }
  if (!(config.port >= 0 && config.port <= 65535)) throw new ConfigError('--port must be 0 to 65535 (0 picks a free port)');
  if (!(config.gpuMemoryUtilization > 0 && config.gpuMemoryUtilization <= 1)) {
    throw new ConfigError('--gpu-memory-utilization must be in (0, 1]');
  }
  if (config.numThreads < 0) throw new ConfigError('--num-threads must be >= 0');
  if (config.tokenizerWorkers !== null && !(config.tokenizerWorkers >= 0)) throw new ConfigError('--tokenizer-workers must be >= 0');
  if (!(config.tensorParallelSize >= 1)) throw new ConfigError('--tensor-parallel-size must be >= 1');
  if (!(config.scheduleConservativeness >= 0)) throw new ConfigError('--schedule-conservativeness must be >= 0');
  if (!(config.shutdownTimeout >= 0)) throw new ConfigError('--shutdown-timeout must be >= 0');
  for (const origin of config.corsOrigins) {
    if (origin !== '*' && !/^https?:\/\/[^/\s]+$/.test(origin)) {
      throw new ConfigError(`--cors-origins: "${origin}" is not an origin (scheme://host[:port], no path) or *`);
    }
  }
}

function flagOf(key: keyof ServeConfig): string {
  return SERVE_FLAGS.find((f) => f.key === key)?.flag ?? key;
}
