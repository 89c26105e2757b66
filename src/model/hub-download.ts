/**
 * One Hub file into the Hugging Face cache, the way huggingface_hub lays it out, resumably:
 *
 *   <repo cache>/blobs/<etag>                 the content (etag: the LFS sha256, else the git blob id)
 *   <repo cache>/blobs/<etag>.incomplete      while downloading; continued with an HTTP Range request
 *                                             after an interruption (this run's retries or a later run)
 *   <repo cache>/snapshots/<commit>/<path>    a relative symlink to the blob
 *
 * The content is checked against its etag when done (sha256 for LFS files, the git blob hash for the
 * others); a mismatch discards the file. @huggingface/hub's downloadFileToCacheDir writes the same
 * layout but restarts interrupted files from zero and reports no progress, hence this module.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, open, rename, rm, stat, symlink, truncate } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';

export interface HubFileToFetch {
  /** Path inside the repo. */
  path: string;
  size: number;
  /** The blob name: the LFS sha256 (LFS files) or the git blob id. */
  etag: string;
  /** How to check the content: sha256 of it (LFS) or git's blob hash (sha1 of "blob <size>\0" + content). */
  checksum: 'sha256' | 'git-sha1' | null;
}

export interface FetchFileOptions {
  /** The file's URL (…/resolve/<commit>/<path>). */
  url: string;
  fetch: typeof fetch;
  /** models--org--name folder. */
  repoDir: string;
  commit: string;
  /** Bytes appended to the blob (negative when a restart throws away what was there). */
  onBytes?: (delta: number) => void;
  /** Told about retries. */
  log?: (message: string) => void;
  /** Attempts after the first, on network errors and 5xx/429 answers (default 5). */
  retries?: number;
  /** Delay before retry k (1-based), ms; default 500·2^(k-1), at most 8 s. */
  retryDelayMs?: (attempt: number) => number;
}

/** The snapshot path of a file, fetched now, linked to a blob already there, or found in place. */
export async function fetchFileToCache(file: HubFileToFetch, options: FetchFileOptions): Promise<{ path: string; fetchedBytes: number }> {
  const pointer = join(options.repoDir, 'snapshots', options.commit, file.path);
  if (await exists(pointer)) return { path: pointer, fetchedBytes: 0 };
  const blob = join(options.repoDir, 'blobs', file.etag);
  await mkdir(dirname(blob), { recursive: true });
  let fetchedBytes = 0;
  if (!(await exists(blob))) fetchedBytes = await downloadBlob(file, blob, options);
  await mkdir(dirname(pointer), { recursive: true });
  await linkBlob(blob, pointer);
  return { path: pointer, fetchedBytes };
}

/** Bytes of a partial download of `file` left by an interrupted run (0 when none). */
export async function partialBytes(repoDir: string, file: HubFileToFetch): Promise<number> {
  const size = (await statOrNull(join(repoDir, 'blobs', `${file.etag}.incomplete`)))?.size ?? 0;
  return size <= file.size ? size : 0;
}

export class HubDownloadError extends Error {
  readonly status: number | null;
  readonly retryable: boolean;
  constructor(message: string, options: { status?: number; retryable: boolean; cause?: unknown }) {
    super(message, { cause: options.cause });
    this.name = 'HubDownloadError';
    this.status = options.status ?? null;
    this.retryable = options.retryable;
  }
}

async function downloadBlob(file: HubFileToFetch, blob: string, options: FetchFileOptions): Promise<number> {
  const incomplete = `${blob}.incomplete`;
  const retries = options.retries ?? 5;
  const delay = options.retryDelayMs ?? ((attempt: number) => Math.min(8000, 500 * 2 ** (attempt - 1)));
  let fetched = 0;
  for (let attempt = 0; ; attempt++) {
    try {
      fetched += await appendRest(file, incomplete, options);
      break;
    } catch (error) {
      const retryable = error instanceof HubDownloadError ? error.retryable : isNetworkError(error);
      if (!retryable || attempt >= retries) throw error instanceof HubDownloadError ? error : new HubDownloadError(`downloading ${file.path}: ${describe(error)}`, { retryable, cause: error });
      const have = (await statOrNull(incomplete))?.size ?? 0;
      options.log?.(`${file.path}: ${describe(error)}; resuming at byte ${have} of ${file.size} (retry ${attempt + 1} of ${retries})`);
      await new Promise((resolve) => setTimeout(resolve, delay(attempt + 1)));
    }
  }
  await rename(incomplete, blob);
  return fetched;
}

