/**
 * The `ascend` backend's host code (native/backends/ascend) without an NPU: it loads the ACL runtime and
 * the AscendC kernel library with dlopen, so it is pointed at a stand-in libascendcl.so over host memory
 * (test/ascend/native/fake_acl.cc) and at the kernels built against the shim, both in
 * build/native/ascend/fake/. Each scenario runs in its own process (the runtime is loaded once per
 * process): a working runtime (ops match cpu, device-side operand errors surface at synchronize with the
 * CPU kernels' wording, the backend keeps working), no NPU, no kernel library, no runtime at all.
 * What this cannot check: the real ACL's behaviour and the bisheng-built kernels.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { expectClose, tolerance } from '../device/harness.ts';
import { ascendToolDir } from './tools.ts';

const fakeDir = join(ascendToolDir(), 'fake');
const child = fileURLToPath(new URL('./fixtures/ascend-backend-child.ts', import.meta.url));
const skipReason = existsSync(join(fakeDir, 'libascendcl.so')) ? null : `${fakeDir}/libascendcl.so not built (npm run build:native)`;

function runChild(env: Record<string, string>): Record<string, unknown> {
  const base = { ...process.env };
  delete base['LD_LIBRARY_PATH'];
  delete base['UPDRAFT_ASCEND_KERNELS'];
  const out = execFileSync(process.execPath, [child], { env: { ...base, ...env }, encoding: 'utf-8', timeout: 60_000 });
  return JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>;
}

describe.skipIf(skipReason !== null)(`ascend backend over a stand-in ACL runtime${skipReason ? ` — skipped: ${skipReason}` : ''}`, () => {
  it('opens, reports the Ascend defaults, runs ops like cpu and reports device-side operand errors', () => {
    const r = runChild({ LD_LIBRARY_PATH: fakeDir, UPDRAFT_ASCEND_KERNELS: join(fakeDir, 'libupdraft_ascendc_kernels.so') });
    expect(r['openError']).toBeUndefined();
    expect(r['info']).toMatchObject({ backend: 'ascend', preferredDtype: 'bf16', defaultBlockSize: 128, supportsGraphs: false });
    expect((r['info'] as { name: string }).name).toMatch(/Ascend910B3 \(fake runtime\) #0/);
    const matmul = r['matmul'] as { ascend: number[]; cpu: number[] };
    expectClose(matmul.ascend, matmul.cpu, tolerance(['f32'], 70), 'matmul');
    for (const key of ['embedding', 'afterError']) {
      const v = r[key] as { ascend: number[]; cpu: number[] };
      expect(v.ascend, key).toEqual(v.cpu);
    }
    expect(r['deviceError']).toMatch(/rope_kv_write: slot_mapping\[1\] = 8 is outside the cache's 8 slots/);
  });

  it('says there is no NPU when the runtime reports none', () => {
    const r = runChild({ LD_LIBRARY_PATH: fakeDir, FAKE_ACL_DEVICES: '0', UPDRAFT_ASCEND_KERNELS: join(fakeDir, 'libupdraft_ascendc_kernels.so') });
    expect(r['openError']).toMatch(/no Ascend NPU: the runtime reports none/);
  });

  it('says the kernel library is missing', () => {
    const r = runChild({ LD_LIBRARY_PATH: fakeDir, UPDRAFT_ASCEND_KERNELS: join(fakeDir, 'missing.so') });
    expect(r['openError']).toMatch(/the AscendC kernel library is not built \(.*missing\.so.*\); build it on a CANN machine with UPDRAFT_ASCEND=ON/);
  });

  it('says CANN is missing where there is no libascendcl.so', () => {
    const r = runChild({});
    expect(r['openError']).toMatch(/no Ascend runtime: cannot load libascendcl\.so .* use --device ascend-sim/);
  });
});

if (skipReason !== null) it.skip(`ascend backend over a stand-in ACL runtime — ${skipReason}`, () => {});
