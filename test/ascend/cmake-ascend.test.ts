/**
 * The CMake path that builds the AscendC kernels with CANN (-DUPDRAFT_ASCEND=ON), checked where there is
 * no CANN: configure only (nothing is compiled), with a stand-in ascendc.cmake
 * (fixtures/stub-cann/.../ascendc.cmake) that records what native/backends/ascend/CMakeLists.txt asks of
 * it. What this cannot check: CANN's real ascendc.cmake and bisheng accepting the kernels.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const STUB_CANN = fileURLToPath(new URL('./fixtures/stub-cann', import.meta.url));
const hasCmake = spawnSync('cmake', ['--version']).status === 0;
const scratch: string[] = [];
// One build folder for the whole sequence (the tests run in order, each reconfiguring it), so that the
// compilers are detected once; the cache carries ASCEND_HOME_PATH from one configure to the next, as it
// does for someone who configures, sources set_env.sh and configures again.
let buildDir: string | undefined;

/** Configures native/ into the shared folder; the addon part is satisfied with a dummy cmake-js version. */
function configure(args: string[], ascendHome?: string) {
  buildDir ??= mkdtempSync(join(tmpdir(), 'updraft-cmake-ascend-'));
  const env: Record<string, string | undefined> = { ...process.env, UPDRAFT_CUDA: 'OFF' };
  delete env['ASCEND_HOME_PATH'];
  if (ascendHome !== undefined) env['ASCEND_HOME_PATH'] = ascendHome;
  rmSync(join(buildDir, 'ascendc-calls.txt'), { force: true });
  const r = spawnSync('cmake', ['-S', join(REPO_ROOT, 'native'), '-B', buildDir, '-DCMAKE_JS_VERSION=configure-test', '-DUPDRAFT_ASCEND_SIM=OFF', ...args], {
    env,
    encoding: 'utf-8',
    timeout: 180_000,
  });
  return { status: r.status, output: `${r.stdout}${r.stderr}`, build: buildDir };
}

afterAll(() => {
  for (const dir of [...scratch, ...(buildDir ? [buildDir] : [])]) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!hasCmake)(`UPDRAFT_ASCEND=ON configure${hasCmake ? '' : ' — skipped: no cmake on PATH'}`, () => {
  it('leaves the kernel library out of the default build (UPDRAFT_ASCEND off)', () => {
    const r = configure([]);
    expect(r.status, r.output).toBe(0);
    expect(r.output).not.toMatch(/building the AscendC kernel library/);
    expect(existsSync(join(r.build, 'ascendc-calls.txt'))).toBe(false);
  });

  it('fails at configure with a clear message when ASCEND_HOME_PATH is missing', () => {
    const r = configure(['-DUPDRAFT_ASCEND=ON']);
    expect(r.status).not.toBe(0);
    expect(r.output).toMatch(/UPDRAFT_ASCEND=ON builds the AscendC kernels with the CANN toolkit, but\s+ASCEND_HOME_PATH is not set/);
    expect(r.output).toMatch(/set_env\.sh/);
  });

  it('hands every kernels/ascendc/*.cpp to ascendc_library for the SOC_VERSION asked for', () => {
    // ASCEND_HOME_PATH from the environment (set_env.sh sourced after the failed configure above).
    const r = configure(['-DUPDRAFT_ASCEND=ON', '-DSOC_VERSION=Ascend910B1'], STUB_CANN);
    expect(r.output).toMatch(/Updraft: building the AscendC kernel library for Ascend910B1/);
    expect(r.status, r.output).toBe(0);
    const calls = readFileSync(join(r.build, 'ascendc-calls.txt'), 'utf-8').trim().split('\n');
    expect(calls[0]).toBe(`included SOC_VERSION=Ascend910B1 RUN_MODE=npu ASCEND_CANN_PACKAGE_PATH=${STUB_CANN}`);
    const library = calls.find((line) => line.startsWith('ascendc_library '))!.split(' ');
    expect(library.slice(1, 3)).toEqual(['updraft_ascendc_kernels', 'SHARED']);
    const kernelDir = join(REPO_ROOT, 'kernels', 'ascendc');
    const expected = readdirSync(kernelDir).filter((f) => f.endsWith('.cpp')).map((f) => join(kernelDir, f)).sort();
    expect(library.slice(3).sort()).toEqual(expected);
    expect(calls.some((line) => line.startsWith('ascendc_include_directories updraft_ascendc_kernels PRIVATE'))).toBe(true);
  });

  it('fails at configure when ASCEND_HOME_PATH holds no ascendc.cmake', () => {
    const empty = mkdtempSync(join(tmpdir(), 'updraft-no-cann-'));
    scratch.push(empty);
    const r = configure(['-DUPDRAFT_ASCEND=ON', `-DASCEND_HOME_PATH=${empty}`]);
    expect(r.status).not.toBe(0);
    expect(r.output).toMatch(/no ascendc\.cmake under\s+ASCEND_HOME_PATH=/);
  });
});

if (!hasCmake) it.skip('UPDRAFT_ASCEND=ON configure — no cmake on PATH', () => {});
