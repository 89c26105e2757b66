/**
 * The executor of a tensor-parallel group (native/src/sharded_program.cc) on the CPU backend: a rank
 * that fails mid-step must not leave the others waiting in a collective (the group is aborted, the
 * step rejects with that rank's error, later steps fail at once), and requests that fail the checks
 * fail before any rank starts, leaving the group usable.
 */
import { describe, expect, it } from 'vitest';
import { loadNativeAddon } from '../../src/device/binding.ts';
import type { ProgramSpec } from '../../src/device/program.ts';

const N = 8;

/** embedding of the rank's row, then all_reduce; `fail` adds a select_tokens with a bad source before it. */
function rankSpec(rank: number, fail: boolean): ProgramSpec {
  const spec: ProgramSpec = {
    dims: {},
    tensors: [
      { name: 'table', dtype: 'f32', shape: [1, N], role: 'weight', init: { kind: 'data', data: new Float32Array(N).fill(rank + 1) } },
      { name: 'ids', dtype: 'i32', shape: [1], role: 'input' },
      { name: 'y', dtype: 'f32', shape: [1, N], role: 'output' },
    ],
    ops: [
      { op: 'embedding', src: ['table', 'ids'], dst: ['y'] },
      { op: 'all_reduce', src: [], dst: ['y'] },
    ],
  };
  if (fail) {
    spec.tensors.push(
      { name: 'sources', dtype: 'i32', shape: [1], role: 'weight', init: { kind: 'data', data: Int32Array.of(5) } },
      { name: 'samples', dtype: 'i32', shape: [2], role: 'weight', init: { kind: 'data', data: Int32Array.of(0, 0) } },
      { name: 'picked', dtype: 'i32', shape: [1], role: 'activation' },
    );
    spec.ops.unshift({ op: 'select_tokens', src: ['ids', 'sources', 'samples'], dst: ['picked'] });
  }
  return spec;
}

describe('sharded program on the cpu backend', () => {
  it('sums the ranks, and keeps working after a request that fails the checks', async () => {
    const group = loadNativeAddon().openDeviceGroup('cpu', { size: 3, numThreads: 1 });
    const program = await group.createProgram([0, 1, 2].map((r) => rankSpec(r, false)));
    try {
      await expect(program.step({ dims: {}, inputs: {} })).rejects.toThrow(/input 'ids' is missing/);
      const out = await program.step({ dims: {}, inputs: { ids: Int32Array.of(0) } });
      expect([...(out['y'] as Float32Array)]).toEqual(new Array(N).fill(1 + 2 + 3));
      expect(program.memoryUsage().weight).toBe(3 * N * 4);
    } finally {
      program.dispose();
      group.close();
    }
  });

  it("a rank failing before a collective releases the others and reports that rank's error; the group stays broken", async () => {
    const group = loadNativeAddon().openDeviceGroup('cpu', { size: 2, numThreads: 1 });
    const program = await group.createProgram([rankSpec(0, false), rankSpec(1, true)]);
    try {
      await expect(program.step({ dims: {}, inputs: { ids: Int32Array.of(0) } })).rejects.toThrow(/^rank 1: op 0 \(select_tokens\)/);
      await expect(program.step({ dims: {}, inputs: { ids: Int32Array.of(0) } })).rejects.toThrow(/group is broken since an earlier step failed \(rank 1:/);
    } finally {
      program.dispose();
      group.close();
    }
  });

  it('names the rank whose program does not build, and refuses a spec count that does not match the ranks', async () => {
    const group = loadNativeAddon().openDeviceGroup('cpu', { size: 2, numThreads: 1 });
    try {
      const bad = rankSpec(1, false);
      bad.ops.push({ op: 'all_reduce', src: [], dst: ['ids'] });
      await expect(group.createProgram([rankSpec(0, false), bad])).rejects.toThrow(/^rank 1: op 2 \(all_reduce\): dst0 'ids' is a input/);
      await expect(group.createProgram([rankSpec(0, false)])).rejects.toThrow(/1 specs for 2 ranks/);
      expect(group.info().map((d) => d.backend)).toEqual(['cpu', 'cpu']);
    } finally {
      group.close();
    }
  });
});
