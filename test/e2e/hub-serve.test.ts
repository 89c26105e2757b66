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
 * - a refused token and an unknown revision stop start-up with exit 1 and a message saying so.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyModelDir } from '../fixtures/tiny-models.ts';
import { scratchDir } from '../helpers/paths.ts';
import { repoFromFolder, startHubStandin, type HubStandin, type StandinRepo } from '../unit/model/hub-standin.ts';
import { runCli, spawnServe, type CliServer } from './reliability-helpers.ts';

const REPO = 'test-org/tiny-served';
const MAIN = 'a'.repeat(40);
const V1 = 'b'.repeat(40);
const TOKEN = 'hf_serve_e2e_token';

let hub: HubStandin;
let cacheDir: string;
let v1Folder: string;

beforeAll(async () => {
  v1Folder = await tinyModelDir('tiny-llama');
  const main = await repoFromFolder(REPO, await tinyModelDir('tiny-qwen2'), MAIN);
  const v1 = await repoFromFolder(REPO, v1Folder, V1);
  const repo: StandinRepo = { repoId: REPO, refs: { main: MAIN, v1: V1 }, commits: { ...main.commits, ...v1.commits } };
  hub = await startHubStandin([repo], { token: TOKEN });
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
});
