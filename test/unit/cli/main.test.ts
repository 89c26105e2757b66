/**
 * The `updraft` command as users run it (`node bin/updraft.js ...`, a child process): --version prints
 * package.json's version, --help lists the subcommands, and serve, download and bench are reachable
 * (each answers its own --help); an unknown command is exit code 2.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../e2e/reliability-helpers.ts';
import { REPO_ROOT } from '../../helpers/paths.ts';

const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf-8')) as { version: string };

describe('bin/updraft.js', () => {
  it('--version and -v print the package version and nothing else', async () => {
    for (const flag of ['--version', '-v']) {
      const result = await runCli([flag]);
      expect(result.code).toBe(0);
      expect(result.output).toBe(`${pkg.version}\n`);
    }
  });

  it('--help lists serve, download and bench; no command is a usage error', async () => {
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    for (const command of ['serve [MODEL]', 'download REPO', 'bench serve', '--version']) expect(help.output).toContain(command);
    expect((await runCli([])).code).toBe(1);
    const unknown = await runCli(['srve']);
    expect(unknown.code).toBe(2);
    expect(unknown.output).toMatch(/unknown command "srve"/);
  });

  it('reaches each subcommand: serve, download, bench serve', async () => {
    const [serve, download, bench] = await Promise.all([runCli(['serve', '--help']), runCli(['download', '--help']), runCli(['bench', 'serve', '--help'])]);
    expect(serve.code, serve.output).toBe(0);
    expect(serve.output).toMatch(/--max-num-seqs/);
    expect(download.code, download.output).toBe(0);
    expect(download.output).toMatch(/^Usage: updraft download REPO/);
    expect(bench.code, bench.output).toBe(0);
    expect(bench.output).toMatch(/--base-url/);
    expect(bench.output).toMatch(/--request-rate/);
  });
});
