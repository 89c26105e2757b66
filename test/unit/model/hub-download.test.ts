/**
 * Hub downloads against the local stand-in: progress in bytes, a connection cut mid-file (resumed
 * with a Range request), a run interrupted and resumed by the next run, a corrupt partial file,
 * a cache written by Python's huggingface_hub reused without the network, the login token file.
 */
import { mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgressDisplay, formatBar, formatPlain } from '../../../src/cli/progress.ts';
import { HUB_METADATA_FILES, hubSettingsFromEnv, repoFolderName, resolveModel } from '../../../src/model/hub.ts';
import type { HubSettings } from '../../../src/model/hub.ts';
import type { ProgressReporter } from '../../../src/model/progress.ts';
import { writeSafetensors } from '../../../src/model/safetensors.ts';
import { tinyModelDir } from '../../fixtures/tiny-models.ts';
import { scratchDir } from '../../helpers/paths.ts';
import { gitBlobId, repoFromFolder, sha256Hex, startHubStandin } from './hub-standin.ts';
import type { HubStandin, StandinRepo } from './hub-standin.ts';

const MAIN = 'c'.repeat(40);
const REPO = 'test-org/tiny-llama';
const BIG = 'test-org/big-weights';
let hub: HubStandin;
let tinyFiles: Record<string, Buffer>;
let bigWeights: Buffer;

interface Recorded {
  label: string;
  total: number;
  initial: number;
  updates: number[];
  details: Set<string>;
  summary: string | undefined;
}

function recordingProgress(): { reporter: ProgressReporter; tasks: Recorded[] } {
  const tasks: Recorded[] = [];
  return {
    tasks,
    reporter: {
      begin(label, total, done = 0) {
        const task: Recorded = { label, total, initial: done, updates: [], details: new Set(), summary: undefined };
        tasks.push(task);
        return {
          update: (bytes, detail) => {
            task.updates.push(bytes);
            if (detail) task.details.add(detail);
          },
          end: (summary) => void (task.summary = summary),
        };
      },
    },
  };
}

beforeAll(async () => {
  const tiny = await repoFromFolder(REPO, await tinyModelDir('tiny-llama'), MAIN);
  tinyFiles = tiny.commits[MAIN]!;
  // A checkpoint big enough to be cut in the middle: 1 MiB of f32.
  const dir = await scratchDir('hub-big');
  const data = new Float32Array(256 * 1024).map((_, i) => Math.sin(i));
  await writeSafetensors(join(dir, 'model.safetensors'), [{ name: 'w', dtype: 'f32', shape: [data.length], data }]);
  bigWeights = await readFile(join(dir, 'model.safetensors'));
  const big: StandinRepo = { repoId: BIG, refs: { main: MAIN }, commits: { [MAIN]: { 'config.json': tinyFiles['config.json']!, 'model.safetensors': bigWeights } } };
  hub = await startHubStandin([tiny, big]);
});
afterAll(async () => hub?.close());

async function settings(overrides: Partial<HubSettings> = {}): Promise<HubSettings> {
  return { endpoint: hub.url, cacheDir: await scratchDir('hf-cache'), offline: false, ...overrides };
}

const fast = { retryDelayMs: () => 1 };

