/**
 * Issue 9, `updraft serve <hub-id>` end to end: the real CLI (`node bin/updraft.js serve`, a child
 * process) against the Hub stand-in on 127.0.0.1 (test/unit/model/hub-standin.ts), which demands a
 * token and serves two commits of one repo: `main` (tiny-qwen2) and the tag `v1` (tiny-llama).
 * - online: HF_ENDPOINT points at the stand-in, HF_TOKEN is sent, --revision v1 picks the tag's
 *   commit (nothing of main's is fetched); the download reports its bytes and speed, loading the
 *   weights reports its progress, and the start-up line names the model, device, KV capacity in
 *   tokens and URL; the server answers from the snapshot it downloaded;
 * - HF_HUB_OFFLINE=1: a second server starts from the cache without a single request to the Hub,
 *   following refs/v1, with the human-readable banner (--log-format pretty);
 * - a refused token and an unknown revision stop start-up with exit 1 and a message saying so;
 * - on a terminal (the server run under `script`, which gives it a pseudo-terminal), a slow download
 *   is drawn as a bar redrawn in place, with the bytes so far, the total and the speed.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyModelDir } from '../fixtures/tiny-models.ts';
import { REPO_ROOT, scratchDir } from '../helpers/paths.ts';
import { repoFromFolder, startHubStandin, type HubStandin, type StandinRepo } from '../unit/model/hub-standin.ts';
import { runCli, spawnServe, waitFor, type CliServer } from './reliability-helpers.ts';

const REPO = 'test-org/tiny-served';
const MAIN = 'a'.repeat(40);
const V1 = 'b'.repeat(40);
const TOKEN = 'hf_serve_e2e_token';
const TTY_REPO = 'test-org/tiny-tty';
const SCRIPT = ['/usr/bin/script', '/bin/script'].find((path) => existsSync(path)) ?? null;

let hub: HubStandin;
let cacheDir: string;
let v1Folder: string;

beforeAll(async () => {
  v1Folder = await tinyModelDir('tiny-llama');
  const main = await repoFromFolder(REPO, await tinyModelDir('tiny-qwen2'), MAIN);
  const v1 = await repoFromFolder(REPO, v1Folder, V1);
  const repo: StandinRepo = { repoId: REPO, refs: { main: MAIN, v1: V1 }, commits: { ...main.commits, ...v1.commits } };
  hub = await startHubStandin([repo, await repoFromFolder(TTY_REPO, await tinyModelDir('tiny-qwen2'), 'c'.repeat(40))], { token: TOKEN });
  cacheDir = await scratchDir('hub-serve');
});
afterAll(async () => hub?.close());

/** The JSON log lines a server wrote (pino, one object per line). */
function jsonLines(output: string): Array<Record<string, unknown>> {
  return output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

async function greedy(url: string): Promise<{ root: string; text: string }> {
  const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: { id: string; root: string }[] };
  const response = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: 'Once upon a time', max_tokens: 8, temperature: 0, ignore_eos: true }),
  });
  expect(response.status).toBe(200);
  const text = ((await response.json()) as { choices: { text: string }[] }).choices[0]!.text;
  return { root: models.data[0]!.root, text };
}

