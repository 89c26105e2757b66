/**
 * Every other backend against the native cpu backend, op by op, on the same inputs: what the conformance
 * suite checks against the TypeScript reference, checked once more between the two native
 * implementations (each within its tolerance of the exact value, so within twice it of each other;
 * fill_random, gathers and greedy token ids exactly). Uses shapes and dtypes that models run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadNativeAddon, type NativeDevice, type OpCall } from '../../src/device/binding.ts';
import { probeBackends } from '../../src/device/device.ts';
import type { HostArray } from '../../src/device/program.ts';
import {
  betweenBackends, decodeFloat, expectClose, f32Tensor, i32Tensor, poisoned, randomFloatTensor, Rng, tolerance, type Tolerance,
} from './harness.ts';
import type { FloatDType } from './reference.ts';
import { inverseFrequencies } from './conformance/rope-kv-write.ts';

interface Case {
  name: string;
  call: OpCall;
  /** Per dst: a tolerance, 'exact', or 'skip' (not compared). */
  compare: (Tolerance | 'exact' | 'skip')[];
}

function cases(): Case[] {
  const rng = new Rng(101);
  const out: Case[] = [];
  for (const dtype of ['bf16', 'f32'] as FloatDType[]) {
    const [rows, hidden, vocab] = [7, 520, 300];
    const table = randomFloatTensor(rng, dtype, [vocab, hidden]);
    const ids = [5, 0, 299, -1, 300, 17, 17];
    out.push({
      name: `embedding ${dtype}`,
      call: { op: 'embedding', src: [table.tensor, i32Tensor([ids.length], ids)], dst: [poisoned(dtype, [ids.length, hidden])] },
      compare: ['exact'],
    });
    const x = randomFloatTensor(rng, dtype, [rows, hidden]);
    out.push({
      name: `gather_rows ${dtype}`,
      call: { op: 'gather_rows', src: [x.tensor, i32Tensor([4], [6, -1, 0, 6])], dst: [poisoned(dtype, [4, hidden])] },
      compare: ['exact'],
    });
    const gateUp = randomFloatTensor(rng, dtype, [rows, 2 * 1000], 2);
    out.push({
      name: `silu_mul ${dtype}`,
      call: { op: 'silu_mul', src: [gateUp.tensor], dst: [poisoned(dtype, [rows, 1000])] },
      compare: [betweenBackends(tolerance([dtype]))],
    });
    const residual = randomFloatTensor(rng, dtype, [rows, hidden], 2);
    const weight = randomFloatTensor(rng, dtype, [hidden]);
    out.push({
      name: `rmsnorm fused in place ${dtype}`,
      call: {
        op: 'rmsnorm', params: { eps: 1e-6, add_residual: 1 },
        src: [x.tensor, residual.tensor, weight.tensor],
        dst: [poisoned(dtype, [rows, hidden]), { dtype, shape: [rows, hidden], alias: 1 }],
      },
      compare: [betweenBackends(tolerance([dtype], hidden)), betweenBackends(tolerance([dtype]))],
    });
    out.push({
      name: `rmsnorm ${dtype}`,
      call: { op: 'rmsnorm', params: { eps: 1e-5, add_residual: 0 }, src: [x.tensor, null, weight.tensor], dst: [poisoned(dtype, [rows, hidden]), null] },
      compare: [betweenBackends(tolerance([dtype], hidden))],
    });
    const [numHeads, numKvHeads, headDim, rotaryDim, numBlocks, blockSize] = [8, 2, 64, 64, 6, 16];
    const qkv = randomFloatTensor(rng, dtype, [rows, numHeads + 2 * numKvHeads, headDim]);
    const cacheShape = [numBlocks, blockSize, numKvHeads, headDim];
    const slots = [3, 17, -1, 40, 95, 64, 0];
    out.push({
      name: `rope_kv_write ${dtype}`,
      call: {
        op: 'rope_kv_write',
        params: { num_heads: numHeads, num_kv_heads: numKvHeads, head_dim: headDim, rotary_dim: rotaryDim },
        src: [qkv.tensor, i32Tensor([rows], [0, 1, 7, 100, 4000, 32000, 131000]), f32Tensor([rotaryDim / 2], inverseFrequencies(rotaryDim, 500000)),
          i32Tensor([rows], slots)],
        dst: [poisoned(dtype, [rows, numHeads, headDim]), randomFloatTensor(rng, dtype, cacheShape).tensor, randomFloatTensor(rng, dtype, cacheShape).tensor],
      },
      compare: [betweenBackends(tolerance([dtype], 2)), betweenBackends(tolerance([dtype], 2)), betweenBackends(tolerance([dtype], 2))],
    });
    for (const [m, k, n] of [[1, 2048, 300], [33, 520, 257]] as [number, number, number][]) {
      const xm = randomFloatTensor(rng, dtype, [m, k]);
      const w = randomFloatTensor(rng, dtype, [n, k], 0.05);
      const bias = randomFloatTensor(rng, dtype, [n]);
      for (const yDtype of [dtype, 'f32'] as FloatDType[]) {
        out.push({
          name: `matmul [${m}, ${k}] x [${n}, ${k}] ${dtype} -> ${yDtype}`,
          call: { op: 'matmul', src: [xm.tensor, w.tensor, m > 1 ? bias.tensor : null], dst: [poisoned(yDtype, [m, n])] },
          compare: [betweenBackends(tolerance([dtype, yDtype], k))],
        });
      }
    }
    // Attention: a decode row, a prompt chunk after cached positions, an idle sequence, padding.
    const seqLens = [300, 40, 0];
    const queryStartLoc = [0, 1, 21, 22];
    const numTokens = 24;
    const blocksPerSeq = 20;
    const blockTables = new Int32Array(3 * blocksPerSeq).fill(-1);
    const order = rng.shuffle(Array.from({ length: 30 }, (_, i) => i));
    for (let b = 0; b < 19; b++) blockTables[b] = order.pop()!;
    for (let b = 0; b < 3; b++) blockTables[blocksPerSeq + b] = order.pop()!;
    const attnCache = [30, blockSize, numKvHeads, headDim];
    out.push({
      name: `attention ${dtype}`,
      call: {
        op: 'attention',
        params: { scale: 0.125, num_heads: numHeads, num_kv_heads: numKvHeads, head_dim: headDim, block_size: blockSize },
        src: [
          randomFloatTensor(rng, dtype, [numTokens, numHeads, headDim]).tensor,
          randomFloatTensor(rng, dtype, attnCache).tensor, randomFloatTensor(rng, dtype, attnCache).tensor,
          i32Tensor([3, blocksPerSeq], blockTables), i32Tensor([3], seqLens), i32Tensor([4], queryStartLoc),
        ],
        dst: [poisoned(dtype, [numTokens, numHeads * headDim])],
      },
      compare: [betweenBackends(tolerance([dtype], headDim))],
    });
  }
  // Sampling: greedy rows compare exactly; logprobs and top-k logprobs closely. (Seeded draws are
  // checked against the reference in the conformance suite, where boundary cases are known.)
  const vocab = 5000;
  const s = 4;
  const logits = Float32Array.from(rng.normals(s * vocab, 3));
  logits[2 * vocab + 10] = logits[2 * vocab + 4000] = 50; // a tie: the lower id wins
  out.push({
    name: 'sample greedy',
    call: {
      op: 'sample',
      params: { num_top_logprobs: 5 },
      src: [
        { dtype: 'f32', shape: [s, vocab], data: logits }, f32Tensor([s], [0, 0, 0, 0]), i32Tensor([s], [0, 5, 0, 1]),
        f32Tensor([s], [1, 0.9, 1, 1]), f32Tensor([s], [0, 0, 0.1, 0]),
        { dtype: 'u64', shape: [s], data: BigUint64Array.from([1n, 2n, 3n, 4n]) }, i32Tensor([s], [0, 1, 2, 3]),
      ],
      dst: [poisoned('i32', [s]), poisoned('f32', [s]), poisoned('i32', [s, 5]), poisoned('f32', [s, 5])],
    },
    compare: ['exact', { rtol: 1e-5, atol: 1e-5 }, 'exact', { rtol: 1e-5, atol: 1e-5 }],
  });
  for (const dtype of ['f32', 'bf16', 'f16'] as FloatDType[]) {
    out.push({
      name: `fill_random ${dtype}`,
      call: { op: 'fill_random', params: { seed: 987654321, std: 0.02 }, src: [], dst: [poisoned(dtype, [1000, 37])] },
      compare: ['exact'],
    });
  }
  return out;
}

