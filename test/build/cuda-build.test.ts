/**
 * The CUDA backend is built wherever nvcc is (native/CMakeLists.txt: UPDRAFT_CUDA=AUTO), so CI, which
 * has nvcc but no GPU, compiles every kernels/cuda/*.cu file: a CMake change that quietly drops the
 * backend must fail here rather than land. On a machine without a GPU, opening it fails cleanly.
 */
import { existsSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadNativeAddon } from '../../src/device/binding.ts';
import { REPO_ROOT } from '../helpers/paths.ts';

/** nvcc as CMake's check_language(CUDA) finds it: $CUDACXX, else the PATH. */
function findNvcc(): string | null {
  const fromEnv = process.env['CUDACXX'];
  if (fromEnv && existsSync(fromEnv)) return fromEnv;
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, 'nvcc'))) return join(dir, 'nvcc');
  }
  return null;
}

/** UPDRAFT_CUDA as the build folder's CMake cache holds it (OFF is a deliberate opt-out). */
function configuredCudaMode(): string | null {
  const cache = join(REPO_ROOT, 'build', 'native', 'CMakeCache.txt');
  if (!existsSync(cache)) return null;
  const match = /^UPDRAFT_CUDA:[A-Z]+=(.*)$/m.exec(readFileSync(cache, 'utf8'));
  return match ? match[1]!.trim().toUpperCase() : null;
}

const nvcc = findNvcc();
const mode = configuredCudaMode();
const optedOut = mode === 'OFF' || process.env['UPDRAFT_CUDA']?.toUpperCase() === 'OFF';
const prebuilt = process.env['UPDRAFT_NATIVE_ADDON'];
const skipReason = !nvcc
  ? 'nvcc is not on the PATH (nor $CUDACXX): the addon is built without the CUDA backend here'
  : optedOut
    ? 'the build was configured with UPDRAFT_CUDA=OFF'
    : prebuilt
      ? `UPDRAFT_NATIVE_ADDON points at a prebuilt addon (${prebuilt})`
      : null;

describe('CUDA backend build', () => {
  it.skipIf(skipReason !== null)(`nvcc is here, so the addon lists 'cuda'${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
    expect(loadNativeAddon().listBackends(), `nvcc at ${nvcc}, UPDRAFT_CUDA=${mode ?? 'unset'}`).toContain('cuda');
  });

  it('opening cuda either works or fails as UD_ERR_UNAVAILABLE naming the reason', () => {
    const addon = loadNativeAddon();
    if (!addon.listBackends().includes('cuda')) return;
    try {
      addon.openDevice('cuda').close();
    } catch (error) {
      expect(error).toMatchObject({ code: 'UD_ERR_UNAVAILABLE' });
      expect((error as Error).message).toMatch(/^cannot open backend 'cuda': no CUDA device: \S/);
    }
  });
});
