/**
 * The model argument → a local folder. A folder is used as is; otherwise the argument is a Hub repo id
 * (`org/name`), whose serving files are downloaded with @huggingface/hub into the standard HF cache
 * (`<cache>/models--org--name/{blobs,refs,snapshots/<commit>}`), shared with Python's huggingface_hub.
 *
 * Only what serving needs is fetched: config, generation config, tokenizer files, chat template and the
 * safetensors weights (for a sharded checkpoint, only the shards its index lists, so duplicate
 * `consolidated.safetensors` files are skipped). Files already in the cache are not downloaded again.
 *
 * Environment, as huggingface_hub reads it: HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE=1 (cache only),
 * HF_HUB_CACHE / HUGGINGFACE_HUB_CACHE / HF_HOME/hub / XDG_CACHE_HOME/huggingface/hub / ~/.cache/huggingface/hub.
 */
import { downloadFileToCacheDir, HubApiError, listFiles, modelInfo } from '@huggingface/hub';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
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
  const token = env['HF_TOKEN'] ?? env['HUGGING_FACE_HUB_TOKEN'];
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
    return await downloadSnapshot(model, revision, settings, opts.log ?? (() => {}));
  } catch (err) {
    if (!isNetworkError(err)) throw describeHubError(err, model, revision, settings);
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

async function downloadSnapshot(
  repoId: string,
  revision: string,
  settings: HubSettings,
  log: (message: string) => void,
): Promise<ResolvedModel> {
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

  const topLevel = new Set<string>();
  for await (const entry of listFiles({ ...hub, repo, revision: commit })) {
    if (entry.type === 'file') topLevel.add(entry.path);
  }
  if (!topLevel.has('config.json')) throw new Error(`${repoId}@${revision} has no config.json: not a transformers model repo`);
  const fetchFile = async (path: string) => {
    log(`fetching ${repoId}/${path}`);
    return downloadFileToCacheDir({ ...hub, repo, path, revision: commit, cacheDir: settings.cacheDir });
  };
  for (const name of HUB_METADATA_FILES) if (topLevel.has(name)) await fetchFile(name);
  if (topLevel.has(SINGLE_FILE_NAME)) {
    await fetchFile(SINGLE_FILE_NAME);
  } else if (topLevel.has(INDEX_FILE_NAME)) {
    const shards = await shardFiles(await fetchFile(INDEX_FILE_NAME));
    for (const shard of shards) await fetchFile(shard);
  } else {
    const others = [...topLevel].filter((f) => /\.(bin|pth|pt|gguf)$/.test(f));
    throw new Error(
      `${repoId}@${revision} has no ${SINGLE_FILE_NAME} or ${INDEX_FILE_NAME}` +
        (others.length ? ` (only ${others.slice(0, 3).join(', ')}): Updraft loads safetensors weights only` : ''),
    );
  }
  return { dir: join(repoDir, 'snapshots', commit), source: 'hub', repoId, commit };
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
  if (!(await has(SINGLE_FILE_NAME)) && !(await has(INDEX_FILE_NAME))) return null;
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

function isNetworkError(err: unknown): boolean {
  // undici rejects with TypeError("fetch failed") and the socket error as its cause.
  return err instanceof TypeError && /fetch failed/i.test(err.message);
}

function causeOf(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message;
}

function describeHubError(err: unknown, repoId: string, revision: string, settings: HubSettings): Error {
  if (!(err instanceof HubApiError)) return err instanceof Error ? err : new Error(String(err));
  const where = `${repoId}@${revision} on ${settings.endpoint}`;
  if (err.statusCode === 401 || err.statusCode === 403) {
    const hint = settings.token ? 'check that HF_TOKEN has access (gated models need their license accepted)' : 'set HF_TOKEN';
    return new Error(`access to ${where} was refused (HTTP ${err.statusCode}): ${hint}`, { cause: err });
  }
  if (err.statusCode === 404) {
    return new Error(`${where} was not found (HTTP 404): check the repo id and --revision`, { cause: err });
  }
  return new Error(`the Hub answered HTTP ${err.statusCode} for ${where}: ${err.message}`, { cause: err });
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