function values(dtype: string, data: HostArray | null | undefined): ArrayLike<number> {
  if (!data) throw new Error('missing output');
  if (dtype === 'i32') return data as Int32Array;
  return decodeFloat(dtype as FloatDType, data);
}

const others = probeBackends().filter((b) => b.name !== 'cpu');

for (const backend of others) {
  describe(`${backend.name} against the native cpu backend`, () => {
    if (!backend.available) {
      it.skip(`skipped: ${backend.reason ?? 'unavailable'}`, () => {});
      return;
    }
    let cpu: NativeDevice;
    let device: NativeDevice;
    beforeAll(() => {
      cpu = loadNativeAddon().openDevice('cpu');
      device = loadNativeAddon().openDevice(backend.name);
    });
    afterAll(() => {
      cpu?.close();
      device?.close();
    });

    it.for(cases())('$name', (c, ctx) => {
      if (!device.supportsOp(c.call)) return ctx.skip();
      const expected = cpu.runOp(c.call);
      const actual = device.runOp(c.call);
      c.compare.forEach((how, d) => {
        const dst = c.call.dst[d];
        if (how === 'skip' || !dst) return;
        const label = `${c.name} dst${d}`;
        const a = values(dst.dtype, actual[d]);
        const e = values(dst.dtype, expected[d]);
        if (how === 'exact') {
          expect(Array.from(a), label).toEqual(Array.from(e));
          return;
        }
        // Rows an op must leave alone (attention's idle and padding rows) keep the NaN poison on both.
        const nanA = Array.from(a, Number.isNaN);
        expect(nanA, `${label}: the same elements are left unwritten`).toEqual(Array.from(e, Number.isNaN));
        const written = (x: ArrayLike<number>) => Array.from(x).filter((_, i) => !nanA[i]);
        expectClose(written(a), written(e), how, label);
      });
    });
  });
}

if (others.length === 0) {
  describe('other backends against the native cpu backend', () => {
    it.skip('skipped: this build has no backend besides cpu', () => {});
  });
}
