/** --enforce-eager (vLLM's flag) turns graph replay off even where the device captures graphs. */
import { describe, expect, it } from 'vitest';
import { parseServeArgs } from '../../../src/cli/args.ts';
import { useDeviceGraphs } from '../../../src/runtime.ts';

describe('useDeviceGraphs', () => {
  it('replays graphs on a device that has them, by default', () => {
    expect(useDeviceGraphs({ enforceEager: false }, true)).toBe(true);
  });
  it('never asks a device without graphs for them', () => {
    expect(useDeviceGraphs({ enforceEager: false }, false)).toBe(false);
  });
  it('runs op by op with --enforce-eager', () => {
    expect(useDeviceGraphs(parseServeArgs(['--enforce-eager'], {}).config, true)).toBe(false);
    expect(useDeviceGraphs(parseServeArgs([], {}).config, true)).toBe(true);
  });
});
