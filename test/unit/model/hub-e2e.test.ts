/**
 * End to end against the Hub stand-in on 127.0.0.1: `updraft download` fetches a model (cut once
 * mid-file and resumed), then the server starts from the cache with HF_HUB_OFFLINE=1 and generates
 * exactly what the same model generates from its own folder. Models: a generated tiny one, and the
 * ../shared reference checkpoints when present.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadMain } from '../../../src/cli/download.ts';
import { defaultServeConfig } from '../../../src/config.ts';
import type { GenerateOutput } from '../../../src/engine/inference-service.ts';
import { startRuntime } from '../../../src/runtime.ts';
import { defaultSamplingParams } from '../../../src/sampling/params.ts';
import { tinyModelDir } from '../../fixtures/tiny-models.ts';
import { HAS_SHARED_MODELS, SHARED_MODELS, SHARED_SKIP_REASON, scratchDir } from '../../helpers/paths.ts';
import { repoFromFolder, startHubStandin } from './hub-standin.ts';
import type { HubStandin } from './hub-standin.ts';

const COMMIT = 'd'.repeat(40);
const TOKEN = 'hf_e2e_token';

interface Case {
  repo: string;
  folder: () => Promise<string>;
  /** Start a server from the cache and compare outputs (tiny-llama31-random's 128k-token tokenizer makes that slow: its cache is checked offline only). */
  serve: boolean;
}

const CASES: Case[] = [
  { repo: 'test-org/tiny-qwen2', folder: () => tinyModelDir('tiny-qwen2'), serve: true },
  ...(HAS_SHARED_MODELS
    ? [
        { repo: 'karpathy/stories260K', folder: async () => join(SHARED_MODELS, 'stories260K'), serve: true },
        { repo: 'test-org/tiny-llama31-random', folder: async () => join(SHARED_MODELS, 'tiny-llama31-random'), serve: false },
      ]
    : []),
];

let hub: HubStandin;
beforeAll(async () => {
  hub = await startHubStandin(await Promise.all(CASES.map(async (c) => repoFromFolder(c.repo, await c.folder(), COMMIT))), { token: TOKEN });
});
afterAll(async () => hub?.close());

function sink(): { stream: Writable; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      text += chunk.toString();
      callback();
    },
  });
  return { stream, text: () => text };
}

/** Greedy text of a few prompts from a runtime started on `model` (a folder or a Hub id). */
async function greedyTexts(model: string): Promise<string[]> {
  const runtime = await startRuntime({ ...defaultServeConfig(), model, numThreads: 2 });
  try {
    const texts: string[] = [];
    for (const [i, prompt] of ['Once upon a time', 'The little dog'].entries()) {
      let text = '';
      const outputs: AsyncIterable<GenerateOutput> = runtime.service.generate({
        requestId: `r${i}`,
        promptTokenIds: await runtime.service.encode(prompt),
        params: defaultSamplingParams({ temperature: 0, maxTokens: 12, ignoreEos: true }),
      });
      for await (const output of outputs) text += output.text;
      texts.push(text);
    }
    return texts;
  } finally {
    await runtime.close();
  }
}

