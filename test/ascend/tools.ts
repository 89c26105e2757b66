/**
 * The ascend-sim test programs (built with the addon when UPDRAFT_ASCEND_SIM is on, into
 * build/native/ascend/): where they are, and why a suite is skipped when they are not.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** build/native/ascend beside the addon the tests load (UPDRAFT_NATIVE_ADDON moves both). */
export function ascendToolDir(): string {
  const addon = process.env['UPDRAFT_NATIVE_ADDON']
    ? resolve(process.env['UPDRAFT_NATIVE_ADDON'])
    : join(REPO_ROOT, 'build', 'native', 'Release', 'updraft.node');
  return join(dirname(addon), '..', 'ascend');
}

export function ascendTool(name: string): { path: string; skipReason: string | null } {
  const path = join(ascendToolDir(), name);
  return {
    path,
    skipReason: existsSync(path) ? null : `${path} not built (npm run build:native with UPDRAFT_ASCEND_SIM=ON, the default)`,
  };
}
