/**
 * all_reduce (kernels/ops.h UD_OP_ALL_REDUCE): the sum over the ranks of a tensor-parallel group, run
 * by the group's communicator rather than a kernel. Each rank's program copies its own weight row into
 * an output (embedding) and all-reduces it; rank 0's output must be the rank-ordered f32 sum rounded
 * once to the dtype — exactly, for the host communicator (device_abi.h ud_host_comms_open).
 * The backend's own communicator (cuda: NCCL) runs where this machine has a device per rank.
 */
import { describe, expect, it } from 'vitest';
import { loadNativeAddon } from '../../../src/device/binding.ts';
import type { NativeDevice, NativeDeviceGroupOptions } from '../../../src/device/binding.ts';
import type { ProgramSpec } from '../../../src/device/program.ts';
import * as ref from '../reference.ts';
import type { FloatDType } from '../reference.ts';

const N = 1000; // not a multiple of 2 or 3: the ranks' chunks of the sum are uneven

/** Rank r's values: distinct per rank and element, with magnitudes that make the order of the sum matter. */
function rankValues(rank: number, n = N): number[] {
  return Array.from({ length: n }, (_, i) => ((((i * 7919 + rank * 104729) % 2003) - 1001) / 97) * (i % 5 === 0 ? 1e4 : 1));
}

function rankSpec(dtype: FloatDType, rank: number, n = N): ProgramSpec {
  return {
    dims: {},
    tensors: [
      { name: 'table', dtype, shape: [1, n], role: 'weight', init: { kind: 'data', data: Float32Array.from(rankValues(rank, n)) } },
      { name: 'ids', dtype: 'i32', shape: [1], role: 'input' },
      { name: 'y', dtype, shape: [1, n], role: 'output' },
    ],
    ops: [
      { op: 'embedding', src: ['table', 'ids'], dst: ['y'] },
      { op: 'all_reduce', src: [], dst: ['y'] },
    ],
  };
}

/** The rank-ordered f32 sum of what each rank holds (its values rounded to dtype), rounded to dtype. */
function expectedSum(dtype: FloatDType, world: number, n = N): number[] {
  const held = Array.from({ length: world }, (_, r) => rankValues(r, n).map((v) => ref.roundTo(dtype, v)));
  return Array.from({ length: n }, (_, i) => {
    let sum = held[0]![i]!;
    for (let r = 1; r < world; r++) sum = Math.fround(sum + held[r]![i]!);
    return ref.roundTo(dtype, sum);
  });
}

/** Rank 0's output of each of `steps` steps of one program (the same inputs every step). */
async function reduceOverGroup(backend: string, dtype: FloatDType, options: NativeDeviceGroupOptions, n = N, steps = 1): Promise<number[][]> {
  const group = loadNativeAddon().openDeviceGroup(backend, options);
  try {
    const program = await group.createProgram(Array.from({ length: options.size }, (_, r) => rankSpec(dtype, r, n)));
    try {
      const outputs = [];
      for (let step = 0; step < steps; step++) {
        const out = await program.step({ dims: {}, inputs: { ids: Int32Array.of(0) } });
        outputs.push([...ref.decode(dtype, out['y']!)]);
      }
      return outputs;
    } finally {
      program.dispose();
    }
  } finally {
    group.close();
  }
}

/** Devices of the backend that open here, up to `upTo`. */
function deviceCount(backend: string, upTo: number): number {
  for (let index = 0; index < upTo; index++) {
    try {
      loadNativeAddon().openDevice(backend, { deviceIndex: index }).close();
    } catch {
      return index;
    }
  }
  return upTo;
}

export function defineAllReduceTests(backend: string, getDevice: () => NativeDevice): void {
  describe('all_reduce', () => {
    it('is not a kernel: the backend reports it unsupported', () => {
      expect(getDevice().supportsOp({ op: 'all_reduce', src: [], dst: [{ dtype: 'f32', shape: [4] }] })).toBe(false);
    });

    it('is a no-op in a program of one rank', async () => {
      const program = await getDevice().createProgram(rankSpec('f32', 3));
      try {
        const out = await program.step({ dims: {}, inputs: { ids: Int32Array.of(0) } });
        expect([...ref.decode('f32', out['y']!)]).toEqual(rankValues(3).map(Math.fround));
      } finally {
        program.dispose();
      }
    });

    for (const dtype of ref.FLOAT_DTYPES) {
      for (const world of [2, 3]) {
        it(`host communicator, ${world} ranks, ${dtype}: the rank-ordered f32 sum, rounded once`, async () => {
          const [got] = await reduceOverGroup(backend, dtype, { size: world, communicator: 'host', deviceIndices: Array(world).fill(0), numThreads: 1 });
          expect(got).toEqual(expectedSum(dtype, world));
        });
      }
    }

    it("the backend's own communicator, 2 ranks", async (context) => {
      if (backend === 'ascend') {
        // The HCCL seam: refused with a reason, never a silent fallback.
        await expect(reduceOverGroup(backend, 'f32', { size: 2 })).rejects.toThrow(/HCCL collectives, which are not implemented/);
        return;
      }
      if (deviceCount(backend, 2) < 2) {
        context.skip(`needs 2 ${backend} devices (NCCL wants one per rank); this machine has fewer`);
        return;
      }
      // Sizes NCCL treats differently (a few KB, odd bytes, 280–560 KB), three steps each on one group.
      for (const n of [N, N + 1, 140_000]) {
        const want = new Map(ref.FLOAT_DTYPES.map((dtype) => [dtype, expectedSum(dtype, 2, n)]));
        for (const dtype of ref.FLOAT_DTYPES) {
          const outputs = await reduceOverGroup(backend, dtype, { size: 2, numThreads: 1 }, n, 3);
          // Two ranks: one addition, the same rounding whatever the algorithm.
          outputs.forEach((got, step) => expect(got, `${dtype}, n = ${n}, step ${step}`).toEqual(want.get(dtype)));
        }
      }
    });
  });
}
