/**
 * The model argument → a local folder. A folder is used as is; otherwise the argument is a Hub repo id
 * (`org/name`), whose serving files are downloaded with @huggingface/hub into the standard HF cache
 * (`<cache>/models--org--name/{blobs,refs,snapshots/<commit>}`), shared with Python's huggingface_hub.
 *
 * Only what serving needs is fetched: config, generation config, tokenizer files, chat template and the
 * safetensors weights (for a sharded checkpoint, only the shards its index lists, so duplicate
 * `consolidated.safetensors` files are skipped). Files already in the cache (ours or Python's: the
 * layout is the same) are not downloaded again; an interrupted download continues where it stopped
 * (src/model/hub-download.ts). Progress goes to a ProgressReporter in bytes.
 *
 * Environment, as huggingface_hub reads it: HF_ENDPOINT, HF_TOKEN (else the token file that
 * `huggingface-cli login` writes: HF_TOKEN_PATH or HF_HOME/token), HF_HUB_OFFLINE=1 (cache only),
 * HF_HUB_CACHE / HUGGINGFACE_HUB_CACHE / HF_HOME/hub / XDG_CACHE_HOME/huggingface/hub / ~/.cache/huggingface/hub.
 */
import { HubApiError, listFiles, modelInfo } from '@huggingface/hub';
import type { ListFileEntry } from '@huggingface/hub';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fetchFileToCache, HubDownloadError, isNetworkError, partialBytes } from './hub-download.ts';
import type { HubFileToFetch } from './hub-download.ts';
import { formatBytes } from './memory.ts';
import { NO_PROGRESS } from './progress.ts';
import type { ProgressReporter } from './progress.ts';
import { INDEX_FILE_NAME, SINGLE_FILE_NAME } from './weights.ts';

/** Small files a model folder may hold that the server reads (absent ones are skipped). */
export const HUB_METADATA_FILES = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'chat_template.jinja',
  'special_tokens_map.json',
] as const;

export interface HubSettings {
  /** Base URL of the Hub (HF_ENDPOINT). */
  endpoint: string;
  /** HF_TOKEN, sent as a bearer token to the endpoint only. */
  token?: string;
  /** Root of the HF cache (holds models--org--name folders). */
  cacheDir: string;
  /** HF_HUB_OFFLINE: never touch the network, use the cache. */
  offline: boolean;
}

export function hubSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): HubSettings {
  const home = env['HF_HOME'] ?? join(env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'huggingface');
  const token = env['HF_TOKEN'] || env['HUGGING_FACE_HUB_TOKEN'] || readTokenFile(env['HF_TOKEN_PATH'] ?? join(home, 'token'));
  return {
    endpoint: (env['HF_ENDPOINT'] ?? 'https://huggingface.co').replace(/\/+$/, ''),
    ...(token ? { token } : {}),
    cacheDir: env['HF_HUB_CACHE'] ?? env['HUGGINGFACE_HUB_CACHE'] ?? join(home, 'hub'),
    offline: ['1', 'true', 'yes', 'on'].includes((env['HF_HUB_OFFLINE'] ?? '').toLowerCase()),
  };
}

export interface ResolveModelOptions {
  /** Branch, tag or commit (--revision); default "main". */
  revision?: string;
  /** Defaults to hubSettingsFromEnv(). */
  settings?: HubSettings;
  /** Progress messages ("downloading config.json"). */
  log?: (message: string) => void;
  /** Download progress in bytes (one task for the files still to fetch). */
  progress?: ProgressReporter;
  /** Files downloaded at once (default 4). */
  concurrency?: number;
  /** Retries of an interrupted file, and their delay (tests shorten it). */
  retries?: number;
  retryDelayMs?: (attempt: number) => number;
}

export interface ResolvedModel {
  /** Absolute folder holding config.json and the weights. */
  dir: string;
  /** local: the argument was a folder; hub: fetched (or confirmed) online; cache: used the cache without the Hub. */
  source: 'local' | 'hub' | 'cache';
  repoId?: string;
  /** The commit the snapshot belongs to. */
  commit?: string;
}