describe('download progress', () => {
  it('reports the bytes of the files still to fetch, ending at their total', async () => {
    const { reporter, tasks } = recordingProgress();
    const s = await settings();
    const resolved = await resolveModel(REPO, { settings: s, progress: reporter });
    const served = [...HUB_METADATA_FILES, 'model.safetensors'].filter((name) => tinyFiles[name]);
    const total = served.reduce((sum, name) => sum + tinyFiles[name]!.length, 0);
    expect(tasks).toHaveLength(1);
    const [task] = tasks;
    expect(task!.label).toBe(REPO);
    expect(task!.total).toBe(total);
    expect(task!.initial).toBe(0);
    expect(task!.updates.at(-1)).toBe(total);
    expect(task!.updates).toEqual([...task!.updates].sort((a, b) => a - b));
    expect(task!.details.has('model.safetensors')).toBe(true);
    expect(task!.summary).toMatch(/^downloaded test-org\/tiny-llama: .* in .* s \(.*\/s\)$/);
    expect((await readdir(resolved.dir)).sort()).toEqual(served.sort());

    // Everything cached: no task at all.
    const again = recordingProgress();
    await resolveModel(REPO, { settings: s, progress: again.reporter });
    expect(again.tasks).toEqual([]);
  });

  it('draws a bar on a terminal and plain lines elsewhere', () => {
    const line = { label: 'org/model', doneBytes: 512 * 1024 ** 2, totalBytes: 1024 ** 3, bytesPerSecond: 32 * 1024 ** 2, detail: 'model.safetensors' };
    expect(formatBar(line, 200)).toBe('org/model  [██████████░░░░░░░░░░]  512.00 MiB / 1.00 GiB  32.00 MiB/s  eta 16 s  model.safetensors');
    expect(formatBar(line, 40)).toHaveLength(39);
    expect(formatPlain(line)).toBe('org/model: 512.00 MiB of 1.00 GiB (50%), 32.00 MiB/s, eta 16 s, model.safetensors');

    let clock = 0;
    const written: string[] = [];
    const tty = { isTTY: true, columns: 200, write: (s: string) => written.push(s) > 0 } as unknown as NodeJS.WritableStream & { isTTY: boolean };
    const task = createProgressDisplay({ stream: tty, now: () => clock }).begin('org/model', 1000);
    for (clock = 50; clock <= 1000; clock += 50) task.update(clock);
    task.end('downloaded');
    expect(written.every((w) => w.startsWith('\r'))).toBe(true);
    expect(written.length).toBeLessThan(15); // redrawn at most every 100 ms
    expect(written.at(-2)).toMatch(/1000 B \/ 1000 B {2}1000 B\/s/);
    expect(written.at(-1)).toBe('\rdownloaded\x1b[K\n');

    const lines: string[] = [];
    clock = 0;
    const plain = createProgressDisplay({ tty: false, intervalMs: 500, writeLine: (t) => lines.push(t), now: () => clock }).begin('org/model', 1000);
    for (clock = 50; clock <= 1000; clock += 50) plain.update(clock);
    plain.end('downloaded');
    expect(lines).toEqual(['org/model: 0 B of 1000 B (0%)', 'org/model: 500 B of 1000 B (50%), 1000 B/s, eta 1 s', 'org/model: 1000 B of 1000 B (100%), 1000 B/s', 'downloaded']);
  });
});

