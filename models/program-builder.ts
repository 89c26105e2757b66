/**
 * A small helper that collects TensorDecls and OpNodes while an architecture writes its step, and turns
 * checkpoint tensors (or dummy random values) into weight declarations with the dtype the caller asked for.
 */
import type { DType, Dim, FileSegment, OpKind, OpNode, ProgramSpec, TensorDecl } from '../src/device/program.ts';
import { sliceSegment } from '../src/model/tensor-parallel.ts';
import type { PartSlice } from '../src/model/tensor-parallel.ts';
import type { WeightSource } from '../src/model/weights.ts';

export type WeightDtypeOption = DType | 'auto';

export interface WeightPlan {
  /** Where weights come from: a checkpoint, or `--load-format dummy` random values. */
  source: WeightSource | 'dummy';
  /** Seed of the dummy values (each tensor gets seed + its index). */
  seed: number;
  /** Standard deviation of the dummy values. */
  std: number;
  /** 'auto': the checkpoint's own dtype (for dummy weights: `dummyDtype`). */
  dtype: WeightDtypeOption;
  dummyDtype: DType;
}

export class ProgramBuilder {
  readonly dims: Record<string, number>;
  readonly tensors: TensorDecl[] = [];
  readonly ops: OpNode[] = [];
  private readonly byName = new Map<string, TensorDecl>();
  private numRandomWeights = 0;
  private readonly weights: WeightPlan;

  constructor(dims: Record<string, number>, weights: WeightPlan) {
    this.dims = dims;
    this.weights = weights;
  }

  declare(decl: TensorDecl): string {
    if (this.byName.has(decl.name)) throw new Error(`program declares tensor "${decl.name}" twice`);
    this.byName.set(decl.name, decl);
    this.tensors.push(decl);
    return decl.name;
  }

  tensor(name: string, dtype: DType, shape: Dim[], role: 'activation' | 'state' | 'input' | 'output'): string {
    return this.declare({ name, dtype, shape, role });
  }

  op(op: OpKind, src: (string | null)[], dst: (string | null)[], params?: Record<string, number>): void {
    for (const name of [...src, ...dst]) {
      if (name !== null && !this.byName.has(name)) throw new Error(`op ${op} uses undeclared tensor "${name}"`);
    }
    this.ops.push(params ? { op, src, dst, params } : { op, src, dst });
  }

  /**
   * Declares weight `name` of `shape`, made of checkpoint tensors `parts` concatenated along dim 0
   * (one part: a plain copy). Each part's checkpoint shape is checked against `partShapes`.
   * `slices[i]`, when given, takes only those rows or columns of part i (a tensor-parallel shard;
   * `shape` is then the sharded shape). Dummy weights ignore it: random values of `shape`.
   */
  weight(name: string, shape: number[], parts: string[], partShapes: number[][], slices?: (PartSlice | undefined)[]): string {
    const source = this.weights.source;
    if (source === 'dummy') {
      const seed = this.weights.seed + this.numRandomWeights++;
      const dtype = this.weights.dtype === 'auto' ? this.weights.dummyDtype : this.weights.dtype;
      return this.declare({ name, dtype, shape, role: 'weight', init: { kind: 'random', seed, std: this.weights.std } });
    }
    const segments: FileSegment[] = parts.map((part, i) => {
      const entry = source.get(part);
      const expected = partShapes[i]!;
      if (entry.shape.length !== expected.length || entry.shape.some((d, k) => d !== expected[k])) {
        throw new Error(
          `${source.dir}: tensor "${part}" has shape [${entry.shape.join(', ')}], but config.json implies [${expected.join(', ')}]`,
        );
      }
      const slice = slices?.[i];
      return slice ? sliceSegment(entry.segment, expected, slice) : entry.segment;
    });
    const dtype = this.weights.dtype === 'auto' ? commonDtype(segments.map((s) => s.dtype)) : this.weights.dtype;
    return this.declare({ name, dtype, shape, role: 'weight', init: { kind: 'file', segments } });
  }

  /** A weight computed on the host (RoPE tables). */
  dataWeight(name: string, data: Float32Array | Int32Array, shape: number[]): string {
    const dtype: DType = data instanceof Float32Array ? 'f32' : 'i32';
    return this.declare({ name, dtype, shape, role: 'weight', init: { kind: 'data', data } });
  }

  build(): ProgramSpec {
    return { dims: { ...this.dims }, tensors: [...this.tensors], ops: [...this.ops] };
  }
}

/** Fused parts stored in different dtypes (rare) are widened to f32 rather than rounded. */
function commonDtype(dtypes: DType[]): DType {
  return dtypes.every((d) => d === dtypes[0]) ? dtypes[0]! : 'f32';
}
