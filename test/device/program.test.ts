/**
 * The executor through the addon: createProgram / step / dispose on every available backend,
 * checked against the reference; weight loading and dtype conversion; state that persists across
 * steps; errors that reject with clear messages and leave the device usable; and a step that
 * leaves the event loop free.
 */
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadNativeAddon, type NativeDevice, type NativeProgram } from '../../src/device/binding.ts';
import type { ProgramSpec, StepRequest } from '../../src/device/program.ts';
import { describeEachBackend } from './backends.ts';
import { asFloat32, asInt32, expectClose, Rng, tolerance } from './harness.ts';
import { CONVERSION_ROWS, conversionProgram, KV, kvProgram, tempDir, TINY, tinyModel } from './program-fixtures.ts';
import * as ref from './reference.ts';

function f32(values: number[]): Float32Array {
  return Float32Array.from(values);
}

/** The executor's record of graph steps (native Program.graphStats(); diagnostics, not in NativeProgram). */
interface GraphStats {
  enabled: boolean;
  captured: number;
  replayed: number;
  eager: number;
  error: string | null;
}
function graphStats(program: NativeProgram): GraphStats {
  return (program as unknown as { graphStats(): GraphStats }).graphStats();
}

describeEachBackend('program executor', (backend) => {
  let device: NativeDevice;
  let dir: string;
  beforeAll(() => {
    device = loadNativeAddon().openDevice(backend);
    dir = tempDir();
  });
  afterAll(() => {
    device.close();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('tiny model: embedding -> rmsnorm -> gather_rows -> matmul -> sample', () => {
    let program: NativeProgram;
    let model: ReturnType<typeof tinyModel>;
    beforeAll(async () => {
      model = tinyModel(dir);
      program = await device.createProgram(model.spec);
    });
    afterAll(() => program.dispose());

    /** The expected outputs of one step, from the reference. */
    function predict(inputIds: number[], logitsIndices: number[], rows: { temperature: number; seed: bigint; counter: number }[], numTop: number) {
      const { vocab, hidden } = TINY;
      const embedded = ref.embedding(model.embed, vocab, hidden, Int32Array.from(inputIds));
      const normed = ref.rmsnorm({ x: embedded, residual: null, weight: model.normWeight, eps: TINY.eps, addResidual: false, xDtype: 'f32', residualDtype: 'f32' }).out;
      const last = ref.gatherRows(normed, inputIds.length, hidden, Int32Array.from(logitsIndices));
      const logits = Float32Array.from(ref.matmul(last, model.lmHead, null, logitsIndices.length, vocab, hidden));
      const samples = rows.map((r, s) =>
        ref.sampleRow({ logits: logits.subarray(s * vocab, (s + 1) * vocab), ...r, topK: 0, topP: 1, minP: 0, numTopLogprobs: numTop }),
      );
      return { logits, samples };
    }

    function request(inputIds: number[], logitsIndices: number[], rows: { temperature: number; seed: bigint; counter: number }[], numTop: number): StepRequest {
      const n = rows.length;
      return {
        dims: { numTokens: inputIds.length, numSeqs: n, numTopLogprobs: numTop },
        inputs: {
          input_ids: Int32Array.from(inputIds),
          logits_indices: Int32Array.from(logitsIndices),
          temperature: Float32Array.from(rows, (r) => r.temperature),
          top_k: new Int32Array(n),
          top_p: new Float32Array(n).fill(1),
          min_p: new Float32Array(n),
          seeds: BigUint64Array.from(rows, (r) => r.seed),
          sample_counters: Int32Array.from(rows, (r) => r.counter),
        },
      };
    }

    it('matches the reference for steps of different sizes', async () => {
      const steps = [
        { ids: [3, 17, 39, 0, 22], last: [2, 4], rows: [{ temperature: 0, seed: 1n, counter: 0 }, { temperature: 0.9, seed: 1234567890123n, counter: 4 }], numTop: 2 },
        { ids: [5, 6, 7, 8, 9, 10, 11, 12], last: [0, 7, 3], rows: [{ temperature: 0, seed: 0n, counter: 0 }, { temperature: 0, seed: 0n, counter: 0 }, { temperature: 1.1, seed: 42n, counter: 9 }], numTop: 0 },
        { ids: [1], last: [0], rows: [{ temperature: 0, seed: 0n, counter: 0 }], numTop: 1 },
      ];
      for (const step of steps) {
        const out = await program.step(request(step.ids, step.last, step.rows, step.numTop));
        const expected = predict(step.ids, step.last, step.rows, step.numTop);
        expect(Object.keys(out).sort()).toEqual(['logits', 'sampled_ids', 'sampled_logprobs', 'top_ids', 'top_logprobs']);
        expectClose(asFloat32(out['logits']), expected.logits, tolerance(['bf16'], TINY.hidden), `logits (${step.ids.length} tokens)`);
        const ids = asInt32(out['sampled_ids']);
        expect(ids.length).toBe(step.rows.length);
        expected.samples.forEach((s, i) => {
          if (!s.ambiguous) expect(ids[i], `sampled id of row ${i}`).toBe(s.token);
        });
        expect(asInt32(out['top_ids']).length).toBe(step.rows.length * step.numTop);
        expect(Array.from(asInt32(out['top_ids']))).toEqual(expected.samples.flatMap((s) => s.topIds));
        expectClose(asFloat32(out['sampled_logprobs']), expected.samples.map((s) => s.logprob), { rtol: 1e-4, atol: 1e-4 }, 'logprobs');
      }
    });

    it('gives the same results for steps that ask for graphs (warm-up, capture, replays) as for eager steps', async () => {
      const rng = new Rng(72);
      const numTop = 2;
      const rows = [{ temperature: 0, seed: 5n, counter: 0 }, { temperature: 0.8, seed: 99n, counter: 3 }, { temperature: 0, seed: 0n, counter: 0 }];
      const before = graphStats(program);
      for (let i = 0; i < 5; i++) {
        // The same dims every time, new inputs: the 1st graph step warms up, the 2nd captures, the rest replay.
        const ids = Array.from({ length: 6 }, () => rng.int(0, TINY.vocab));
        const req = request(ids, [1, 3, 5], rows.map((r) => ({ ...r, counter: r.counter + i })), numTop);
        const viaGraph = await program.step({ ...req, graph: true });
        const eager = await program.step(req);
        for (const name of ['sampled_ids', 'top_ids']) expect(Array.from(asInt32(viaGraph[name])), `${name}, graph step ${i}`).toEqual(Array.from(asInt32(eager[name])));
        for (const name of ['logits', 'sampled_logprobs', 'top_logprobs']) {
          expectClose(asFloat32(viaGraph[name]), asFloat32(eager[name]), { rtol: 1e-6, atol: 1e-6 }, `${name}, graph step ${i}`);
        }
        const expected = predict(ids, [1, 3, 5], rows.map((r) => ({ ...r, counter: r.counter + i })), numTop);
        expectClose(asFloat32(viaGraph['logits']), expected.logits, tolerance(['bf16'], TINY.hidden), `logits, graph step ${i}`);
      }
      // Other dims in between: a warm-up of their own, and the first graph keeps replaying.
      await program.step({ ...request([1, 2], [1], [rows[0]!], 0), graph: true });
      await program.step({ ...request(Array.from({ length: 6 }, () => 1), [1, 3, 5], rows, numTop), graph: true });
      const after = graphStats(program);
      if (device.info().supportsGraphs) {
        expect(after.error, 'graph capture failed').toBeNull();
        expect(after.enabled).toBe(true);
        expect(after.captured - before.captured).toBe(1);
        expect(after.replayed - before.replayed).toBe(5);
        expect(after.eager - before.eager).toBe(2);
      } else {
        expect(after.enabled).toBe(false);
        expect(after.eager - before.eager).toBe(7);
      }
    });

    it('reports device memory by role', () => {
      const usage = program.memoryUsage();
      const { vocab, hidden } = TINY;
      expect(usage.weight).toBe(vocab * hidden * 4 + hidden * 4 + vocab * hidden * 2);
      expect(usage.state).toBe(0);
      expect(usage.activation).toBe((8 * hidden * 2 + 3 * hidden) * 4);
      expect(usage.input).toBe(8 * 4 + 3 * (4 * 6 + 8));
      expect(usage.output).toBe(3 * vocab * 4 + 3 * 4 * 2 + 3 * 2 * 4 * 2);
      expect(usage.total).toBe(usage.weight + usage.state + usage.activation + usage.input + usage.output);
    });

    it('rejects bad steps with a clear message and keeps working', async () => {
      const good = request([1, 2], [1], [{ temperature: 0, seed: 0n, counter: 0 }], 0);
      const bad: [StepRequest, RegExp][] = [
        [{ ...good, dims: { ...good.dims, numTokens: 9 } }, /dim 'numTokens' = 9 is outside \[0, 8\]/],
        [{ ...good, dims: { numTokens: 2, numSeqs: 1 } }, /dim 'numTopLogprobs' is missing/],
        [{ ...good, dims: { ...good.dims, numBlocks: 1 } }, /unknown dim 'numBlocks'/],
        [{ ...good, inputs: { ...good.inputs, input_ids: Int32Array.from([1, 2, 3]) } }, /input 'input_ids' has 3 elements, expected 2/],
        [{ ...good, inputs: { ...good.inputs, input_idz: Int32Array.from([1, 2]) } }, /unknown input tensor 'input_idz'/],
        [{ ...good, inputs: { ...good.inputs, hidden: new Float32Array(32) } }, /'hidden' is a activation, not an input/],
        [{ ...good, inputs: { ...good.inputs, temperature: Int32Array.from([0]) } }, /'temperature' \(f32\) must be a Float32Array/],
        [{ ...good, inputs: Object.fromEntries(Object.entries(good.inputs).filter(([k]) => k !== 'seeds')) }, /input 'seeds' is missing/],
      ];
      for (const [req, message] of bad) await expect(program.step(req)).rejects.toThrow(message);
      await expect(program.step(null as unknown as StepRequest)).rejects.toThrow(/must be an object/);
      const out = await program.step(good);
      expect(asInt32(out['sampled_ids']).length).toBe(1);
    });
  });

  it('loads file segments with dtype conversion, inline data and random init exactly', async () => {
    const { spec, cases } = conversionProgram(dir);
    const program = await device.createProgram(spec);
    try {
      const out = await program.step({ dims: { numRows: CONVERSION_ROWS }, inputs: { rows: Int32Array.from([0, 1, 2, 3]) } });
      for (const c of cases) expect(Array.from(asFloat32(out[`out_${c.name}`])), c.name).toEqual(Array.from(c.expected));
      const forward = Array.from(asFloat32(out['out_w_f32_to_f32']));
      const cols = forward.length / CONVERSION_ROWS;
      const reversed = Array.from(asFloat32(out['out_reversed']));
      expect(reversed.slice(0, cols)).toEqual(forward.slice(3 * cols));
      // Fewer rows than the maximum: outputs shrink with the dims.
      const two = await program.step({ dims: { numRows: 2 }, inputs: { rows: Int32Array.from([3, 0]) } });
      expect(asFloat32(two['out_w_f32_to_f32']).length).toBe(2 * cols);
    } finally {
      program.dispose();
    }
  });

  describe('KV cache state across steps', () => {
    const { numHeads, numKvHeads, headDim, blockSize, numBlocks } = KV;
    const tables = [4, 1, -1, 2, -1, -1]; // seq 0: blocks 4, 1; seq 1: block 2
    const slotOf = (seq: number, position: number): number => tables[seq * 3 + Math.floor(position / blockSize)]! * blockSize + (position % blockSize);
    // Step 1: seq 0 prefills positions 0..4; seq 1 computes position 1 only, so it also reads
    // position 0, which nobody wrote: zeroed state. Step 2: one decode token each.
    // Tokens are [sequence, position]; sequence -1 is a padding row (slot -1).
    type Plan = { tokens: number[][]; seqLens: number[]; queryStartLoc: number[] }[];
    const plan: Plan = [
      { tokens: [[0, 0], [0, 1], [0, 2], [0, 3], [0, 4], [1, 1]], seqLens: [5, 2], queryStartLoc: [0, 5, 6] },
      { tokens: [[0, 5], [1, 2]], seqLens: [6, 3], queryStartLoc: [0, 1, 2] },
    ];
    const qkvsFor = (steps: Plan, rng: Rng) =>
      steps.map((p) => Float32Array.from(rng.normals(p.tokens.length * (numHeads + 2 * numKvHeads) * headDim)));
    const qkvs = qkvsFor(plan, new Rng(81));

    function stepRequest(i: number, steps = plan, qkvList = qkvs): StepRequest {
      const p = steps[i]!;
      return {
        dims: { numTokens: p.tokens.length, numSeqs: 2, maxBlocksPerSeq: 3 },
        inputs: {
          qkv: qkvList[i]!,
          positions: Int32Array.from(p.tokens, ([seq, pos]) => (seq! < 0 ? 0 : pos!)),
          slot_mapping: Int32Array.from(p.tokens, ([seq, pos]) => (seq! < 0 ? -1 : slotOf(seq!, pos!))),
          block_tables: Int32Array.from(tables),
          seq_lens: Int32Array.from(p.seqLens),
          query_start_loc: Int32Array.from(p.queryStartLoc),
        },
      };
    }

    function expectedOutputs(steps = plan, qkvList = qkvs): Float64Array[] {
      const cacheSize = numBlocks * blockSize * numKvHeads * headDim;
      const kCache = new Float64Array(cacheSize);
      const vCache = new Float64Array(cacheSize);
      return steps.map((p, i) => {
        const req = stepRequest(i, steps, qkvList).inputs;
        const q = ref.ropeKvWrite({
          qkv: Float64Array.from(qkvList[i]!), positions: req['positions'] as Int32Array, invFreq: Float32Array.from({ length: headDim / 2 }, (_, j) => 1 / Math.pow(10000, (2 * j) / headDim)),
          slotMapping: req['slot_mapping'] as Int32Array, numHeads, numKvHeads, headDim, rotaryDim: headDim, kCache, vCache,
        });
        return ref.attention({
          q, kCache, vCache, blockTables: Int32Array.from(tables), maxBlocksPerSeq: 3, seqLens: Int32Array.from(p.seqLens),
          queryStartLoc: Int32Array.from(p.queryStartLoc), numHeads, numKvHeads, headDim, blockSize,
          scale: 1 / Math.sqrt(headDim), out: new Float64Array(p.tokens.length * numHeads * headDim),
        });
      });
    }

    it('persists the cache between steps and starts it zeroed', async () => {
      const program = await device.createProgram(kvProgram());
      try {
        const expected = expectedOutputs();
        expect(program.memoryUsage().state).toBe(2 * numBlocks * blockSize * numKvHeads * headDim * 4);
        for (let i = 0; i < plan.length; i++) {
          const out = await program.step(stepRequest(i));
          expectClose(asFloat32(out['attn_out']), expected[i]!, tolerance(['f32'], 8), `step ${i}`);
        }
      } finally {
        program.dispose();
      }
    });

    it('replays captured decode steps with new inputs against the persistent cache (graph: true)', async () => {
      // A prompt step, then three decode steps of the same dims: warm-up, capture, replay. The last one
      // has a padding row (slot -1, an idle sequence), as padded graph buckets do.
      const graphPlan: Plan = [
        plan[0]!,
        { tokens: [[0, 5], [1, 2]], seqLens: [6, 3], queryStartLoc: [0, 1, 2] },
        { tokens: [[0, 6], [1, 3]], seqLens: [7, 4], queryStartLoc: [0, 1, 2] },
        { tokens: [[0, 7], [-1, 0]], seqLens: [8, 0], queryStartLoc: [0, 1, 2] },
      ];
      const graphQkvs = qkvsFor(graphPlan, new Rng(82));
      const program = await device.createProgram(kvProgram());
      try {
        const expected = expectedOutputs(graphPlan, graphQkvs);
        const rowLen = numHeads * headDim;
        for (let i = 0; i < graphPlan.length; i++) {
          const out = asFloat32((await program.step({ ...stepRequest(i, graphPlan, graphQkvs), graph: i > 0 }))['attn_out']);
          // Rows of an idle sequence are left as they were: compare the active ones.
          const active = graphPlan[i]!.tokens.filter(([seq]) => seq! >= 0).length;
          expectClose(out.subarray(0, active * rowLen), expected[i]!.subarray(0, active * rowLen), tolerance(['f32'], 8), `graph step ${i}`);
        }
        const stats = graphStats(program);
        if (device.info().supportsGraphs) expect(stats).toMatchObject({ enabled: true, captured: 1, replayed: 2, eager: 1, error: null });
      } finally {
        program.dispose();
      }
    });

    it('runs steps issued without awaiting in the order they were issued', async () => {
      const program = await device.createProgram(kvProgram());
      try {
        const expected = expectedOutputs();
        const outs = await Promise.all(plan.map((_, i) => program.step(stepRequest(i))));
        outs.forEach((out, i) => expectClose(asFloat32(out['attn_out']), expected[i]!, tolerance(['f32'], 8), `step ${i}`));
      } finally {
        program.dispose();
      }
    });

    it('rejects a step whose op fails, naming the op, and the program keeps working', async () => {
      const program = await device.createProgram(kvProgram());
      try {
        const bad = stepRequest(0);
        bad.inputs['seq_lens'] = Int32Array.from([3, 2]); // fewer than seq 0's 5 query rows
        await expect(program.step(bad)).rejects.toThrow(/op 1 \(attention\).*seq_len 3/);
        const expected = expectedOutputs();
        const out = await program.step(stepRequest(0));
        expectClose(asFloat32(out['attn_out']), expected[0]!, tolerance(['f32'], 8), 'after the failure');
      } finally {
        program.dispose();
      }
    });
  });

  describe('createProgram errors', () => {
    const base = (): ProgramSpec => ({
      dims: { n: 4 },
      tensors: [
        { name: 'x', dtype: 'f32', shape: ['n', 3], role: 'input' },
        { name: 'w', dtype: 'f32', shape: [2, 3], role: 'weight', init: { kind: 'data', data: f32([1, 2, 3, 4, 5, 6]) } },
        { name: 'y', dtype: 'f32', shape: ['n', 2], role: 'output' },
      ],
      ops: [{ op: 'matmul', src: ['x', 'w', null], dst: ['y'] }],
    });

    it('rejects bad specs with messages that name the culprit, and the device keeps working', async () => {
      const cases: [(s: ProgramSpec) => void, RegExp][] = [
        [(s) => (s.ops[0]!.src[1] = 'v'), /op 0 \(matmul\): src1 'v' is not a declared tensor/],
        [(s) => (s.tensors[0]!.shape = ['m', 3]), /tensor 'x' uses dim 'm', which is not in spec.dims/],
        [(s) => (s.tensors[0]!.shape = ['n+', 3]), /cannot parse dim "n\+"/],
        [(s) => delete s.tensors[1]!.init, /weight 'w'|'w' is a weight without init/],
        [(s) => (s.tensors[1]!.init = { kind: 'data', data: f32([1, 2]) }), /init data has 2 elements, the tensor has 6/],
        [(s) => (s.tensors[1]!.init = { kind: 'file', segments: [{ path: '/nonexistent/w.bin', offset: 0, byteLength: 24, dtype: 'f32' }] }), /cannot open \/nonexistent\/w.bin/],
        [(s) => (s.tensors[0]!.dtype = 'i32'), /does not support it with dtypes \(src: i32, f32, -; dst: f32\)/],
        [(s) => (s.ops[0]!.op = 'conv2d' as ProgramSpec['ops'][0]['op']), /unknown op 'conv2d'/],
        [(s) => (s.ops[0]!.dst = ['w']), /dst0 'w' is a weight, which ops may not write/],
        [(s) => s.tensors.push({ ...s.tensors[0]! }), /tensor 'x' is declared twice/],
        [(s) => (s.ops[0]!.params = { eps: 1 }), /unknown param 'eps' for matmul/],
      ];
      for (const [mutate, message] of cases) {
        const spec = base();
        mutate(spec);
        await expect(device.createProgram(spec)).rejects.toThrow(message);
      }
      const program = await device.createProgram(base());
      const out = await program.step({ dims: { n: 1 }, inputs: { x: f32([1, 0, -1]) } });
      expect(Array.from(asFloat32(out['y']))).toEqual([-2, -2]);
      program.dispose();
    });

    it('rejects a file segment that is too short or not whole rows', async () => {
      const path = `${dir}/short.bin`;
      const { writeFileSync } = await import('node:fs');
      writeFileSync(path, Buffer.from(f32([1, 2, 3, 4, 5]).buffer));
      const spec = base();
      spec.tensors[1]!.init = { kind: 'file', segments: [{ path, offset: 0, byteLength: 24, dtype: 'f32' }] };
      await expect(device.createProgram(spec)).rejects.toThrow(/lie beyond the file's 20 bytes/);
      await expect(device.createProgram(spec)).rejects.toMatchObject({ code: 'UD_ERR_IO' });
      spec.tensors[1]!.init = { kind: 'file', segments: [{ path, offset: 0, byteLength: 8, dtype: 'f32' }, { path, offset: 0, byteLength: 16, dtype: 'f32' }] };
      await expect(device.createProgram(spec)).rejects.toThrow(/2 elements are not whole rows of 3/);
    });

    it('rejects a program larger than the free device memory before allocating any of it', async () => {
      const spec = base();
      spec.tensors.push({ name: 'huge', dtype: 'f32', shape: [1 << 22, 1 << 22], role: 'state' }); // 64 TiB
      const rejection = expect(device.createProgram(spec)).rejects;
      await rejection.toThrow(/program needs 65536\.\d\d GiB of device memory \(weights 0\.00, state 65536\.00, .*\), device '.+' has \d+\.\d\d GiB free of \d+\.\d\d GiB/);
      await expect(device.createProgram(spec)).rejects.toMatchObject({ code: 'UD_ERR_OUT_OF_MEMORY' });
      const program = await device.createProgram(base());
      expect(Array.from(asFloat32((await program.step({ dims: { n: 1 }, inputs: { x: f32([1, 1, 1]) } }))['y']))).toEqual([6, 15]);
      program.dispose();
    });

    it('dispose is idempotent and later steps reject', async () => {
      const program = await device.createProgram(base());
      const pending = program.step({ dims: { n: 1 }, inputs: { x: f32([1, 1, 1]) } });
      program.dispose();
      program.dispose();
      await expect(program.step({ dims: { n: 1 }, inputs: { x: f32([1, 1, 1]) } })).rejects.toThrow(/program is disposed/);
      expect(() => program.memoryUsage()).toThrow(/disposed/);
      // The step already running when dispose was called still completes.
      expect(Array.from(asFloat32((await pending)['y']))).toEqual([6, 15]);
    });
  });

  it('does not block the event loop while a large step runs', async () => {
    const [tokens, k, n] = [384, 1024, 2048];
    // `repeats` times x -> h -> y (then y -> h -> y again): one pair is long enough on a CPU; a GPU
    // runs it in well under a millisecond, so the step is lengthened until it takes ~100 ms.
    const build = (repeats: number) => device.createProgram({
      dims: { numTokens: tokens },
      tensors: [
        { name: 'x', dtype: 'f32', shape: ['numTokens', k], role: 'input' },
        { name: 'w', dtype: 'f32', shape: [n, k], role: 'weight', init: { kind: 'random', seed: 1, std: 0.02 } },
        { name: 'h', dtype: 'f32', shape: ['numTokens', n], role: 'activation' },
        { name: 'w2', dtype: 'f32', shape: [k, n], role: 'weight', init: { kind: 'random', seed: 2, std: 0.02 } },
        { name: 'y', dtype: 'f32', shape: ['numTokens', k], role: 'output' },
      ],
      ops: Array.from({ length: repeats }, (_, r) => [
        { op: 'matmul' as const, src: [r === 0 ? 'x' : 'y', 'w', null], dst: ['h'] },
        { op: 'matmul' as const, src: ['h', 'w2', null], dst: ['y'] },
      ]).flat(),
    });
    const x = Float32Array.from(new Rng(91).normals(tokens * k));
    const run = (p: NativeProgram) => p.step({ dims: { numTokens: tokens }, inputs: { x } });
    let repeats = 1;
    let program = await build(repeats);
    await run(program); // warm-up: one-time costs (a GPU loads its kernels) are not the step's
    for (let round = 0; round < 4; round++) {
      const start = performance.now();
      await run(program);
      const once = performance.now() - start;
      if (once >= 60 || repeats >= 4000) break;
      program.dispose();
      repeats = Math.min(4000, Math.ceil((repeats * 100) / Math.max(once, 0.05)));
      program = await build(repeats);
      await run(program);
    }
    try {
      let ticks = 0;
      const timer = setInterval(() => ticks++, 1);
      const start = performance.now();
      const out = await program.step({ dims: { numTokens: tokens }, inputs: { x } });
      const elapsed = performance.now() - start;
      clearInterval(timer);
      console.log(`event-loop test: ${elapsed.toFixed(0)} ms step, ${ticks} ticks`);
      expect(asFloat32(out['y']).length).toBe(tokens * k);
      expect(elapsed, 'the step must be long enough for this test to mean anything').toBeGreaterThan(30);
      // A blocked loop would tick at most once; a free one ticks about once per millisecond.
      expect(ticks).toBeGreaterThan(Math.min(20, elapsed / 10));
    } finally {
      program.dispose();
    }
  });

});

// Not per backend: the child process uses cpu, the backend every build has.
describe('native memory', () => {
  it('frees native memory when programs and devices are garbage collected', () => {
    const child = fileURLToPath(new URL('./fixtures/gc-child.ts', import.meta.url));
    const output = execFileSync(process.execPath, ['--expose-gc', child], { encoding: 'utf8', timeout: 30_000 });
    const { peakMiB } = JSON.parse(output.trim().split('\n').pop()!) as { peakMiB: number };
    expect(peakMiB, '25 dropped programs of 40 MiB each must not accumulate').toBeLessThan(500);
  });
});