describe('interrupted downloads', () => {
  it('resumes a file whose connection drops mid-way with a Range request, in the same run', async () => {
    const s = await settings();
    const messages: string[] = [];
    const { reporter, tasks } = recordingProgress();
    const before = hub.ranges.length;
    hub.dropNext('model.safetensors', 300_000);
    const resolved = await resolveModel(BIG, { settings: s, progress: reporter, log: (m) => messages.push(m), ...fast });
    expect((await readFile(join(resolved.dir, 'model.safetensors'))).equals(bigWeights)).toBe(true);
    const ranges = hub.ranges.slice(before).filter((r) => r.path === 'model.safetensors').map((r) => r.range);
    expect(ranges[0]).toBe('');
    expect(ranges).toHaveLength(2);
    const resumedAt = Number(/^bytes=(\d+)-(\d+)$/.exec(ranges[1]!)?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(300_000);
    expect(ranges[1]).toBe(`bytes=${resumedAt}-${bigWeights.length - 1}`);
    expect(messages.join('\n')).toMatch(new RegExp(`model.safetensors: .*; resuming at byte ${resumedAt} of ${bigWeights.length} \\(retry 1 of 5\\)`));
    expect(tasks[0]!.updates.at(-1)).toBe(tasks[0]!.total);
    // No partial file is left behind.
    const blobs = await readdir(join(s.cacheDir, repoFolderName(BIG), 'blobs'));
    expect(blobs.some((b) => b.endsWith('.incomplete'))).toBe(false);
    expect(blobs).toContain(sha256Hex(bigWeights));
  });

  it('continues a partial file left by an interrupted run, fetching only the rest', async () => {
    const s = await settings();
    hub.dropNext('model.safetensors', 400_000);
    const failure = await resolveModel(BIG, { settings: s, retries: 0, ...fast }).catch((e: Error) => e);
    expect(failure).toBeInstanceOf(Error);
    const incomplete = join(s.cacheDir, repoFolderName(BIG), 'blobs', `${sha256Hex(bigWeights)}.incomplete`);
    const partial = (await stat(incomplete)).size;
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(bigWeights.length);

    const { reporter, tasks } = recordingProgress();
    const before = hub.ranges.length;
    const resolved = await resolveModel(BIG, { settings: s, progress: reporter });
    expect(hub.ranges.slice(before).filter((r) => r.path === 'model.safetensors').map((r) => r.range)).toEqual([`bytes=${partial}-${bigWeights.length - 1}`]);
    expect(tasks[0]!.initial).toBe(partial);
    expect((await readFile(join(resolved.dir, 'model.safetensors'))).equals(bigWeights)).toBe(true);
  });

  it('discards a partial file that is not a prefix of the real one (checksum), and the next run succeeds', async () => {
    const s = await settings();
    const blobs = join(s.cacheDir, repoFolderName(BIG), 'blobs');
    await mkdir(blobs, { recursive: true });
    const incomplete = join(blobs, `${sha256Hex(bigWeights)}.incomplete`);
    await writeFile(incomplete, Buffer.alloc(1000, 7));
    await expect(resolveModel(BIG, { settings: s, ...fast })).rejects.toThrow(/model.safetensors: content does not match its sha256 .* the partial file was discarded/);
    await expect(stat(incomplete)).rejects.toThrow();
    const resolved = await resolveModel(BIG, { settings: s });
    expect((await readFile(join(resolved.dir, 'model.safetensors'))).equals(bigWeights)).toBe(true);
  });
});

describe('a cache written by Python huggingface_hub', () => {
  /** blobs/<etag> + snapshots/<commit>/<file> → ../../blobs/<etag> + refs/main, as huggingface_hub lays it out. */
  async function pythonCache(files: Record<string, Buffer>): Promise<string> {
    const cacheDir = await scratchDir('hf-python-cache');
    const repoDir = join(cacheDir, 'models--test-org--tiny-llama');
    await mkdir(join(repoDir, 'blobs'), { recursive: true });
    await mkdir(join(repoDir, 'snapshots', MAIN), { recursive: true });
    await mkdir(join(repoDir, 'refs'), { recursive: true });
    await writeFile(join(repoDir, 'refs', 'main'), MAIN);
    for (const [name, data] of Object.entries(files)) {
      const etag = name.endsWith('.safetensors') ? sha256Hex(data) : gitBlobId(data);
      await writeFile(join(repoDir, 'blobs', etag), data);
      await symlink(`../../blobs/${etag}`, join(repoDir, 'snapshots', MAIN, name));
    }
    return cacheDir;
  }

  it('is used offline (HF_HUB_OFFLINE) without any request', async () => {
    const cacheDir = await pythonCache(tinyFiles);
    const before = hub.requests.length;
    const resolved = await resolveModel(REPO, { settings: await settings({ cacheDir, offline: true }) });
    expect(resolved).toEqual({ dir: join(cacheDir, 'models--test-org--tiny-llama', 'snapshots', MAIN), source: 'cache', repoId: REPO, commit: MAIN });
    expect(hub.requests.length).toBe(before);
  });

  it('is reused online: only the metadata calls, no file downloaded', async () => {
    const cacheDir = await pythonCache(tinyFiles);
    const before = hub.requests.length;
    const { reporter, tasks } = recordingProgress();
    const resolved = await resolveModel(REPO, { settings: await settings({ cacheDir }), progress: reporter });
    expect(resolved.source).toBe('hub');
    expect(hub.requests.slice(before).filter((r) => r.includes('/resolve/'))).toEqual([]);
    expect(tasks).toEqual([]);
  });

  it('fills in what Python did not fetch, linking blobs it already has', async () => {
    const { 'model.safetensors': weights, ...rest } = tinyFiles;
    const cacheDir = await pythonCache({ 'config.json': rest['config.json']! });
    // The weights blob is there (e.g. from another revision), its snapshot link is not.
    await writeFile(join(cacheDir, 'models--test-org--tiny-llama', 'blobs', sha256Hex(weights!)), weights!);
    const before = hub.requests.length;
    const resolved = await resolveModel(REPO, { settings: await settings({ cacheDir }) });
    const fetched = hub.requests.slice(before).filter((r) => r.includes('/resolve/')).map((r) => r.split('/').pop());
    expect(fetched.sort()).toEqual(['chat_template.jinja', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json']);
    expect((await readFile(join(resolved.dir, 'model.safetensors'))).equals(weights!)).toBe(true);
  });

  it('uses the token that `huggingface-cli login` saved when HF_TOKEN is unset', async () => {
    const home = await scratchDir('hf-home');
    await writeFile(join(home, 'token'), 'hf_saved_token\n');
    expect(hubSettingsFromEnv({ HF_HOME: home }).token).toBe('hf_saved_token');
    expect(hubSettingsFromEnv({ HF_HOME: home, HF_TOKEN: 'hf_env' }).token).toBe('hf_env');
    await writeFile(join(home, 'other-token'), 'hf_path_token');
    expect(hubSettingsFromEnv({ HF_HOME: home, HF_TOKEN_PATH: join(home, 'other-token') }).token).toBe('hf_path_token');
    expect(hubSettingsFromEnv({ HF_HOME: await scratchDir('hf-empty') }).token).toBeUndefined();
  });
});
