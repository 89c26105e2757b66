/**
 * The `ascend` backend's host code (native/backends/ascend) without an NPU: it loads the ACL runtime and
 * the AscendC kernel library with dlopen, so it is pointed at a stand-in libascendcl.so over host memory
 * (test/ascend/native/fake_acl.cc) and at the kernels built against the shim, both in
 * build/native/ascend/fake/. Each scenario runs in its own process (the runtime is loaded once per
 * process): a working runtime (ops match cpu, device-side operand errors surface at synchronize with the
 * CPU kernels' wording and name the first failing op, eagerly and from graph replays, the backend keeps
 * working), ACL graph capture of program steps (replays give the
 * eager results; a runtime without the aclmdlRI* entries, or a failing capture, falls back to eager
 * steps), no NPU, no kernel library, no runtime at all.
 * What this cannot check: the real ACL's behaviour and the bisheng-built kernels.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { expectClose, tolerance } from '../device/harness.ts';
import { ascendToolDir } from './tools.ts';

const fakeDir = join(ascendToolDir(), 'fake');
const fakeWithoutGraphsDir = join(ascendToolDir(), 'fake-without-graphs');
const kernels = join(fakeDir, 'libupdraft_ascendc_kernels.so');
const child = fileURLToPath(new URL('./fixtures/ascend-backend-child.ts', import.meta.url));
const graphChild = fileURLToPath(new URL('./fixtures/ascend-graph-child.ts', import.meta.url));
const skipReason = existsSync(join(fakeDir, 'libascendcl.so')) ? null : `${fakeDir}/libascendcl.so not built (npm run build:native)`;

function runChild(env: Record<string, string>, script = child): Record<string, unknown> {
  const base = { ...process.env };
  delete base['LD_LIBRARY_PATH'];
  delete base['UPDRAFT_ASCEND_KERNELS'];
  const out = execFileSync(process.execPath, [script], { env: { ...base, ...env }, encoding: 'utf-8', timeout: 120_000 });
  return JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>;
}

/** What the stand-in runtime's streams did (FAKE_ACL_REPORT, written when the child exits). */
interface FakeAclReport {
  eagerTasks: number;
  eagerKernels: number;
  capturedTasks: number;
  capturedKernels: number;
  replays: number;
  replayedKernels: number;
  invalidatedCaptures: number;
}
interface Comparison {
  graph: Record<string, number[]>[];
  eager: Record<string, number[]>[];
  /** The graph program's Program.graphStats() (enabled, captured, replayed, eager, error). */
  stats: Record<string, unknown> & { error: string | null };
}