const REPO_ID = /^(?:[A-Za-z0-9][A-Za-z0-9._-]*\/)?[A-Za-z0-9][A-Za-z0-9._-]*$/;
const COMMIT_HASH = /^[0-9a-f]{40}$/;

export function isHubRepoId(model: string): boolean {
  return REPO_ID.test(model) && !model.includes('--') && !model.includes('..');
}

export async function resolveModel(model: string, opts: ResolveModelOptions = {}): Promise<ResolvedModel> {
  const local = await statOrNull(model);
  if (local?.isDirectory()) return { dir: resolve(model), source: 'local' };
  if (local) throw new Error(`${model} is a file; pass the folder that holds config.json and the weights`);
  if (!isHubRepoId(model)) {
    throw new Error(`${model} is neither an existing folder nor a Hugging Face repo id like "org/name"`);
  }
  const settings = opts.settings ?? hubSettingsFromEnv();
  const revision = opts.revision ?? 'main';
  if (settings.offline) {
    const dir = await cachedSnapshot(settings.cacheDir, model, revision);
    if (!dir) {
      throw new Error(
        `HF_HUB_OFFLINE is set and ${model}@${revision} is not in the Hugging Face cache ${settings.cacheDir}. ` +
          `Download it once online, or pass a local folder holding config.json, the tokenizer files and *.safetensors.`,
      );
    }
    return { dir, source: 'cache', repoId: model, commit: basenameOf(dir) };
  }
  try {
    return await downloadSnapshot(model, revision, settings, opts);
  } catch (err) {
    const unreachable = isNetworkError(err) || (err instanceof HubDownloadError && err.retryable && err.status === null);
    if (!unreachable) throw describeHubError(err, model, revision, settings);
    // Like huggingface_hub: when the Hub can't be reached, a complete cached snapshot still serves.
    const dir = await cachedSnapshot(settings.cacheDir, model, revision);
    if (dir) {
      opts.log?.(`the Hub at ${settings.endpoint} is unreachable; using the cached snapshot ${dir}`);
      return { dir, source: 'cache', repoId: model, commit: basenameOf(dir) };
    }
    throw new Error(
      `cannot reach the Hugging Face Hub at ${settings.endpoint} to download ${model} (${causeOf(err)}). ` +
        `To run without the Hub, pass a local folder holding config.json, the tokenizer files and *.safetensors ` +
        `(e.g. \`updraft serve /path/to/model\`), or set HF_HUB_OFFLINE=1 to use a copy already in ${settings.cacheDir}.`,
    );
  }
}

