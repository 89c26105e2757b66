/**
 * A structural checker for ProgramSpecs, written from kernels/ops.h: operand counts, roles, dtypes,
 * shapes (rows = first dim, row size = product of the rest, as the kernels view operands), params
 * fields, data flow within a step, and weight inits that fill their tensors exactly.
 * Returns a list of problems; an empty list means the program is well formed.
 */
import { DTYPE_BYTES } from '../../../src/device/program.ts';
import type { DType, Dim, OpNode, ProgramSpec, TensorDecl } from '../../../src/device/program.ts';

const PARAM_FIELDS: Record<string, string[]> = {
  embedding: [],
  matmul: [],
  silu_mul: [],
  gather_rows: [],
  rmsnorm: ['eps', 'add_residual'],
  rope_kv_write: ['num_heads', 'num_kv_heads', 'head_dim', 'rotary_dim'],
  attention: ['scale', 'num_heads', 'num_kv_heads', 'head_dim', 'block_size'],
  sample: ['num_top_logprobs'],
  fill_random: ['seed', 'std'],
  select_tokens: [],
  process_logits: [],
  all_reduce: [],
};
const OPERAND_COUNTS: Record<string, [number, number]> = {
  embedding: [2, 1], matmul: [3, 1], rmsnorm: [3, 2], rope_kv_write: [4, 3], attention: [6, 1],
  silu_mul: [1, 1], gather_rows: [2, 1], sample: [7, 4], fill_random: [0, 1], select_tokens: [3, 1],
  process_logits: [8, 1], all_reduce: [0, 1],
};
const FLOAT: DType[] = ['f32', 'f16', 'bf16'];
/** The paged cache may also be stored as FP8 (kernels/ops.h UD_F8E4M3, --kv-cache-dtype fp8). */
const KV_CACHE: DType[] = [...FLOAT, 'f8e4m3'];

/** A dim as a comparable value: numbers stay numbers, symbolic dims stay strings. */
function product(dims: Dim[]): Dim {
  if (dims.length === 0) return 1;
  if (dims.length === 1) return dims[0]!;
  if (dims.every((d) => typeof d === 'number')) return (dims as number[]).reduce((a, b) => a * b, 1);
  return dims.join('*');
}
const rows = (t: TensorDecl): Dim => t.shape[0] ?? 1;
const rowSize = (t: TensorDecl): Dim => product(t.shape.slice(1));
const numel = (t: TensorDecl): Dim => product(t.shape);

export function checkProgram(spec: ProgramSpec): string[] {
  const problems: string[] = [];
  const byName = new Map<string, TensorDecl>();
  for (const t of spec.tensors) {
    if (byName.has(t.name)) problems.push(`tensor ${t.name} declared twice`);
    byName.set(t.name, t);
    problems.push(...checkDecl(t, spec.dims));
  }
  const used = new Set<string>();
  const written = new Set<string>();
  spec.ops.forEach((op, index) => {
    const where = `op ${index} (${op.op})`;
    const counts = OPERAND_COUNTS[op.op];
    if (!counts) return problems.push(`${where}: unknown op`);
    if (op.src.length !== counts[0] || op.dst.length !== counts[1]) {
      problems.push(`${where}: has ${op.src.length} src / ${op.dst.length} dst, ops.h says ${counts[0]} / ${counts[1]}`);
      return;
    }
    const fields = Object.keys(op.params ?? {}).sort();
    if (fields.join() !== [...PARAM_FIELDS[op.op]!].sort().join()) problems.push(`${where}: params ${fields.join()} ≠ ${PARAM_FIELDS[op.op]!.join()}`);
    for (const name of [...op.src, ...op.dst]) {
      if (name === null) continue;
      if (!byName.has(name)) problems.push(`${where}: undeclared tensor ${name}`);
      used.add(name);
    }
    for (const name of op.src) {
      const t = name === null ? undefined : byName.get(name);
      if (t && (t.role === 'activation' || t.role === 'output') && !written.has(t.name)) problems.push(`${where}: reads ${t.name} before any op writes it`);
    }
    // process_logits and all_reduce read their dst (in place): it must hold this step's values already.
    if (op.op === 'process_logits' || op.op === 'all_reduce') {
      const t = op.dst[0] === null || op.dst[0] === undefined ? undefined : byName.get(op.dst[0]);
      if (t && t.role === 'activation' && !written.has(t.name)) problems.push(`${where}: reads ${t.name} before any op writes it`);
    }
    for (const name of op.dst) {
      const t = name === null ? undefined : byName.get(name);
      if (t && (t.role === 'input' || t.role === 'weight')) problems.push(`${where}: writes ${t.role} ${t.name}`);
      const aliasAllowed = op.op === 'rmsnorm' && name === op.src[1] && name === op.dst[1];
      if (name !== null && op.src.includes(name) && !aliasAllowed) problems.push(`${where}: dst ${name} aliases a src`);
      if (name !== null) written.add(name);
    }
    if (op.src.every((n) => n === null || byName.has(n)) && op.dst.every((n) => n === null || byName.has(n))) {
      const get = (n: string | null) => (n === null ? null : byName.get(n)!);
      problems.push(...checkOp(op, op.src.map(get), op.dst.map(get)).map((p) => `${where}: ${p}`));
    }
  });
  for (const t of spec.tensors) if (!used.has(t.name)) problems.push(`tensor ${t.name} is declared but no op uses it`);
  return problems;
}