/** The graph child over the runtime in `runtimeDir`, with the runtime's report. */
function runGraphChild(runtimeDir: string, env: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'updraft-fake-acl-'));
  try {
    const reportPath = join(dir, 'report.json');
    const r = runChild({ LD_LIBRARY_PATH: runtimeDir, UPDRAFT_ASCEND_KERNELS: kernels, FAKE_ACL_REPORT: reportPath, ...env }, graphChild);
    expect(r['error']).toBeUndefined();
    const report = JSON.parse(readFileSync(reportPath, 'utf-8')) as FakeAclReport;
    return { info: r['info'] as { supportsGraphs: boolean }, tiny: r['tiny'] as Comparison, kv: r['kv'] as Comparison, report };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Every step of the graph program gave exactly the eager program's outputs (same kernels, same device). */
function expectSameAsEager(name: string, c: Comparison): void {
  expect(c.graph.length).toBe(c.eager.length);
  c.graph.forEach((outputs, i) => expect(outputs, `${name}, step ${i}`).toEqual(c.eager[i]));
}

describe.skipIf(skipReason !== null)(`ascend backend over a stand-in ACL runtime${skipReason ? ` — skipped: ${skipReason}` : ''}`, () => {
  it('opens, reports the Ascend defaults, runs ops like cpu and reports device-side operand errors', () => {
    const r = runChild({ LD_LIBRARY_PATH: fakeDir, UPDRAFT_ASCEND_KERNELS: kernels });
    expect(r['openError']).toBeUndefined();
    expect(r['info']).toMatchObject({ backend: 'ascend', preferredDtype: 'bf16', defaultBlockSize: 128, supportsGraphs: true });
    expect((r['info'] as { name: string }).name).toMatch(/Ascend910B3 \(fake runtime\) #0/);
    const matmul = r['matmul'] as { ascend: number[]; cpu: number[] };
    expectClose(matmul.ascend, matmul.cpu, tolerance(['f32'], 70), 'matmul');
    for (const key of ['embedding', 'afterError']) {
      const v = r[key] as { ascend: number[]; cpu: number[] };
      expect(v.ascend, key).toEqual(v.cpu);
    }
    expect(r['deviceError']).toMatch(/rope_kv_write: slot_mapping\[1\] = 8 is outside the cache's 8 slots/);
  });

  it('names the op of a device-side operand error (the first failing launch), eagerly and in graph replays', () => {
    const r = runChild({ LD_LIBRARY_PATH: fakeDir, UPDRAFT_ASCEND_KERNELS: kernels });
    expect(r['openError']).toBeUndefined();
    const n = r['launchNaming'] as Record<string, unknown>;
    const bad = (row: number, source: number) => `select_tokens: row ${row} takes sample ${source} of a table with 4`;
    // op 1 fails; both fail (into the same error slot): the first, op 0, is named.
    expect(n['secondBad']).toBe(`op 1 (select_tokens): ${bad(1, 9)}`);
    expect(n['bothBad']).toBe(`op 0 (select_tokens): ${bad(0, 7)}`);
    expect(n['afterErrors']).toEqual({ a: [10, 2], b: [13, 12] });
    // The same from a captured graph: warm-up, capture, then replays carry the captured launch numbers.
    expect(n['graphWarmUp']).toEqual({ a: [10, 11], b: [12, 13] });
    expect(n['graphCapture']).toEqual({ a: [11, 12], b: [13, 10] });
    expect(n['graphSecondBad']).toBe(`op 1 (select_tokens): ${bad(0, 6)}`);
    expect(n['graphBothBad']).toBe(`op 0 (select_tokens): ${bad(0, 5)}`);
    expect(n['graphAfterErrors']).toEqual({ a: [13, 13], b: [1, 10] });
    expect(n['graphStats']).toMatchObject({ enabled: true, captured: 1, replayed: 4, error: null });
  });

  it('captures program steps into ACL graphs whose replays give the eager results', () => {
    const { info, tiny, kv, report } = runGraphChild(fakeDir);
    expect(info.supportsGraphs).toBe(true);
    expectSameAsEager('tiny LM head', tiny);
    expectSameAsEager('KV decode', kv);
    // Tiny: 5 graph steps of one shape = warm-up, capture, 3 replays. KV: an eager prompt step, then 4
    // graph decode steps = warm-up, capture, 2 replays.
    expect(tiny.stats).toMatchObject({ enabled: true, captured: 1, replayed: 4, eager: 1, error: null });
    expect(kv.stats).toMatchObject({ enabled: true, captured: 1, replayed: 3, eager: 1, error: null });
    // The replays ran the captured kernels through the runtime (the capturing step included: a captured
    // step runs only by its replay), and nothing invalidated a capture.
    expect(report.invalidatedCaptures).toBe(0);
    expect(report.capturedKernels).toBeGreaterThanOrEqual(5 + 2);
    expect(report.replays).toBe(4 + 3);
    expect(report.replayedKernels).toBeGreaterThanOrEqual(report.capturedKernels);
  });

  it('runs graph steps eagerly, with the same results, where the runtime has no aclmdlRI* entries', () => {
    const { info, tiny, kv, report } = runGraphChild(fakeWithoutGraphsDir);
    expect(info.supportsGraphs).toBe(false);
    expectSameAsEager('tiny LM head', tiny);
    expectSameAsEager('KV decode', kv);
    expect(tiny.stats).toMatchObject({ enabled: false, captured: 0, replayed: 0, eager: 5 });
    expect(report).toMatchObject({ capturedTasks: 0, replays: 0 });
  });

  it('falls back to eager steps, with the same results, when a capture fails', () => {
    const { tiny, kv, report } = runGraphChild(fakeDir, { FAKE_ACL_CAPTURE_FAILS: '1' });
    expectSameAsEager('tiny LM head', tiny);
    expectSameAsEager('KV decode', kv);
    for (const stats of [tiny.stats, kv.stats]) {
      expect(stats).toMatchObject({ enabled: false, captured: 0, replayed: 0 });
      expect(stats.error).toMatch(/graph capture failed: .*aclmdlRICaptureEnd failed with ACL error \d+: fake ACL: capture invalidated by FAKE_ACL_CAPTURE_FAILS/);
    }
    expect(report).toMatchObject({ invalidatedCaptures: 2, replays: 0 });
  });

  it('says there is no NPU when the runtime reports none', () => {
    const r = runChild({ LD_LIBRARY_PATH: fakeDir, FAKE_ACL_DEVICES: '0', UPDRAFT_ASCEND_KERNELS: kernels });
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