/** Continues `incomplete` from its current size to the end; verifies the result. Returns bytes fetched. */
async function appendRest(file: HubFileToFetch, incomplete: string, options: FetchFileOptions): Promise<number> {
  let offset = (await statOrNull(incomplete))?.size ?? 0;
  if (offset > file.size) {
    // Not a prefix of this file (a different file under the same name?): start over.
    options.onBytes?.(-offset);
    await truncate(incomplete, 0);
    offset = 0;
  }
  let hash = newHash(file);
  if (hash !== null && offset > 0) await hashFile(hash, incomplete);
  let fetched = 0;
  if (offset < file.size) {
    const headers: Record<string, string> = offset > 0 ? { Range: `bytes=${offset}-${file.size - 1}` } : {};
    let response: Response;
    try {
      response = await options.fetch(options.url, { headers });
    } catch (error) {
      throw new HubDownloadError(`requesting ${file.path}: ${describe(error)}`, { retryable: isNetworkError(error), cause: error });
    }
    if (!response.ok) {
      await response.body?.cancel();
      const status = response.status;
      throw new HubDownloadError(`the Hub answered HTTP ${status} for ${file.path}`, { status, retryable: status >= 500 || status === 429 || status === 408 });
    }
    if (offset > 0 && response.status !== 206) {
      // The server ignored the range and sends everything: keep nothing of the old part.
      options.onBytes?.(-offset);
      await truncate(incomplete, 0);
      offset = 0;
      hash = newHash(file);
    } else if (offset > 0) {
      const start = Number(/^bytes (\d+)-/.exec(response.headers.get('content-range') ?? '')?.[1]);
      if (start !== offset) {
        await response.body?.cancel();
        throw new HubDownloadError(`${file.path}: asked for bytes from ${offset}, got content-range "${response.headers.get('content-range')}"`, { retryable: false });
      }
    }
    const handle = await open(incomplete, 'a');
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        await handle.write(chunk);
        hash?.update(chunk);
        fetched += chunk.byteLength;
        options.onBytes?.(chunk.byteLength);
      }
    } finally {
      await handle.close();
    }
  }
  const size = (await statOrNull(incomplete))?.size ?? 0;
  if (size !== file.size) {
    throw new HubDownloadError(`${file.path}: the download ended at byte ${size} of ${file.size}`, { retryable: true });
  }
  if (hash !== null) {
    const digest = hash.digest('hex');
    if (digest !== file.etag) {
      await rm(incomplete, { force: true });
      options.onBytes?.(-size);
      throw new HubDownloadError(`${file.path}: content does not match its ${file.checksum} ${file.etag} (got ${digest}); the partial file was discarded`, { retryable: false });
    }
  }
  return fetched;
}

function newHash(file: HubFileToFetch): Hash | null {
  if (file.checksum === 'sha256') return createHash('sha256');
  if (file.checksum === 'git-sha1') return createHash('sha1').update(`blob ${file.size}\0`);
  return null;
}

async function hashFile(hash: Hash, path: string): Promise<void> {
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
}

async function linkBlob(blob: string, pointer: string): Promise<void> {
  await rm(pointer, { force: true });
  try {
    // Relative, as huggingface_hub makes them: the cache folder can move.
    await symlink(relative(dirname(pointer), blob), pointer);
  } catch {
    await copyFile(blob, pointer);
  }
}

/** undici rejects with TypeError("fetch failed") (cause: the socket error) or "terminated" mid-body. */
export function isNetworkError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error instanceof TypeError && /fetch failed|terminated|network/i.test(error.message)) return true;
  const code = (error as { code?: string }).code ?? (error.cause as { code?: string } | undefined)?.code;
  return typeof code === 'string' && /^(ECONNRESET|ECONNREFUSED|ETIMEDOUT|EPIPE|EAI_AGAIN|UND_ERR_)/.test(code);
}

function describe(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const base = error instanceof Error ? error.message : String(error);
  const detail = cause?.code ?? cause?.message;
  return detail && !base.includes(detail) ? `${base} (${detail})` : base;
}

async function exists(path: string): Promise<boolean> {
  // Follows symlinks: a dangling pointer (blob deleted) does not count.
  return (await statOrNull(path)) !== null;
}

async function statOrNull(path: string) {
  try {
    return await stat(path);
  } catch {
    return null;
  }
}
