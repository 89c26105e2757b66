/**
 * Every AscendC kernel's peak use of UB / L1 / L0A / L0B / L0C per core at model-sized shapes
 * (test/ascend/native/kernel_report.cc runs every op through ascend-sim and prints the table; the shim
 * itself fails any launch over a budget). The table is printed for the log.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ascendTool } from './tools.ts';

const tool = ascendTool('ascend_kernel_report');
const CAPACITY = { UB: 192 * 1024, L1: 512 * 1024, L0A: 64 * 1024, L0B: 64 * 1024, L0C: 128 * 1024 };
const OPS = ['embedding', 'gather_rows', 'rmsnorm', 'matmul_cube', 'matmul_bias', 'matmul_cast', 'rope_kv_write', 'attention', 'silu_mul',
  'process_logits', 'sample', 'select_tokens', 'fill_random'];

describe.skipIf(tool.skipReason !== null)(`AscendC kernel resources${tool.skipReason ? ` — skipped: ${tool.skipReason}` : ''}`, () => {
  it('reports every kernel within the 910B per-core budgets, vector kernels in UB only, cube kernels in L1/L0 only', () => {
    const table = execFileSync(tool.path, { encoding: 'utf-8', timeout: 120_000 });
    console.log(table);
    const kernels = table.trim().split('\n').slice(1).map((line) => {
      const [name, core, blocks, ...cells] = line.trim().split(/\s+(?![(])/);
      const bytes = cells.map((c) => (c === '-' ? 0 : Number(c.split(' ')[0])));
      return { name: name!, core: core!, blocks: Number(blocks), bytes };
    });
    for (const op of OPS) expect(kernels.some((k) => k.name.startsWith(op)), `${op} in the report`).toBe(true);
    const caps = Object.values(CAPACITY);
    for (const k of kernels) {
      k.bytes.forEach((b, i) => expect(b, `${k.name} memory ${i}`).toBeLessThanOrEqual(caps[i]!));
      if (k.core === 'AIV') {
        expect(k.bytes[0], `${k.name} uses UB`).toBeGreaterThan(0);
        expect(k.bytes.slice(1).every((b) => b === 0), `${k.name} (vector) touches no L1/L0`).toBe(true);
        expect(k.blocks).toBeLessThanOrEqual(48);
      } else {
        expect(k.bytes[0], `${k.name} (cube) touches no UB`).toBe(0);
        expect(k.blocks).toBeLessThanOrEqual(24);
      }
    }
  });
});

if (tool.skipReason !== null) it.skip(`AscendC kernel resources — ${tool.skipReason}`, () => {});