function checkDecl(t: TensorDecl, dims: Record<string, number>): string[] {
  const problems: string[] = [];
  for (const d of t.shape) {
    if (typeof d === 'number' && (!Number.isInteger(d) || d < 0)) problems.push(`${t.name}: bad dim ${d}`);
    if (typeof d === 'string' && !(d.replace(/\+\d+$/, '') in dims)) problems.push(`${t.name}: unknown symbolic dim ${d}`);
  }
  if (t.shape.length < 1 || t.shape.length > 4) problems.push(`${t.name}: ${t.shape.length} dims (ops.h allows 1..4)`);
  if ((t.role === 'weight') !== (t.init !== undefined)) problems.push(`${t.name}: role ${t.role} ${t.init ? 'with' : 'without'} init`);
  if (t.role === 'weight' && t.shape.some((d) => typeof d === 'string')) problems.push(`${t.name}: weights need fixed shapes`);
  const count = t.shape.every((d) => typeof d === 'number') ? (t.shape as number[]).reduce((a, b) => a * b, 1) : null;
  if (t.init?.kind === 'file') {
    const elements = t.init.segments.reduce((n, s) => n + s.byteLength / DTYPE_BYTES[s.dtype], 0);
    if (elements !== count) problems.push(`${t.name}: file segments hold ${elements} elements, shape needs ${count}`);
  }
  if (t.init?.kind === 'data' && t.init.data.length !== count) problems.push(`${t.name}: data has ${t.init.data.length} elements, shape needs ${count}`);
  if (t.init?.kind === 'random' && !(t.init.std > 0)) problems.push(`${t.name}: random init std ${t.init.std}`);
  return problems;
}

