import { describe, expect, it } from 'vitest';
import { envName, parseServeArgs, serveHelp } from '../../../src/cli/args.ts';
import { ConfigError, SERVE_FLAGS, defaultServeConfig, parseBytes } from '../../../src/config.ts';

describe('updraft serve arguments', () => {
  it('parses every documented issue-2 flag', () => {
    const { config } = parseServeArgs(
      ['--model', 'm', '--device', 'cpu', '--host', '0.0.0.0', '--port', '9000', '--served-model-name', 'x', '--max-model-len', '256', '--max-num-seqs', '4', '--max-num-batched-tokens', '512'],
      {},
    );
    expect(config).toMatchObject({ model: 'm', device: 'cpu', host: '0.0.0.0', port: 9000, servedModelName: 'x', maxModelLen: 256, maxNumSeqs: 4, maxNumBatchedTokens: 512 });
  });

  it('takes the model as a positional argument too, but not twice', () => {
    expect(parseServeArgs(['org/name'], {}).config.model).toBe('org/name');
    expect(() => parseServeArgs(['a', '--model', 'b'], {})).toThrow(ConfigError);
  });

  it('reads UPDRAFT_* variables, and flags win over them', () => {
    const env = { UPDRAFT_MODEL: 'from-env', UPDRAFT_PORT: '7000', UPDRAFT_ENABLE_PREFIX_CACHING: 'false' };
    const { config } = parseServeArgs(['--port', '7001'], env);
    expect(config.model).toBe('from-env');
    expect(config.port).toBe(7001);
    expect(config.enablePrefixCaching).toBe(false);
    expect(envName('max-num-seqs')).toBe('UPDRAFT_MAX_NUM_SEQS');
  });

  it('has --no- forms of boolean flags', () => {
    expect(parseServeArgs(['--no-enable-chunked-prefill'], {}).config.enableChunkedPrefill).toBe(false);
    expect(parseServeArgs([], {}).config.enableChunkedPrefill).toBe(true);
  });

  it('rejects bad values with the flag named', () => {
    expect(() => parseServeArgs(['--port', 'eighty'], {})).toThrow(/--port must be an integer/);
    expect(() => parseServeArgs(['--port', '70000'], {})).toThrow(/--port/);
    expect(() => parseServeArgs(['--max-num-seqs', '0'], {})).toThrow(/--max-num-seqs must be positive/);
    expect(() => parseServeArgs(['--dtype', 'int4'], {})).toThrow(/--dtype must be one of/);
    expect(() => parseServeArgs(['--bogus'], {})).toThrow(ConfigError);
    expect(() => parseServeArgs([], { UPDRAFT_PORT: 'x' })).toThrow(/UPDRAFT_PORT/);
  });

  it('parses byte sizes', () => {
    expect(parseBytes('2GiB')).toBe(2 * 1024 ** 3);
    expect(parseBytes('512MB')).toBe(512e6);
    expect(parseBytes('1000')).toBe(1000);
    expect(() => parseBytes('lots')).toThrow(ConfigError);
    expect(parseServeArgs(['--kv-cache-memory', '1.5GiB'], {}).config.kvCacheMemoryBytes).toBe(1.5 * 1024 ** 3);
  });

  it('--help documents every flag with its variable and default', () => {
    const help = serveHelp();
    for (const spec of SERVE_FLAGS) {
      expect(help).toContain(`--${spec.flag}`);
      expect(help).toContain(envName(spec.flag));
    }
    expect(help).toContain(`(default: ${defaultServeConfig().port})`);
    expect(parseServeArgs(['--help'], {}).help).toBe(true);
  });
});