describe.each(CASES)('$repo through the Hub stand-in', ({ repo, folder, serve }) => {
  it('downloads with `updraft download` (resuming a cut connection), then serves offline from the cache', async () => {
    const cacheDir = await scratchDir('hf-e2e');
    const env = { HF_ENDPOINT: hub.url, HF_HUB_CACHE: cacheDir, HF_TOKEN: TOKEN };
    const before = hub.ranges.length;
    hub.dropNext('model.safetensors', Math.floor((await stat(join(await folder(), 'model.safetensors'))).size / 2));
    const out = sink();
    const err = sink();
    const code = await downloadMain([repo], { stdout: out.stream, stderr: err.stream, env });
    expect(code, err.text()).toBe(0);
    const dir = out.text().trim();
    expect(dir).toBe(join(cacheDir, `models--${repo.replace('/', '--')}`, 'snapshots', COMMIT));
    // Progress without a terminal: plain lines, then the summary; the cut was resumed with a Range request.
    expect(err.text()).toMatch(new RegExp(`downloading ${repo}@main \\(dddddddddd\\): \\d+ of \\d+ files`));
    expect(err.text()).toMatch(/model.safetensors: .*resuming at byte \d+/);
    expect(err.text()).toMatch(new RegExp(`downloaded ${repo}: .* in .* s`));
    const weightRanges = hub.ranges.slice(before).filter((r) => r.path === 'model.safetensors').map((r) => r.range);
    expect(weightRanges).toHaveLength(2);
    expect(weightRanges[1]).toMatch(/^bytes=[1-9]\d*-\d+$/);

    // A second download fetches nothing.
    const again = sink();
    const requestsBefore = hub.requests.length;
    expect(await downloadMain([repo], { stdout: sink().stream, stderr: again.stream, env })).toBe(0);
    expect(again.text()).toMatch(/files are in the cache/);
    expect(hub.requests.slice(requestsBefore).filter((r) => r.includes('/resolve/'))).toEqual([]);

    // Offline, the cache alone answers.
    const offline = sink();
    expect(await downloadMain([repo], { stdout: offline.stream, stderr: sink().stream, env: { ...env, HF_HUB_OFFLINE: '1', HF_ENDPOINT: 'http://127.0.0.1:9' } })).toBe(0);
    expect(offline.text().trim()).toBe(dir);
    if (!serve) return;

    // Serve from the cache with the Hub out of reach: same outputs as from the original folder.
    const saved = { ...process.env };
    Object.assign(process.env, { HF_HUB_CACHE: cacheDir, HF_HUB_OFFLINE: '1', HF_ENDPOINT: 'http://127.0.0.1:9' });
    try {
      const requestsBeforeServe = hub.requests.length;
      const fromCache = await greedyTexts(repo);
      expect(hub.requests.length).toBe(requestsBeforeServe);
      expect(fromCache).toEqual(await greedyTexts(await folder()));
    } finally {
      for (const key of ['HF_HUB_CACHE', 'HF_HUB_OFFLINE', 'HF_ENDPOINT']) {
        if (saved[key] === undefined) delete process.env[key];
        else process.env[key] = saved[key];
      }
    }
  });
});

describe('updraft download', () => {
  it.skipIf(!HAS_SHARED_MODELS)(`covers the ../shared reference checkpoints too${HAS_SHARED_MODELS ? '' : ` (skipped: ${SHARED_SKIP_REASON})`}`, () => {
    expect(CASES.map((c) => c.repo)).toContain('karpathy/stories260K');
  });

  it('says what went wrong: usage, unknown repo, refused token, offline without a copy', async () => {
    const cacheDir = await scratchDir('hf-e2e-errors');
    const run = async (argv: string[], env: NodeJS.ProcessEnv) => {
      const out = sink();
      const err = sink();
      const code = await downloadMain(argv, { stdout: out.stream, stderr: err.stream, env });
      return { code, out: out.text(), err: err.text() };
    };
    const env = { HF_ENDPOINT: hub.url, HF_HUB_CACHE: cacheDir, HF_TOKEN: TOKEN };
    expect(await run([], env)).toMatchObject({ code: 2, err: expect.stringMatching(/give one repo id/) });
    expect(await run(['--bogus', 'x/y'], env)).toMatchObject({ code: 2 });
    expect((await run(['--help'], env)).out).toMatch(/^Usage: updraft download REPO/);
    expect(await run(['test-org/missing'], env)).toMatchObject({ code: 1, err: expect.stringMatching(/test-org\/missing@main on .* was not found \(HTTP 404\)/) });
    expect(await run(['test-org/tiny-qwen2', '--revision', 'nope'], env)).toMatchObject({ code: 1, err: expect.stringMatching(/@nope .* not found/) });
    expect(await run(['test-org/tiny-qwen2'], { ...env, HF_TOKEN: 'hf_wrong' })).toMatchObject({ code: 1, err: expect.stringMatching(/refused \(HTTP 401\)/) });
    expect(await run(['test-org/tiny-qwen2'], { ...env, HF_HUB_OFFLINE: '1' })).toMatchObject({ code: 1, err: expect.stringMatching(/HF_HUB_OFFLINE is set/) });
    // --cache-dir and --quiet.
    const other = await scratchDir('hf-e2e-cache-dir');
    const quiet = await run(['test-org/tiny-qwen2', '--cache-dir', other, '--quiet'], env);
    expect(quiet).toMatchObject({ code: 0, err: '' });
    expect(quiet.out.trim()).toBe(join(other, 'models--test-org--tiny-qwen2', 'snapshots', COMMIT));
  });
});