function checkOp(op: OpNode, src: (TensorDecl | null)[], dst: (TensorDecl | null)[]): string[] {
  const problems: string[] = [];
  const expect = (ok: boolean, message: string) => {
    if (!ok) problems.push(message);
  };
  const same = (a: Dim, b: Dim, message: string) => expect(a === b, `${message} (${a} ≠ ${b})`);
  const dtype = (t: TensorDecl | null, allowed: DType[], what: string) => {
    if (t) expect(allowed.includes(t.dtype), `${what} ${t.name} is ${t.dtype}, needs ${allowed.join('/')}`);
  };
  const required = (t: TensorDecl | null, what: string): t is TensorDecl => {
    expect(t !== null, `${what} is required`);
    return t !== null;
  };
  const p = op.params ?? {};
  switch (op.op) {
    case 'embedding': {
      const [table, ids] = src;
      const [out] = dst;
      if (!required(table, 'table') || !required(ids, 'ids') || !required(out, 'out')) break;
      dtype(table, FLOAT, 'table'); dtype(ids, ['i32'], 'ids'); dtype(out, FLOAT, 'out');
      same(rows(out), numel(ids), 'out rows = ids');
      same(rowSize(out), rowSize(table), 'out row = table row');
      break;
    }
    case 'matmul': {
      const [x, w, bias] = src;
      const [y] = dst;
      if (!required(x, 'x') || !required(w, 'W') || !required(y, 'y')) break;
      dtype(x, FLOAT, 'x'); dtype(w, FLOAT, 'W'); dtype(bias, FLOAT, 'bias'); dtype(y, FLOAT, 'y');
      expect(w.shape.length === 2, `W ${w.name} must be 2-D`);
      same(rowSize(x), w.shape[1]!, `x row size = W cols (${x.name}, ${w.name})`);
      if (bias) same(numel(bias), w.shape[0]!, `bias size = W rows (${bias.name})`);
      same(rows(y), rows(x), `y rows = x rows (${y.name})`);
      same(rowSize(y), w.shape[0]!, `y row size = W rows (${y.name}, ${w.name})`);
      break;
    }
    case 'rmsnorm': {
      const [x, residual, weight] = src;
      const [out, residualOut] = dst;
      if (!required(x, 'x') || !required(weight, 'weight') || !required(out, 'out')) break;
      dtype(x, FLOAT, 'x'); dtype(weight, FLOAT, 'weight'); dtype(out, FLOAT, 'out');
      expect(p['add_residual'] === 0 || p['add_residual'] === 1, 'add_residual must be 0 or 1');
      expect((p['eps'] ?? 0) > 0, 'eps must be > 0');
      same(numel(weight), rowSize(x), 'weight size = row size');
      expect(out.shape.join() === x.shape.join(), `out ${out.shape} ≠ x ${x.shape}`);
      if (p['add_residual'] === 1) {
        if (required(residual, 'residual') && required(residualOut, 'residual out')) {
          expect(residual.shape.join() === x.shape.join(), `residual ${residual.shape} ≠ x ${x.shape}`);
          expect(residualOut.shape.join() === x.shape.join(), `residual out ${residualOut.shape} ≠ x ${x.shape}`);
        }
      } else {
        expect(residual === null, 'residual must be absent without add_residual');
        if (residualOut) expect(residualOut.shape.join() === x.shape.join(), 'residual out must match x');
      }
      break;
    }
    case 'rope_kv_write': {
      const [qkv, positions, invFreq, slots] = src;
      const [q, k, v] = dst;
      const nH = p['num_heads']!, nKV = p['num_kv_heads']!, D = p['head_dim']!, rot = p['rotary_dim']!;
      if (![qkv, positions, invFreq, slots, q, k, v].every((t) => t !== null)) return ['rope_kv_write operands are all required'];
      dtype(qkv, FLOAT, 'qkv'); dtype(positions, ['i32'], 'positions'); dtype(invFreq, ['f32'], 'inv_freq');
      dtype(slots, ['i32'], 'slot_mapping'); dtype(q, FLOAT, 'q'); dtype(k, KV_CACHE, 'k_cache'); dtype(v, KV_CACHE, 'v_cache');
      expect(rot % 2 === 0 && rot > 0 && rot <= D, `rotary_dim ${rot}`);
      same(rowSize(qkv!), (nH + 2 * nKV) * D, 'qkv row = (nH + 2 nKV) D');
      same(numel(positions!), rows(qkv!), 'positions = tokens');
      same(numel(slots!), rows(qkv!), 'slot_mapping = tokens');
      same(numel(invFreq!), rot / 2, 'inv_freq = rotary_dim / 2');
      expect(q!.shape.join() === [rows(qkv!), nH, D].join(), `q ${q!.shape} ≠ [tokens, ${nH}, ${D}]`);
      for (const cache of [k!, v!]) {
        expect(cache.role === 'state', `${cache.name} must be a state tensor`);
        expect(cache.shape.length === 4 && cache.shape[2] === nKV && cache.shape[3] === D, `${cache.name} ${cache.shape} ≠ [blocks, blockSize, ${nKV}, ${D}]`);
      }
      break;
    }
    case 'attention': {
      const [q, k, v, blockTables, seqLens, qsl] = src;
      const [out] = dst;
      if (![q, k, v, blockTables, seqLens, qsl, out].every((t) => t !== null)) return ['attention operands are all required'];
      const nH = p['num_heads']!, nKV = p['num_kv_heads']!, D = p['head_dim']!, block = p['block_size']!;
      expect(nH % nKV === 0, 'num_heads must be a multiple of num_kv_heads');
      expect((p['scale'] ?? 0) > 0, 'scale must be > 0');
      expect(q!.shape.join() === [q!.shape[0], nH, D].join(), `q ${q!.shape} ≠ [tokens, ${nH}, ${D}]`);
      for (const cache of [k!, v!]) expect(cache.shape.join() === [cache.shape[0], block, nKV, D].join(), `${cache.name} ${cache.shape} ≠ [blocks, ${block}, ${nKV}, ${D}]`);
      dtype(q, FLOAT, 'q'); dtype(k, KV_CACHE, 'k_cache'); dtype(v, KV_CACHE, 'v_cache'); dtype(out, FLOAT, 'out');
      dtype(blockTables, ['i32'], 'block_tables'); dtype(seqLens, ['i32'], 'seq_lens'); dtype(qsl, ['i32'], 'query_start_loc');
      same(rows(blockTables!), numel(seqLens!), 'block_tables rows = seqs');
      same(numel(qsl!), `${numel(seqLens!)}+1`, 'query_start_loc = seqs + 1');
      same(rows(out!), rows(q!), 'out rows = tokens');
      same(rowSize(out!), nH * D, 'out row = nH D');
      break;
    }
    case 'silu_mul': {
      const [gateUp] = src;
      const [out] = dst;
      if (!required(gateUp, 'gate_up') || !required(out, 'out')) break;
      same(rows(out), rows(gateUp), 'rows');
      same(2 * (rowSize(out) as number), rowSize(gateUp), 'gate_up row = 2 × out row');
      break;
    }
    case 'gather_rows': {
      const [x, idx] = src;
      const [out] = dst;
      if (!required(x, 'x') || !required(idx, 'indices') || !required(out, 'out')) break;
      dtype(idx, ['i32'], 'indices');
      same(rows(out), numel(idx), 'out rows = indices');
      same(rowSize(out), rowSize(x), 'out row = x row');
      break;
    }
    case 'sample': {
      const [logits, temperature, topK, topP, minP, seeds, counters] = src;
      const [ids, logprobs, topIds, topLogprobs] = dst;
      if (![logits, temperature, topK, topP, minP, seeds, counters, ids, logprobs].every((t) => t !== null)) return ['sample operands missing'];
      dtype(logits, ['f32'], 'logits'); dtype(temperature, ['f32'], 'temperature'); dtype(topK, ['i32'], 'top_k');
      dtype(topP, ['f32'], 'top_p'); dtype(minP, ['f32'], 'min_p'); dtype(seeds, ['u64'], 'seeds'); dtype(counters, ['i32'], 'sample_counters');
      dtype(ids, ['i32'], 'token_ids'); dtype(logprobs, ['f32'], 'token_logprobs'); dtype(topIds, ['i32'], 'top_ids'); dtype(topLogprobs, ['f32'], 'top_logprobs');
      const S = rows(logits!);
      for (const t of [temperature, topK, topP, minP, seeds, counters, ids, logprobs]) same(numel(t!), S, `${t!.name} = seqs`);
      for (const t of [topIds, topLogprobs]) if (t) same(rows(t), S, `${t.name} rows = seqs`);
      break;
    }
    case 'select_tokens': {
      const [ids, sources, table] = src;
      const [out] = dst;
      if (!required(ids, 'ids') || !required(out, 'out')) break;
      dtype(ids, ['i32'], 'ids'); dtype(out, ['i32'], 'out');
      if (sources) {
        dtype(sources, ['i32'], 'sources');
        expect(table !== null, 'sources need a table');
        same(numel(sources), numel(ids), 'sources = ids');
        same(numel(out), numel(ids), 'out = ids');
      } else {
        // A copy into a buffer that may be larger (a state tensor sized for the maximum).
        expect(table === null, 'a table without sources');
      }
      if (table) dtype(table, ['i32'], 'table');
      break;
    }
    case 'process_logits': {
      const [flags, penalties, tokenIds, tokenCounts, extraIds, biasIds, biasValues, allowed] = src;
      const [logits] = dst;
      if (![flags, penalties, tokenIds, tokenCounts, biasIds, biasValues, logits].every((t) => t !== null)) return ['process_logits operands missing'];
      dtype(flags, ['i32'], 'flags'); dtype(penalties, ['f32'], 'penalties'); dtype(tokenIds, ['i32'], 'token_ids');
      dtype(tokenCounts, ['i32'], 'token_counts'); dtype(extraIds, ['i32'], 'extra_ids'); dtype(biasIds, ['i32'], 'bias_ids');
      dtype(biasValues, ['f32'], 'bias_values'); dtype(allowed, ['u32'], 'allowed'); dtype(logits, ['f32'], 'logits');
      const R = numel(flags!);
      same(numel(penalties!), product([R, 3]), 'penalties = [R, 3]');
      for (const t of [tokenIds, tokenCounts, biasIds, biasValues, allowed]) if (t) same(rows(t), R, `${t.name} rows = R`);
      if (extraIds) same(numel(extraIds), R, 'extra_ids = R');
      same(rowSize(tokenIds!), rowSize(tokenCounts!), 'token_counts row = token_ids row');
      same(rowSize(biasIds!), rowSize(biasValues!), 'bias_values row = bias_ids row');
      break;
    }
    case 'all_reduce': {
      const [data] = dst;
      if (required(data, 'data')) dtype(data, FLOAT, 'data');
      break;
    }
    default:
      problems.push('unchecked op');
  }
  return problems;
}
