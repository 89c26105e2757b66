import { lstat, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDecoderConfig } from '../../../src/model/hf-config.ts';
import { hubSettingsFromEnv, isHubRepoId, repoFolderName, resolveModel } from '../../../src/model/hub.ts';
import type { HubSettings } from '../../../src/model/hub.ts';
import { writeSafetensors } from '../../../src/model/safetensors.ts';
import { openWeights } from '../../../src/model/weights.ts';
import { tinyModelDir } from '../../fixtures/tiny-models.ts';
import { startHubStandin } from './hub-standin.ts';
import type { HubStandin, StandinRepo } from './hub-standin.ts';
import { scratchDir } from '../../helpers/paths.ts';

const MAIN = 'a'.repeat(40);
const DEV = 'b'.repeat(40);
const TOKEN = 'hf_standin_token';
const SERVING_FILES = ['chat_template.jinja', 'config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];

async function folderFiles(dir: string): Promise<Record<string, Buffer>> {
  const files: Record<string, Buffer> = {};
  for (const name of await readdir(dir)) files[name] = await readFile(join(dir, name));
  return files;
}

let hub: HubStandin;
let tinyFiles: Record<string, Buffer>;
let shardedFiles: Record<string, Buffer>;

beforeAll(async () => {
  tinyFiles = await folderFiles(await tinyModelDir('tiny-llama'));
  const devFiles = { ...tinyFiles, 'config.json': Buffer.from(tinyFiles['config.json']!.toString().replace('"max_position_embeddings": 512', '"max_position_embeddings": 256')) };
  // A sharded repo with a duplicate consolidated checkpoint (as Mistral repos have) that must not be fetched.
  const shardDir = await scratchDir('hub-shards');
  const tensor = (name: string) => ({ name, dtype: 'f32' as const, shape: [2], data: new Float32Array([1, 2]) });
  await writeSafetensors(join(shardDir, 'model-00001-of-00002.safetensors'), [tensor('a')]);
  await writeSafetensors(join(shardDir, 'model-00002-of-00002.safetensors'), [tensor('b')]);
  shardedFiles = {
    'config.json': tinyFiles['config.json']!,
    'model.safetensors.index.json': Buffer.from(JSON.stringify({ weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' } })),
    'model-00001-of-00002.safetensors': await readFile(join(shardDir, 'model-00001-of-00002.safetensors')),
    'model-00002-of-00002.safetensors': await readFile(join(shardDir, 'model-00002-of-00002.safetensors')),
    'consolidated.safetensors': Buffer.alloc(4096, 1),
  };
  const repos: StandinRepo[] = [
    {
      repoId: 'test-org/tiny-llama',
      refs: { main: MAIN, dev: DEV },
      commits: {
        [MAIN]: { ...tinyFiles, 'README.md': Buffer.from('# tiny'), 'pytorch_model.bin': Buffer.alloc(64), 'original/consolidated.pth': Buffer.alloc(64) },
        [DEV]: devFiles,
      },
    },
    { repoId: 'test-org/sharded', refs: { main: MAIN }, commits: { [MAIN]: shardedFiles } },
    { repoId: 'test-org/bin-only', refs: { main: MAIN }, commits: { [MAIN]: { 'config.json': tinyFiles['config.json']!, 'pytorch_model.bin': Buffer.alloc(8) } } },
  ];
  hub = await startHubStandin(repos, { token: TOKEN });
});
afterAll(async () => hub?.close());

async function settings(overrides: Partial<HubSettings> = {}): Promise<HubSettings> {
  return { endpoint: hub.url, token: TOKEN, cacheDir: await scratchDir('hf-cache'), offline: false, ...overrides };
}

describe('resolveModel from a Hub stand-in', () => {
  it('downloads only the serving files into the HF cache layout and the folder loads', async () => {
    const s = await settings();
    const resolved = await resolveModel('test-org/tiny-llama', { settings: s });
    const repoDir = join(s.cacheDir, 'models--test-org--tiny-llama');
    expect(resolved).toEqual({ dir: join(repoDir, 'snapshots', MAIN), source: 'hub', repoId: 'test-org/tiny-llama', commit: MAIN });
    expect((await readdir(resolved.dir)).sort()).toEqual(SERVING_FILES);
    expect((await readFile(join(repoDir, 'refs', 'main'), 'utf-8')).trim()).toBe(MAIN);
    for (const name of SERVING_FILES) {
      const link = join(resolved.dir, name);
      expect((await lstat(link)).isSymbolicLink()).toBe(true);
      expect(await readlink(link)).toMatch(/^\.\.\/\.\.\/blobs\/[0-9a-f]{40,64}$/);
      expect((await readFile(link)).equals(tinyFiles[name]!)).toBe(true);
    }
    expect((await readDecoderConfig(resolved.dir)).architecture).toBe('LlamaForCausalLM');
    expect((await openWeights(resolved.dir)).has('model.embed_tokens.weight')).toBe(true);
    expect(hub.requests.some((r) => r.includes('README.md') || r.includes('pytorch_model.bin') || r.includes('original/'))).toBe(false);
  });

  it('serves a second run from the cache: HF_HUB_OFFLINE touches no network, online re-downloads nothing', async () => {
    const s = await settings();
    const first = await resolveModel('test-org/tiny-llama', { settings: s });
    const before = hub.requests.length;
    const offline = await resolveModel('test-org/tiny-llama', { settings: { ...s, offline: true } });
    expect(offline).toEqual({ ...first, source: 'cache' });
    expect(hub.requests.length).toBe(before);
    const again = await resolveModel('test-org/tiny-llama', { settings: s });
    expect(again.dir).toBe(first.dir);
    expect(hub.requests.slice(before).filter((r) => r.includes('/resolve/'))).toEqual([]);
  });

  it('follows --revision to its commit and records refs/<revision>', async () => {
    const s = await settings();
    const dev = await resolveModel('test-org/tiny-llama', { settings: s, revision: 'dev' });
    expect(dev.commit).toBe(DEV);
    expect((await readDecoderConfig(dev.dir)).maxPositionEmbeddings).toBe(256);
    expect((await readFile(join(s.cacheDir, repoFolderName('test-org/tiny-llama'), 'refs', 'dev'), 'utf-8')).trim()).toBe(DEV);
    const offline = await resolveModel('test-org/tiny-llama', { settings: { ...s, offline: true }, revision: 'dev' });
    expect(offline.dir).toBe(dev.dir);
  });

  it('fetches the index and only the shards it lists', async () => {
    const resolved = await resolveModel('test-org/sharded', { settings: await settings() });
    expect((await readdir(resolved.dir)).sort()).toEqual(['config.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'model.safetensors.index.json']);
    expect((await openWeights(resolved.dir)).names).toEqual(['a', 'b']);
  });

  it('says why a repo without safetensors cannot be served', async () => {
    await expect(resolveModel('test-org/bin-only', { settings: await settings() })).rejects.toThrow(/no model.safetensors .* \(only pytorch_model.bin\): Updraft loads safetensors weights only/);
  });

  it('reports refused credentials and unknown repos or revisions', async () => {
    await expect(resolveModel('test-org/tiny-llama', { settings: await settings({ token: 'hf_wrong' }) })).rejects.toThrow(/refused \(HTTP 401\): check that HF_TOKEN has access/);
    await expect(resolveModel('test-org/tiny-llama', { settings: await settings({ token: undefined }) })).rejects.toThrow(/HTTP 401\): set HF_TOKEN/);
    await expect(resolveModel('test-org/missing', { settings: await settings() })).rejects.toThrow(/test-org\/missing@main on .* was not found \(HTTP 404\)/);
    await expect(resolveModel('test-org/tiny-llama', { settings: await settings(), revision: 'nope' })).rejects.toThrow(/@nope .* not found/);
  });
});

describe('resolveModel without the Hub', () => {
  async function closedEndpoint(): Promise<string> {
    const standin = await startHubStandin([]);
    await standin.close();
    return standin.url;
  }

  it('tells how to pass a local folder when the Hub is unreachable and nothing is cached', async () => {
    const s = await settings({ endpoint: await closedEndpoint() });
    const error = await resolveModel('test-org/tiny-llama', { settings: s }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/cannot reach the Hugging Face Hub at http:\/\/127\.0\.0\.1:\d+ to download test-org\/tiny-llama \(ECONNREFUSED\)/);
    expect((error as Error).message).toMatch(/pass a local folder holding config.json/);
  });

  it('falls back to a cached snapshot when the Hub is unreachable', async () => {
    const s = await settings();
    const first = await resolveModel('test-org/tiny-llama', { settings: s });
    const messages: string[] = [];
    const resolved = await resolveModel('test-org/tiny-llama', { settings: { ...s, endpoint: await closedEndpoint() }, log: (m) => messages.push(m) });
    expect(resolved).toEqual({ ...first, source: 'cache' });
    expect(messages.join()).toMatch(/unreachable; using the cached snapshot/);
  });

  it('fails offline when the cache lacks the model, naming the cache and the local-folder option', async () => {
    const s = await settings({ offline: true });
    await expect(resolveModel('test-org/tiny-llama', { settings: s })).rejects.toThrow(/HF_HUB_OFFLINE is set and test-org\/tiny-llama@main is not in the Hugging Face cache .*pass a local folder/);
  });

  it('uses an existing folder as is and rejects paths that are neither folders nor repo ids', async () => {
    const dir = await tinyModelDir('tiny-qwen2');
    expect(await resolveModel(dir)).toEqual({ dir, source: 'local' });
    const file = join(await scratchDir('hub-file'), 'weights.safetensors');
    await writeFile(file, 'x');
    await expect(resolveModel(file)).rejects.toThrow(/is a file; pass the folder/);
    await expect(resolveModel('./no/such/folder')).rejects.toThrow(/neither an existing folder nor a Hugging Face repo id/);
    expect(isHubRepoId('meta-llama/Llama-3.2-1B')).toBe(true);
    expect(isHubRepoId('gpt2')).toBe(true);
    expect(isHubRepoId('a/b/c')).toBe(false);
    expect(isHubRepoId('org/na--me')).toBe(false);
  });
});

describe('hubSettingsFromEnv', () => {
  it('reads the variables huggingface_hub reads, in its order of precedence', () => {
    expect(hubSettingsFromEnv({ HOME: '/h' })).toMatchObject({ endpoint: 'https://huggingface.co', offline: false });
    expect(hubSettingsFromEnv({ HF_HOME: '/hf' }).cacheDir).toBe('/hf/hub');
    expect(hubSettingsFromEnv({ XDG_CACHE_HOME: '/xdg' }).cacheDir).toBe('/xdg/huggingface/hub');
    expect(hubSettingsFromEnv({ HF_HOME: '/hf', HF_HUB_CACHE: '/cache' }).cacheDir).toBe('/cache');
    const s = hubSettingsFromEnv({ HF_ENDPOINT: 'http://mirror.local/', HF_TOKEN: 'hf_x', HF_HUB_OFFLINE: '1' });
    expect(s).toMatchObject({ endpoint: 'http://mirror.local', token: 'hf_x', offline: true });
    expect(hubSettingsFromEnv({ HF_HUB_OFFLINE: '0' }).offline).toBe(false);
  });
});
