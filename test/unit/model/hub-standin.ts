/**
 * A local stand-in for the Hugging Face Hub: the endpoints @huggingface/hub calls for modelInfo,
 * listFiles, pathsInfo and file downloads, serving in-memory repos over node:http on 127.0.0.1.
 *
 *   GET  /api/models/{repo}/revision/{rev}     → { id, sha, ... }
 *   GET  /api/models/{repo}/tree/{rev}          → [{ type, path, size, oid, lfs? }]
 *   POST /api/models/{repo}/paths-info/{rev}    → [{ type, path, size, oid, lfs?, lastCommit }]
 *   GET  /{repo}/resolve/{rev}/{path}           → the bytes (206 + Content-Range for Range requests), ETag
 *
 * Tests can make it cut the connection part-way through a file once (dropNext), as a flaky network
 * would, send file bodies slowly (throttle, so that progress has a speed to show), and see which byte
 * ranges were asked for (ranges). repoFromFolder serves a model folder.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

export interface StandinRepo {
  repoId: string;
  /** Branch or tag → commit (40 hex). */
  refs: Record<string, string>;
  /** commit → path → bytes. */
  commits: Record<string, Record<string, Buffer>>;
}

export interface HubStandin {
  url: string;
  /** "GET /api/models/..." for every request received. */
  requests: string[];
  /** The Range header of every file download ('' when none), by file path. */
  ranges: Array<{ path: string; range: string }>;
  /** The next download of `path` sends its headers and `afterBytes` bytes, then cuts the connection. */
  dropNext(path: string, afterBytes: number): void;
  /** File bodies at about this many bytes per second from now on (null: as fast as possible). */
  throttle(bytesPerSecond: number | null): void;
  close(): Promise<void>;
}

/** A repo whose one commit holds every file of `dir` (top level). */
export async function repoFromFolder(repoId: string, dir: string, commit: string): Promise<StandinRepo> {
  const files: Record<string, Buffer> = {};
  for (const entry of await readdir(dir, { withFileTypes: true })) if (entry.isFile()) files[entry.name] = await readFile(join(dir, entry.name));
  return { repoId, refs: { main: commit }, commits: { [commit]: files } };
}

export const gitBlobId = (data: Buffer) => gitOid(data);
export const sha256Hex = (data: Buffer) => sha256(data);

const isLfs = (path: string) => /\.(safetensors|bin|pth)$/.test(path);
const gitOid = (data: Buffer) => createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

function entryOf(path: string, data: Buffer) {
  return {
    type: 'file',
    path,
    size: data.length,
    oid: gitOid(data),
    ...(isLfs(path) ? { lfs: { oid: sha256(data), size: data.length, pointerSize: 134 } } : {}),
  };
}

export async function startHubStandin(repos: StandinRepo[], opts: { token?: string } = {}): Promise<HubStandin> {
  const requests: string[] = [];
  const ranges: HubStandin['ranges'] = [];
  const drops = new Map<string, number>();
  let bytesPerSecond: number | null = null;
  const byId = new Map(repos.map((r) => [r.repoId, r]));

  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
  const notFound = (res: ServerResponse, message: string, code = 'RepoNotFound') => json(res, 404, { error: message }, { 'X-Error-Code': code });
  const resolveRev = (repo: StandinRepo, rev: string) => (repo.commits[rev] ? rev : repo.refs[rev]);

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://standin');
    const path = decodeURIComponent(url.pathname);
    requests.push(`${req.method} ${path}`);
    if (opts.token && req.headers.authorization !== `Bearer ${opts.token}`) {
      return json(res, 401, { error: 'Invalid credentials in Authorization header' });
    }
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/(revision|tree|paths-info)\/([^/]+)$/.exec(path);
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    const repo = byId.get((api ?? resolve)?.[1] ?? '');
    if (!repo) return notFound(res, 'Repository not found');
    if (api) {
      const [, , kind, rev] = api;
      const commit = resolveRev(repo, rev!);
      if (!commit) return notFound(res, `Invalid rev id: ${rev}`, 'RevisionNotFound');
      const files = repo.commits[commit]!;
      if (kind === 'revision') {
        return json(res, 200, { _id: 'standin', id: repo.repoId, sha: commit, private: false, gated: false, downloads: 0, likes: 0, lastModified: '2024-01-01T00:00:00.000Z' });
      }
      if (kind === 'tree') {
        // Top level only unless recursive, like the Hub.
        const recursive = url.searchParams.get('recursive') === 'true';
        const dirs = new Set<string>();
        const entries = [];
        for (const [p, data] of Object.entries(files)) {
          if (!recursive && p.includes('/')) dirs.add(p.split('/')[0]!);
          else entries.push(entryOf(p, data));
        }
        return json(res, 200, [...[...dirs].map((d) => ({ type: 'directory', path: d, size: 0, oid: '0'.repeat(40) })), ...entries]);
      }
      const body = JSON.parse(await readBody(req)) as { paths: string[] };
      const found = body.paths.filter((p) => files[p]).map((p) => ({
        ...entryOf(p, files[p]!),
        lastCommit: { id: commit, title: 'upload', date: '2024-01-01T00:00:00.000Z' },
      }));
      return json(res, 200, found);
    }
    const [, , rev, filePath] = resolve!;
    const commit = resolveRev(repo, rev!);
    const data = commit ? repo.commits[commit]![filePath!] : undefined;
    if (!data) return notFound(res, 'Entry not found', 'EntryNotFound');
    const entry = entryOf(filePath!, data);
    ranges.push({ path: filePath!, range: req.headers.range ?? '' });
    const headers: Record<string, string> = {
      'Content-Type': 'application/octet-stream',
      ETag: `"${entry.lfs?.oid ?? entry.oid}"`,
      'X-Repo-Commit': commit!,
      'Accept-Ranges': 'bytes',
    };
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const start = range ? Number(range[1]) : 0;
    const end = range && range[2] !== '' ? Math.min(Number(range[2]), data.length - 1) : data.length - 1;
    const body = data.subarray(start, end + 1);
    if (range) res.writeHead(206, { ...headers, 'Content-Range': `bytes ${start}-${end}/${data.length}`, 'Content-Length': String(body.length) });
    else res.writeHead(200, { ...headers, 'Content-Length': String(body.length) });
    const cutAfter = drops.get(filePath!);
    if (cutAfter !== undefined && req.method === 'GET') {
      drops.delete(filePath!);
      res.write(body.subarray(0, cutAfter), () => res.socket?.destroy());
      return;
    }
    if (bytesPerSecond !== null) {
      // Twenty slices a second.
      const slice = Math.max(1, Math.floor(bytesPerSecond / 20));
      for (let at = 0; at < body.length && !res.destroyed; at += slice) {
        res.write(body.subarray(at, at + slice));
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    res.end(bytesPerSecond === null ? body : undefined);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => json(res, 500, { error: String(err) }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    ranges,
    dropNext: (path, afterBytes) => void drops.set(path, afterBytes),
    throttle: (rate) => void (bytesPerSecond = rate),
    close: () => new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve()))),
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf-8')));
    req.on('error', reject);
  });
}