async function downloadSnapshot(repoId: string, revision: string, settings: HubSettings, opts: ResolveModelOptions): Promise<ResolvedModel> {
  const log = opts.log ?? (() => {});
  const fetch = authorizedFetch(settings);
  const hub = { hubUrl: settings.endpoint, fetch };
  const repo = { type: 'model' as const, name: repoId };
  const info = await modelInfo({ ...hub, name: repoId, revision, additionalFields: ['sha'] });
  const commit = info.sha;
  const repoDir = join(settings.cacheDir, repoFolderName(repoId));
  if (revision !== commit) {
    // refs/<revision> lets offline runs find the snapshot of a branch or tag.
    const refPath = join(repoDir, 'refs', revision);
    await mkdir(dirname(refPath), { recursive: true });
    await writeFile(refPath, commit);
  }

  const entries = new Map<string, ListFileEntry>();
  for await (const entry of listFiles({ ...hub, repo, revision: commit })) {
    if (entry.type === 'file') entries.set(entry.path, entry);
  }
  if (!entries.has('config.json')) throw new Error(`${repoId}@${revision} has no config.json: not a transformers model repo`);
  const fileOptions = {
    fetch,
    repoDir,
    commit,
    log,
    ...(opts.retries !== undefined ? { retries: opts.retries } : {}),
    ...(opts.retryDelayMs ? { retryDelayMs: opts.retryDelayMs } : {}),
  };
  const url = (path: string) => `${settings.endpoint}/${repoId}/resolve/${commit}/${path.split('/').map(encodeURIComponent).join('/')}`;
  const plan = (path: string): HubFileToFetch => hubFile(entries.get(path)!);

  const wanted: string[] = HUB_METADATA_FILES.filter((name) => entries.has(name));
  if (entries.has(SINGLE_FILE_NAME)) {
    wanted.push(SINGLE_FILE_NAME);
  } else if (entries.has(INDEX_FILE_NAME)) {
    // The index (small) first: it says which shards to fetch.
    const index = await fetchFileToCache(plan(INDEX_FILE_NAME), { ...fileOptions, url: url(INDEX_FILE_NAME) });
    const shards = await shardFiles(index.path);
    const missing = shards.filter((shard) => !entries.has(shard));
    if (missing.length > 0) throw new Error(`${repoId}@${revision}: ${INDEX_FILE_NAME} lists shards the repo lacks: ${missing.join(', ')}`);
    wanted.push(INDEX_FILE_NAME, ...shards);
  } else {
    const others = [...entries.keys()].filter((f) => /\.(bin|pth|pt|gguf)$/.test(f));
    throw new Error(
      `${repoId}@${revision} has no ${SINGLE_FILE_NAME} or ${INDEX_FILE_NAME}` +
        (others.length ? ` (only ${others.slice(0, 3).join(', ')}): Updraft loads safetensors weights only` : ''),
    );
  }

  // What is not in the cache yet (a blob may already be there from another revision or from Python).
  const toFetch: HubFileToFetch[] = [];
  let resumedBytes = 0;
  for (const path of wanted) {
    const file = plan(path);
    if (await isFile(join(repoDir, 'snapshots', commit, path))) continue;
    if (!(await isFile(join(repoDir, 'blobs', file.etag)))) {
      toFetch.push(file);
      resumedBytes += await partialBytes(repoDir, file);
    }
  }
  const totalBytes = toFetch.reduce((sum, f) => sum + f.size, 0);
  const short = commit.slice(0, 10);
  if (toFetch.length === 0) {
    log(`${repoId}@${revision} (${short}): all ${wanted.length} files are in the cache ${settings.cacheDir}`);
  } else {
    log(
      `downloading ${repoId}@${revision} (${short}): ${toFetch.length} of ${wanted.length} files, ${formatBytes(totalBytes)}` +
        (resumedBytes > 0 ? ` (${formatBytes(resumedBytes)} already there from an interrupted download)` : '') +
        `, into ${settings.cacheDir}`,
    );
  }

  const task = toFetch.length > 0 ? (opts.progress ?? NO_PROGRESS).begin(repoId, totalBytes, resumedBytes) : null;
  const started = performance.now();
  let done = resumedBytes;
  let fetched = 0;
  const fetchOne = async (path: string) => {
    const file = plan(path);
    const result = await fetchFileToCache(file, {
      ...fileOptions,
      url: url(path),
      onBytes: (delta) => {
        done += delta;
        if (delta > 0) fetched += delta;
        task?.update(done, path);
      },
    });
    return result;
  };
  try {
    await runPool(wanted, Math.max(1, opts.concurrency ?? 4), fetchOne);
  } catch (error) {
    task?.end(`download of ${repoId} stopped at ${formatBytes(done)} of ${formatBytes(totalBytes)}; run again to resume`);
    throw error;
  }
  if (task !== null) {
    const seconds = (performance.now() - started) / 1000;
    task.end(`downloaded ${repoId}: ${formatBytes(fetched)} in ${seconds.toFixed(1)} s (${formatBytes(fetched / Math.max(seconds, 1e-3))}/s)`);
  }
  return { dir: join(repoDir, 'snapshots', commit), source: 'hub', repoId, commit };
}

function hubFile(entry: ListFileEntry): HubFileToFetch {
  if (entry.lfs) return { path: entry.path, size: entry.lfs.size, etag: entry.lfs.oid, checksum: 'sha256' };
  // A Xet-only entry: its git oid is the pointer's, not the content's (as @huggingface/hub names it).
  if (entry.xetHash) return { path: entry.path, size: entry.size, etag: entry.xetHash, checksum: null };
  if (!entry.oid) throw new Error(`the Hub listed ${entry.path} without an oid`);
  return { path: entry.path, size: entry.size, etag: entry.oid, checksum: 'git-sha1' };
}