describe('updraft serve <hub-id> against the Hub stand-in', () => {
  let online: { root: string; text: string };

  it('downloads --revision v1 with HF_TOKEN from HF_ENDPOINT, shows progress and the banner, and serves it', async () => {
    const env = { HF_ENDPOINT: hub.url, HF_HUB_CACHE: cacheDir, HF_TOKEN: TOKEN, HF_HUB_OFFLINE: '' };
    const before = hub.requests.length;
    let server: CliServer | null = null;
    try {
      server = await spawnServe([REPO, '--revision', 'v1', '--log-format', 'json'], env);
      const requests = hub.requests.slice(before);
      // Every request reached the stand-in with the token (it answers 401 otherwise, and start-up would fail).
      const downloads = requests.filter((r) => r.includes('/resolve/'));
      expect(downloads.length).toBeGreaterThanOrEqual(3);
      expect(downloads.every((r) => r.includes(`/resolve/${V1}/`))).toBe(true);
      expect(requests.some((r) => r.includes(MAIN))).toBe(false);
      expect(requests).toContain(`GET /api/models/${REPO}/revision/v1`);

      const lines = jsonLines(server.output());
      const messages = lines.map((line) => String(line['msg']));
      // Download progress: the plan, a first progress line, and the summary in bytes and bytes per second.
      expect(messages.find((m) => m.startsWith(`downloading ${REPO}@v1 (bbbbbbbbbb)`))).toMatch(/\d+ of \d+ files, [\d.]+ (B|KiB|MiB)/);
      expect(lines.some((line) => line['label'] === REPO && typeof line['totalBytes'] === 'number' && (line['totalBytes'] as number) > 0)).toBe(true);
      expect(messages.find((m) => m.startsWith(`downloaded ${REPO}:`))).toMatch(/^downloaded .*: [\d.]+ (B|KiB|MiB) in [\d.]+ s \([\d.]+ (B|KiB|MiB|GiB)\/s\)$/);
      // Loading progress: the weights' bytes as a task, then how long it took and how fast.
      expect(lines.some((line) => line['label'] === 'loading weights' && (line['totalBytes'] as number) > 0)).toBe(true);
      expect(messages.find((m) => m.startsWith('weights loaded in'))).toMatch(/^weights loaded in [\d.]+ s, [\d.]+ (B|KiB|MiB|GiB)\/s$/);
      // The start-up line: model, device, KV capacity in tokens, URL.
      const banner = lines.find((line) => line['url'] === server!.url);
      expect(banner).toMatchObject({ model: REPO, device: expect.any(String), backend: 'cpu', kvCacheTokens: expect.any(Number) });
      expect(banner!['kvCacheTokens'] as number).toBeGreaterThan(0);
      expect(banner!['dir']).toBe(join(cacheDir, 'models--test-org--tiny-served', 'snapshots', V1));

      online = await greedy(server.url);
      expect(online.root).toBe(banner!['dir']);
      // The tag's files, not main's.
      expect(await readFile(join(online.root, 'config.json'), 'utf-8')).toBe(await readFile(join(v1Folder, 'config.json'), 'utf-8'));
      expect(online.text.length).toBeGreaterThan(0);
    } finally {
      server?.kill();
    }
  });

  it('HF_HUB_OFFLINE=1: serves --revision v1 from the cache without touching the Hub, with the text banner', async () => {
    expect(online, 'the online test runs first').toBeDefined();
    const env = { HF_ENDPOINT: hub.url, HF_HUB_CACHE: cacheDir, HF_TOKEN: TOKEN, HF_HUB_OFFLINE: '1' };
    const before = hub.requests.length;
    let server: CliServer | null = null;
    try {
      server = await spawnServe([REPO, '--revision', 'v1', '--log-format', 'pretty'], env);
      expect(hub.requests.slice(before)).toEqual([]);
      const output = server.output();
      expect(output).toContain(`updraft serving ${REPO}`);
      expect(output).toMatch(/device: {3}\S.* \(cpu\)/);
      expect(output).toMatch(/KV cache = [1-9]\d* tokens in \d+ blocks of \d+/);
      expect(output).toContain(`listening on ${server.url}`);
      expect(output).toContain(join('snapshots', V1));
      // The same snapshot, the same greedy answer.
      expect(await greedy(server.url)).toEqual(online);
    } finally {
      server?.kill();
    }
  });

  it('stops start-up with exit 1 when the token is refused or the revision does not exist', async () => {
    const env = { HF_ENDPOINT: hub.url, HF_HUB_CACHE: await scratchDir('hub-serve-errors'), HF_HUB_OFFLINE: '' };
    const refused = await runCli(['serve', REPO, '--port', '0'], { ...env, HF_TOKEN: 'hf_wrong' });
    expect(refused.code, refused.output).toBe(1);
    expect(refused.output).toMatch(/refused \(HTTP 401\).*HF_TOKEN/);
    const unknown = await runCli(['serve', REPO, '--port', '0', '--revision', 'v9'], { ...env, HF_TOKEN: TOKEN });
    expect(unknown.code, unknown.output).toBe(1);
    expect(unknown.output).toMatch(/@v9 on http:\/\/127\.0\.0\.1:\d+ was not found \(HTTP 404\)/);
  });

  it.skipIf(SCRIPT === null)(`on a terminal, draws the download as a bar with bytes and speed${SCRIPT ? '' : ' (skipped: no `script` to make a pseudo-terminal)'}`, async () => {
    hub.throttle(300 * 1024);
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('UPDRAFT_') && value !== undefined) env[key] = value;
    Object.assign(env, { HF_ENDPOINT: hub.url, HF_HUB_CACHE: await scratchDir('hub-serve-tty'), HF_TOKEN: TOKEN, HF_HUB_OFFLINE: '', COLUMNS: '160' });
    const command = [process.execPath, join(REPO_ROOT, 'bin', 'updraft.js'), 'serve', TTY_REPO, '--port', '0', '--num-threads', '2'].map((a) => `'${a}'`).join(' ');
    const child = spawn(SCRIPT!, ['-qfec', command, '/dev/null'], { env, cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    let output = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      await waitFor(() => /listening on http/.test(output), 60_000, 'the server to listen');
      // Each redraw: carriage return, label, bar, done / total, speed (eta, file), erase to the end of the line.
      const bar = /\r(test-org\/tiny-tty {2}\[[█░]{20}\] {2}([\d.]+ (?:B|KiB|MiB)) \/ ([\d.]+ KiB) {2}([\d.]+ (?:B|KiB|MiB))\/s)/g;
      const draws = [...output.matchAll(bar)];
      expect(draws.length, output).toBeGreaterThanOrEqual(3);
      expect(new Set(draws.map((d) => d[2])).size).toBeGreaterThanOrEqual(3);
      expect(draws.every((d) => d[3] === draws[0]![3])).toBe(true);
      expect(output).toMatch(/\rdownloaded test-org\/tiny-tty: [\d.]+ KiB in [\d.]+ s \([\d.]+ KiB\/s\)\x1b\[K/);
    } finally {
      hub.throttle(null);
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
      await exited;
    }
  });
});
