/**
 * The AscendC shim rejects kernels that would fail or misbehave on the chip: one deliberately broken
 * kernel per rule (test/ascend/native/shim_rules.cc), each of which must fail with its rule's message,
 * and control kernels that obey every rule and must pass. A failed launch leaves global memory as it was.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ascendTool } from './tools.ts';

const tool = ascendTool('ascend_shim_rules');

function run(name: string): string {
  return execFileSync(tool.path, [name], { encoding: 'utf-8' }).trim();
}

// Case -> the message it must fail with (null: it must pass).
const EXPECTED: Record<string, RegExp | null> = {
  control: null,
  control_single_block: null,
  missing_sync_fixed: null,
  ub_budget: /UB budget exceeded: TBuf<VECCALC>#2 needs 81920 bytes but 131072 of the 196608 bytes of UB are already given out/,
  l0c_budget: /L0C budget exceeded/,
  wrong_core_type: /wrong core type: .* is in L1, which a vector \(AIV\) core does not have/,
  too_many_blocks: /too many blocks: blockDim 49 exceeds the 48 vector cores/,
  undeclared_core_type: /undeclared core type/,
  misaligned_copy: /misaligned copy: DataCopy\(GM->local\): the length is 80 bytes, not a multiple of 32/,
  misaligned_operand: /misaligned operand: Adds: .* starts at UB address 12, not a multiple of 32 bytes/,
  u16_parameter_wraps: /parameter out of range: blockCount = 70000 does not fit uint16_t .* wrap to 4464/,
  u8_repeat_wraps: /parameter out of range: repeatTimes = 300 does not fit uint8_t .* wrap to 44/,
  leaked_buffer: /buffer leaked: TQue<VECIN>#0: 1 of its 2 buffers are still allocated or queued at kernel end/,
  double_free: /double free: FreeTensor of TQue<VECIN>#0 buffer 0, which is already free/,
  deque_empty: /DeQue of an empty queue/,
  alloc_deadlock: /queue exhausted: AllocTensor on TQue<VECIN>#0 with all 2 of its buffers in use: on the chip this waits forever \(deadlock\)/,
  use_after_free: /use after free: Exp uses TQue<VECIN>#0 buffer 0 after FreeTensor/,
  uninitialised_read: /uninitialised read: Exp reads element 32 of .* which nothing has written/,
  missing_sync: /missing synchronisation: Exp on pipe V \(vector\) reads TBuf<VECCALC>#0, last written by pipe MTE2/,
  waitflag_without_setflag: /WaitFlag without SetFlag/,
  bf16_arithmetic: /unsupported dtype: Add on bfloat16_t/,
  gm_out_of_bounds_write: /global memory out of bounds: DataCopy\(UB->GM\) writes elements \[0, 64\) of a GlobalTensor<float> of 32 elements/,
  gm_outside_allocation: /global buffer outside device memory: SetGlobalBuffer of 2048 float elements .* runs past the end of its allocation/,
  cross_block_race: /cross-block write conflict: blocks 0 and 1 both write byte 0 of a 4096-byte allocation without atomics/,
  block_order_dependence: /block-order dependence: the output at .* differs between forward and reversed block order/,
  rollback: /kernel rollback block 1: test: a rule broken after block 0 wrote its output/,
  mmad_unzeroed_k_padding: /uninitialised read: Mmad: row 0 of A \(L0A\) has unwritten elements within k/,
};

describe.skipIf(tool.skipReason !== null)(`AscendC shim rules${tool.skipReason ? ` — skipped: ${tool.skipReason}` : ''}`, () => {
  it('has a test for every case the program knows, and no other', () => {
    const listed = execFileSync(tool.path, ['--list'], { encoding: 'utf-8' }).trim().split('\n').sort();
    expect(listed).toEqual(Object.keys(EXPECTED).sort());
  });

  for (const [name, message] of Object.entries(EXPECTED)) {
    it(message ? `${name}: fails with its rule` : `${name}: passes`, () => {
      const output = run(name);
      if (message === null) expect(output).toBe('OK');
      else {
        expect(output).toMatch(/^VIOLATION: kernel /);
        expect(output).toMatch(message);
      }
    });
  }
});

if (tool.skipReason !== null) it.skip(`AscendC shim rules — ${tool.skipReason}`, () => {});
