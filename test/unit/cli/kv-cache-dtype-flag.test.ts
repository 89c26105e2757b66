/**
 * --kv-cache-dtype as vLLM spells it: auto (the default), fp8 and fp8_e4m3; the same from the
 * environment variable and a --config file; anything else is refused with the choices listed.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseServeArgs, serveHelp } from '../../../src/cli/args.ts';
import { ConfigError, defaultServeConfig } from '../../../src/config.ts';
import { scratchDir } from '../../helpers/paths.ts';

describe('--kv-cache-dtype', () => {
  it('defaults to auto', () => {
    expect(defaultServeConfig().kvCacheDtype).toBe('auto');
    expect(parseServeArgs([], {}).config.kvCacheDtype).toBe('auto');
  });

  it('accepts auto, fp8 and fp8_e4m3', () => {
    for (const value of ['auto', 'fp8', 'fp8_e4m3']) {
      expect(parseServeArgs(['--kv-cache-dtype', value], {}).config.kvCacheDtype).toBe(value);
    }
  });

  it('reads UPDRAFT_KV_CACHE_DTYPE and a --config file, the flag winning over both', async () => {
    expect(parseServeArgs([], { UPDRAFT_KV_CACHE_DTYPE: 'fp8' }).config.kvCacheDtype).toBe('fp8');
    expect(parseServeArgs(['--kv-cache-dtype', 'auto'], { UPDRAFT_KV_CACHE_DTYPE: 'fp8' }).config.kvCacheDtype).toBe('auto');
    const path = join(await scratchDir('kv-dtype'), 'updraft.yaml');
    await writeFile(path, 'kv_cache_dtype: fp8_e4m3\n');
    expect(parseServeArgs(['--config', path], {}).config.kvCacheDtype).toBe('fp8_e4m3');
  });

  it('refuses other values, listing the choices', () => {
    // vLLM's other spellings (fp8_e5m2, fp8_inc, ...) are formats no kernel here stores.
    for (const value of ['fp8_e5m2', 'bf16', 'FP8', '']) {
      const parse = () => parseServeArgs(['--kv-cache-dtype', value], {});
      expect(parse).toThrow(ConfigError);
      expect(parse).toThrow(`--kv-cache-dtype must be one of auto, fp8, fp8_e4m3; got "${value}"`);
    }
    expect(() => parseServeArgs([], { UPDRAFT_KV_CACHE_DTYPE: 'int8' })).toThrow(/UPDRAFT_KV_CACHE_DTYPE must be one of auto, fp8, fp8_e4m3/);
  });

  it('is in --help with its choices and variable', () => {
    expect(serveHelp()).toMatch(/--kv-cache-dtype <auto\|fp8\|fp8_e4m3>\n .*FP8 E4M3.*\(default: auto\)\s+\[UPDRAFT_KV_CACHE_DTYPE\]/);
  });
});
