/**
 * Shapes that take the AscendC kernels' other tiling paths, which the shared conformance suite's small
 * shapes do not reach: rows longer than one UB chunk (rmsnorm's two-pass path, silu_mul and the row
 * gathers in several chunks), more heads than one UB pass of rope_kv_write holds (head groups that
 * straddle the q/k boundary), 128-token KV blocks with chunks that end inside a block, and matmuls
 * with several L1 K chunks and output tiles in both directions. Checked against the TS reference with
 * the suite's tolerances, through the same runOp path.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadNativeAddon, type NativeDevice, type OpCall } from '../../src/device/binding.ts';
import { probeBackends } from '../../src/device/device.ts';
import { decodeFloat, expectClose, f32Tensor, i32Tensor, poisoned, randomFloatTensor, Rng, tolerance } from '../device/harness.ts';
import * as ref from '../device/reference.ts';

const sim = probeBackends().find((b) => b.name === 'ascend-sim');
const skipReason = sim?.available ? null : `ascend-sim backend unavailable: ${sim?.reason ?? 'not known to this build'}`;

describe.skipIf(skipReason !== null)(`AscendC tiling paths on ascend-sim${skipReason ? ` — skipped: ${skipReason}` : ''}`, () => {
  let device: NativeDevice;
  beforeAll(() => {
    device = loadNativeAddon().openDevice('ascend-sim');
  });
  afterAll(() => device?.close());

  it('rmsnorm over rows of 9000 (three chunks, two passes), with the residual add in place', () => {
    const rng = new Rng(101);
    const [m, h] = [3, 9000];
    const x = randomFloatTensor(rng, 'bf16', [m, h], 2);
    const residual = randomFloatTensor(rng, 'bf16', [m, h], 2);
    const weight = randomFloatTensor(rng, 'f32', [h]);
    const [out, residualOut] = device.runOp({
      op: 'rmsnorm',
      params: { eps: 1e-5, add_residual: 1 },
      src: [x.tensor, residual.tensor, weight.tensor],
      dst: [poisoned('bf16', [m, h]), { dtype: 'bf16', shape: [m, h], alias: 1 }],
    });
    const expected = ref.rmsnorm({ x: x.values, residual: residual.values, weight: weight.values, eps: 1e-5, addResidual: true, xDtype: 'bf16', residualDtype: 'bf16' });
    expectClose(decodeFloat('bf16', residualOut), expected.residualOut, tolerance(['bf16']), 'residual');
    expectClose(decodeFloat('bf16', out), expected.out, tolerance(['bf16', 'f32'], h), 'rmsnorm');
  });

  it('rmsnorm without a residual over 9000-wide f32 rows', () => {
    const rng = new Rng(102);
    const [m, h] = [2, 9000];
    const x = randomFloatTensor(rng, 'f32', [m, h], 2);
    const weight = randomFloatTensor(rng, 'bf16', [h]);
    const [out] = device.runOp({ op: 'rmsnorm', params: { eps: 1e-5 }, src: [x.tensor, null, weight.tensor], dst: [poisoned('f32', [m, h])] });
    const expected = ref.rmsnorm({ x: x.values, residual: null, weight: weight.values, eps: 1e-5, addResidual: false, xDtype: 'f32', residualDtype: 'f32' });
    expectClose(decodeFloat('f32', out), expected.out, tolerance(['f32', 'bf16'], h), 'rmsnorm');
  });

  it('silu_mul and gathers over rows of several chunks', () => {
    const rng = new Rng(103);
    const inter = 5000;
    const gateUp = randomFloatTensor(rng, 'bf16', [2, 2 * inter], 2);
    const [act] = device.runOp({ op: 'silu_mul', src: [gateUp.tensor], dst: [poisoned('bf16', [2, inter])] });
    expectClose(decodeFloat('bf16', act), ref.siluMul(gateUp.values, 2, inter, 'bf16'), tolerance(['bf16']), 'silu_mul');
    const table = randomFloatTensor(rng, 'f32', [6, 9000]);
    const ids = [5, -1, 0, 9];
    const [rows] = device.runOp({ op: 'embedding', src: [table.tensor, i32Tensor([4], ids)], dst: [poisoned('bf16', [4, 9000])] });
    expectClose(decodeFloat('bf16', rows), ref.embedding(table.values, 6, 9000, Int32Array.from(ids)), tolerance(['bf16']), 'embedding');
  });

  it('rope_kv_write with more heads than one UB pass (groups straddling q and k), partial rotary', () => {
    const rng = new Rng(104);
    const [numHeads, numKvHeads, headDim, rotaryDim, tokens] = [96, 16, 64, 32, 3];
    const qkv = randomFloatTensor(rng, 'bf16', [tokens, numHeads + 2 * numKvHeads, headDim]);
    const positions = Int32Array.from([0, 17, 4000]);
    const slots = [5, -1, 2];
    const invFreq = Float32Array.from({ length: rotaryDim / 2 }, (_, i) => 1 / Math.pow(10000, (2 * i) / rotaryDim));
    const cacheShape = [2, 4, numKvHeads, headDim];
    const kCache = randomFloatTensor(rng, 'bf16', cacheShape);
    const vCache = randomFloatTensor(rng, 'bf16', cacheShape);
    const call: OpCall = {
      op: 'rope_kv_write',
      params: { num_heads: numHeads, num_kv_heads: numKvHeads, head_dim: headDim, rotary_dim: rotaryDim },
      src: [qkv.tensor, i32Tensor([tokens], positions), f32Tensor([rotaryDim / 2], invFreq), i32Tensor([tokens], slots)],
      dst: [poisoned('bf16', [tokens, numHeads, headDim]), kCache.tensor, vCache.tensor],
    };
    const [q, k, v] = device.runOp(call);
    const expectedK = Float64Array.from(kCache.values);
    const expectedV = Float64Array.from(vCache.values);
    const expectedQ = ref.ropeKvWrite({
      qkv: qkv.values, positions, invFreq, slotMapping: Int32Array.from(slots), numHeads, numKvHeads, headDim, rotaryDim, kCache: expectedK, vCache: expectedV,
    });
    const tol = tolerance(['bf16'], 2);
    expectClose(decodeFloat('bf16', q), expectedQ, tol, 'q');
    expectClose(decodeFloat('bf16', k), expectedK, tol, 'k cache');
    expectClose(decodeFloat('bf16', v), expectedV, tol, 'v cache');
  });

  it('attention over 128-token KV blocks: decode and prompt rows, chunks ending inside blocks', () => {
    const rng = new Rng(105);
    const [numHeads, numKvHeads, headDim, blockSize] = [8, 2, 128, 128];
    const seqLens = [300, 200, 130];
    const queryLens = [1, 40, 1];
    const numTokens = 44;
    const queryStartLoc = Int32Array.from([0, 1, 41, 42]);
    const maxBlocks = 4;
    const blockTables = Int32Array.from([7, 2, 5, -1, 0, 6, -1, -1, 3, 1, -1, -1]);
    const cacheShape = [8, blockSize, numKvHeads, headDim];
    const q = randomFloatTensor(rng, 'bf16', [numTokens, numHeads, headDim]);
    const kCache = randomFloatTensor(rng, 'bf16', cacheShape);
    const vCache = randomFloatTensor(rng, 'bf16', cacheShape);
    const scale = 1 / Math.sqrt(headDim);
    const [out] = device.runOp({
      op: 'attention',
      params: { scale, num_heads: numHeads, num_kv_heads: numKvHeads, head_dim: headDim, block_size: blockSize },
      src: [q.tensor, kCache.tensor, vCache.tensor, i32Tensor([3, maxBlocks], blockTables), i32Tensor([3], seqLens), i32Tensor([4], queryStartLoc)],
      dst: [poisoned('bf16', [numTokens, numHeads * headDim])],
    });
    const expected = ref.attention({
      q: q.values, kCache: kCache.values, vCache: vCache.values, blockTables, maxBlocksPerSeq: maxBlocks, seqLens: Int32Array.from(seqLens),
      queryStartLoc, numHeads, numKvHeads, headDim, blockSize, scale, out: new Float64Array(numTokens * numHeads * headDim),
    });
    const rows = decodeFloat('bf16', out);
    expect(queryLens.reduce((a, b) => a + b, 0)).toBe(42);
    // Rows 42 and 43 belong to no sequence and stay poisoned.
    expectClose(rows.subarray(0, 42 * numHeads * headDim), expected.subarray(0, 42 * numHeads * headDim), tolerance(['bf16'], headDim), 'attention');
    expect(rows.subarray(42 * numHeads * headDim).every(Number.isNaN)).toBe(true);
  });

  it('matmul with several L1 K chunks and output tiles (M 200, N 300, K 1100), bf16 and f32 operands', () => {
    const rng = new Rng(106);
    const [m, n, k] = [200, 300, 1100];
    for (const [xd, wd] of [['bf16', 'bf16'], ['f32', 'f32']] as const) {
      const x = randomFloatTensor(rng, xd, [m, k]);
      const w = randomFloatTensor(rng, wd, [n, k]);
      const [y] = device.runOp({ op: 'matmul', src: [x.tensor, w.tensor, null], dst: [poisoned('f32', [m, n])] });
      expectClose(decodeFloat('f32', y), ref.matmul(x.values, w.values, null, m, n, k), tolerance([xd, wd], k), `matmul ${xd}`);
    }
  });
});

if (skipReason !== null) it.skip(`AscendC tiling paths — ${skipReason}`, () => {});
