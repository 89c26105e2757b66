/**
 * docs/cli.md against the code: its flag table is what src/config.ts's flag table generates, it
 * documents every metric name, and the subcommands it documents exist.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { documentedFlagTable, renderFlagTable } from '../../../src/cli/cli-docs.ts';
import { DOWNLOAD_HELP } from '../../../src/cli/download.ts';
import { METRIC_NAMES } from '../../../src/metrics/server-metrics.ts';
import { REPO_ROOT } from '../../helpers/paths.ts';

const doc = readFileSync(join(REPO_ROOT, 'docs', 'cli.md'), 'utf-8');

describe('docs/cli.md', () => {
  it('has the flag table src/config.ts generates (run `node src/cli/cli-docs.ts --write` after changing a flag)', () => {
    expect(documentedFlagTable(doc)).toBe(renderFlagTable());
  });

  it('lists every metric under both names', () => {
    for (const names of Object.values(METRIC_NAMES)) for (const name of names) if (name !== null) expect(doc, name).toContain(`\`${name}`);
  });

  it('documents the download options that exist', () => {
    for (const option of ['--revision', '--cache-dir', '--quiet']) {
      expect(DOWNLOAD_HELP).toContain(option);
      expect(doc).toContain(option);
    }
  });
});