/** Runs `work` over `items`, at most `limit` at once; the first failure stops new starts and is thrown. */
async function runPool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const item = items[next++]!;
      try {
        await work(item);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  const results = await Promise.allSettled(Array.from({ length: Math.min(limit, items.length) }, worker));
  const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (rejected) throw rejected.reason;
}

async function shardFiles(indexPath: string): Promise<string[]> {
  const index = JSON.parse(await readFile(indexPath, 'utf-8')) as { weight_map?: Record<string, string> };
  const shards = new Set(Object.values(index.weight_map ?? {}));
  if (shards.size === 0) throw new Error(`${indexPath}: weight_map lists no shards`);
  return [...shards].sort();
}

/** The cached snapshot folder of repoId@revision, if it holds a config and weights. */
export async function cachedSnapshot(cacheDir: string, repoId: string, revision: string): Promise<string | null> {
  const repoDir = join(cacheDir, repoFolderName(repoId));
  let commit = revision;
  if (!COMMIT_HASH.test(revision)) {
    try {
      commit = (await readFile(join(repoDir, 'refs', revision), 'utf-8')).trim();
    } catch {
      return null;
    }
  }
  const dir = join(repoDir, 'snapshots', commit);
  const has = async (name: string) => (await statOrNull(join(dir, name)))?.isFile() ?? false;
  if (!(await has('config.json'))) return null;
  if (await has(SINGLE_FILE_NAME)) return dir;
  if (!(await has(INDEX_FILE_NAME))) return null;
  // A sharded checkpoint is complete when every shard its index lists is there.
  try {
    for (const shard of await shardFiles(join(dir, INDEX_FILE_NAME))) if (!(await has(shard))) return null;
  } catch {
    return null;
  }
  return dir;
}

/** "org/name" → "models--org--name", the cache folder name huggingface_hub uses. */
export function repoFolderName(repoId: string): string {
  return ['models', ...repoId.split('/')].join('--');
}

/** Adds the token to requests for the endpoint itself, never to other hosts (CDN redirects drop it too). */
function authorizedFetch(settings: HubSettings): typeof fetch {
  const origin = new URL(settings.endpoint).origin;
  const token = settings.token;
  return (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (!token || url.origin !== origin) return fetch(input, init);
    const headers = new Headers(init?.headers);
    headers.set('Authorization', `Bearer ${token}`);
    return fetch(input, { ...init, headers });
  };
}

function causeOf(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message;
}

function describeHubError(err: unknown, repoId: string, revision: string, settings: HubSettings): Error {
  if (err instanceof HubDownloadError && err.status !== null && [401, 403, 404].includes(err.status)) {
    return describeStatus(err.status, err.message, err, repoId, revision, settings);
  }
  if (!(err instanceof HubApiError)) return err instanceof Error ? err : new Error(String(err));
  return describeStatus(err.statusCode, err.message, err, repoId, revision, settings);
}

function describeStatus(status: number, message: string, err: Error, repoId: string, revision: string, settings: HubSettings): Error {
  const where = `${repoId}@${revision} on ${settings.endpoint}`;
  if (status === 401 || status === 403) {
    const hint = settings.token ? 'check that HF_TOKEN has access (gated models need their license accepted)' : 'set HF_TOKEN';
    return new Error(`access to ${where} was refused (HTTP ${status}): ${hint}`, { cause: err });
  }
  if (status === 404) {
    return new Error(`${where} was not found (HTTP 404): check the repo id and --revision`, { cause: err });
  }
  return new Error(`the Hub answered HTTP ${status} for ${where}: ${message}`, { cause: err });
}

async function isFile(path: string): Promise<boolean> {
  return (await statOrNull(path))?.isFile() ?? false;
}

/** The token `huggingface-cli login` saved, if any. */
function readTokenFile(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf-8').trim() || undefined;
  } catch {
    return undefined;
  }
}

async function statOrNull(path: string) {
  try {
    return await stat(path);
  } catch {
    return null;
  }
}

function basenameOf(dir: string): string {
  return dir.split(/[\\/]/).pop() ?? dir;
}
