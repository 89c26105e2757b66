/**
 * `updraft serve --config FILE`: JSON or flat YAML, keys in any of the flag spellings, and the
 * precedence flag > environment variable > config file > default.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseServeArgs, serveHelp } from '../../../src/cli/args.ts';
import { configValueText, flagNameOf, parseConfigText, readConfigFile } from '../../../src/cli/config-file.ts';
import { ConfigError, defaultServeConfig } from '../../../src/config.ts';
import { scratchDir } from '../../helpers/paths.ts';

async function file(name: string, text: string): Promise<string> {
  const path = join(await scratchDir('config'), name);
  await writeFile(path, text);
  return path;
}

describe('--config', () => {
  it('reads flat YAML: flag names, comments, quoting, booleans, byte sizes, lists', async () => {
    const path = await file(
      'updraft.yaml',
      [
        '# a comment',
        'model: Qwen/Qwen2.5-0.5B-Instruct   # trailing comment',
        'port: 9001',
        'max_num_seqs: 8',
        'enablePrefixCaching: false',
        'kv-cache-memory: 2GiB',
        'served-model-name: "my model # not a comment"',
        "chat-template: '{{ it''s }}'",
        'gpu-memory-utilization: 0.5',
        'log-format: json',
        'max-model-len: null',
      ].join('\n'),
    );
    const { config } = parseServeArgs(['--config', path], {});
    expect(config).toMatchObject({
      model: 'Qwen/Qwen2.5-0.5B-Instruct',
      port: 9001,
      maxNumSeqs: 8,
      enablePrefixCaching: false,
      kvCacheMemoryBytes: 2 * 1024 ** 3,
      servedModelName: 'my model # not a comment',
      chatTemplate: "{{ it's }}",
      gpuMemoryUtilization: 0.5,
      logFormat: 'json',
      maxModelLen: null,
    });
  });

  it('reads JSON', async () => {
    const path = await file('updraft.json', JSON.stringify({ model: 'm', port: 7000, 'max-num-seqs': 4, enable_chunked_prefill: false, max_model_len: null }));
    expect(parseServeArgs(['--config', path], {}).config).toMatchObject({ model: 'm', port: 7000, maxNumSeqs: 4, enableChunkedPrefill: false, maxModelLen: null });
  });

  it('ranks flag > environment variable > config file > default', async () => {
    const path = await file('updraft.yaml', 'port: 9001\nmax-num-seqs: 8\nmax-num-batched-tokens: 1024\nhost: 0.0.0.0\n');
    const env = { UPDRAFT_PORT: '9002', UPDRAFT_MAX_NUM_SEQS: '16' };
    const { config } = parseServeArgs(['--config', path, '--port', '9003'], env);
    expect(config.port).toBe(9003); // flag over variable and file
    expect(config.maxNumSeqs).toBe(16); // variable over file
    expect(config.maxNumBatchedTokens).toBe(1024); // file over default
    expect(config.host).toBe('0.0.0.0');
    expect(config.blockSize).toBe(defaultServeConfig().blockSize); // default where nobody says
    // UPDRAFT_CONFIG names the file too; --config wins over it.
    expect(parseServeArgs([], { UPDRAFT_CONFIG: path }).config.port).toBe(9001);
    const other = await file('other.json', '{"port": 9100}');
    expect(parseServeArgs(['--config', other], { UPDRAFT_CONFIG: path }).config.port).toBe(9100);
    // The positional model still wins over the file's.
    const withModel = await file('m.yaml', 'model: from-file\n');
    expect(parseServeArgs(['from-arg', '--config', withModel], {}).config.model).toBe('from-arg');
  });

  it('refuses unknown keys (with a suggestion), duplicates, wrong types and YAML beyond flat settings', async () => {
    await expect(async () => parseServeArgs(['--config', await file('a.yaml', 'max-num-seq: 4\n')], {})).rejects.toThrow(/unknown setting "max-num-seq" \(did you mean max-num-seqs/);
    await expect(async () => parseServeArgs(['--config', await file('b.yaml', 'port: 1\nport: 2\n')], {})).rejects.toThrow(/"port" is set twice/);
    await expect(async () => parseServeArgs(['--config', await file('c.yaml', 'port: eighty\n')], {})).rejects.toThrow(/port in .*c\.yaml must be an integer, got "eighty"/);
    await expect(async () => parseServeArgs(['--config', await file('d.yaml', 'server:\n  port: 1\n')], {})).rejects.toThrow(/d\.yaml:2: expected "key: value"/);
    await expect(async () => parseServeArgs(['--config', await file('e.yaml', 'model: {a: 1}\n')], {})).rejects.toThrow(/e\.yaml:1: .* uses YAML beyond flat key: value settings/);
    await expect(async () => parseServeArgs(['--config', await file('f.json', '{"port": {"a": 1}}')], {})).rejects.toThrow(/"port" must be a string, number, boolean, null or a list/);
    await expect(async () => parseServeArgs(['--config', await file('g.json', '{"port": ')], {})).rejects.toThrow(/not valid JSON/);
    expect(() => parseServeArgs(['--config', '/no/such/updraft.yaml'], {})).toThrow(ConfigError);
    expect(() => parseServeArgs(['--config', '/no/such/updraft.yaml'], {})).toThrow(/no such file/);
  });

  it('accepts lists for list-valued settings, as [a, b] or "- item" lines', async () => {
    const entries = parseConfigText('origins: [http://a.example, "http://b.example", 3]\nkeys:\n  - k1\n  - "k2"\nempty: []\n', 'l.yaml');
    expect(entries).toEqual([
      ['origins', ['http://a.example', 'http://b.example', 3]],
      ['keys', ['k1', 'k2']],
      ['empty', []],
    ]);
    expect(configValueText(['a', 'b'])).toBe('a,b');
    expect(readConfigFile(await file('l.yaml', 'port: 1\n')).get('port')).toBe(1);
  });

  it('normalizes key spellings and documents itself in --help', () => {
    expect(flagNameOf('maxNumSeqs')).toBe('max-num-seqs');
    expect(flagNameOf('max_num_seqs')).toBe('max-num-seqs');
    expect(flagNameOf('max-num-seqs')).toBe('max-num-seqs');
    expect(serveHelp()).toContain('--config <file>');
    expect(serveHelp()).toContain('UPDRAFT_CONFIG');
  });
});
