/** Locations the model tests share. */
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/**
 * ../shared beside the checkout: reference checkpoints that CI machines may not have. UPDRAFT_SHARED_MODELS
 * points elsewhere (the GPU machine gets a copy in .device/models: ../shared does not travel there).
 */
export const SHARED_MODELS = process.env['UPDRAFT_SHARED_MODELS']
  ? resolve(process.env['UPDRAFT_SHARED_MODELS'])
  : join(REPO_ROOT, '..', 'shared', 'models');
export const HAS_SHARED_MODELS = existsSync(join(SHARED_MODELS, 'stories260K', 'model.safetensors'));
export const SHARED_SKIP_REASON = `reference checkpoints not found at ${SHARED_MODELS} (../shared is absent on this machine; UPDRAFT_SHARED_MODELS overrides)`;

export async function scratchDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `updraft-${prefix}-`));
}
