/**
 * The README's quick start works as written: its first command's server (`--model
 * ../shared/models/stories260K`, run from the repository root) answers the "Use it" section's curl
 * commands (run with curl) and its TypeScript OpenAI SDK example (run with node), the URL changed to
 * the test server's port and nothing else. The Python example cannot run here (no `openai` Python
 * package, no PyPI): it is parsed with python3 when present, and must use the same base URL and model
 * as the TypeScript one.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HAS_SHARED_MODELS, REPO_ROOT, SHARED_SKIP_REASON, scratchDir } from '../helpers/paths.ts';
import { spawnServe, type CliServer } from './reliability-helpers.ts';

const run = promisify(execFile);
const README = readFileSync(join(REPO_ROOT, 'README.md'), 'utf-8');
const README_URL = 'http://127.0.0.1:8000';

/** The fenced blocks of one `## ` section, by language. */
function sectionBlocks(title: string): Array<{ lang: string; code: string }> {
  const start = README.indexOf(`\n## ${title}\n`);
  expect(start, `README section "${title}"`).toBeGreaterThanOrEqual(0);
  const end = README.indexOf('\n## ', start + 1);
  const section = README.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/^```(\w+)\n([\s\S]*?)^```$/gm)].map((m) => ({ lang: m[1]!, code: m[2]! }));
}

/** The shell commands of a block: continuation lines joined, comments dropped. */
function shellCommands(code: string): string[] {
  return code
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

/** A shell command line → argv (single quotes only, as the README writes them). */
function argv(command: string): string[] {
  return [...command.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]!);
}

const setUp = sectionBlocks('Set-up: two commands');
const useIt = sectionBlocks('Use it');

describe('the README quick start', () => {
  it('has the two commands, then curl and OpenAI SDK examples in TypeScript and Python', () => {
    expect(shellCommands(setUp[0]!.code)).toHaveLength(2);
    expect(useIt.map((b) => b.lang)).toEqual(['sh', 'ts', 'python']);
    expect(shellCommands(useIt[0]!.code).every((c) => c.startsWith('curl '))).toBe(true);
    expect(useIt[1]!.code).toMatch(/from 'openai'/);
    expect(useIt[2]!.code).toMatch(/from openai import OpenAI/);
  });

  it('uses the same base URL and model in both SDK examples', () => {
    const ts = useIt[1]!.code;
    const py = useIt[2]!.code;
    expect(ts).toContain(`baseURL: '${README_URL}/v1'`);
    expect(py).toContain(`base_url="${README_URL}/v1"`);
    const model = /model: '([^']+)'/.exec(ts)![1]!;
    expect(py).toContain(`model="${model}"`);
    // The served name is the --model argument of the first command.
    expect(setUp[0]!.code).toContain(`--model ${model}`);
  });

  it.skipIf(!existsSync('/usr/bin/python3') && !existsSync('/usr/local/bin/python3'))('has a Python example that parses', async () => {
    const file = join(await scratchDir('readme-py'), 'example.py');
    await writeFile(file, useIt[2]!.code);
    await run('python3', ['-c', 'import ast, sys; ast.parse(open(sys.argv[1]).read())', file]);
  });
});

describe.skipIf(!HAS_SHARED_MODELS)(`the README examples against its first command's server${HAS_SHARED_MODELS ? '' : ` (skipped: ${SHARED_SKIP_REASON})`}`, () => {
  let server: CliServer;
  beforeAll(async () => {
    // `npm start -- --model ../shared/models/stories260K` from the repository root (spawnServe adds --port 0).
    const command = shellCommands(setUp[0]!.code)[0]!;
    const model = /--model (\S+)/.exec(command)![1]!;
    server = await spawnServe(['--model', model]);
  });
  afterAll(() => server?.kill());

  it('answers the curl commands', async () => {
    const commands = shellCommands(useIt[0]!.code);
    expect(commands).toHaveLength(2);
    for (const command of commands) {
      const args = argv(command.replaceAll(README_URL, server.url)).slice(1);
      const { stdout } = await run('curl', ['-sS', '--fail-with-body', ...args]);
      if (args.includes('-N')) {
        expect(stdout).toMatch(/^data: \{.*"chat\.completion\.chunk"/m);
        expect(stdout.trimEnd()).toMatch(/data: \[DONE\]$/);
      } else {
        expect((JSON.parse(stdout) as { choices: { text: string }[] }).choices[0]!.text.length).toBeGreaterThan(0);
      }
    }
  });

  it('runs the TypeScript SDK example and streams text', async () => {
    const openai = pathToFileURL(join(REPO_ROOT, 'node_modules', 'openai', 'index.mjs')).href;
    const code = useIt[1]!.code.replaceAll(README_URL, server.url).replace(`from 'openai'`, `from '${openai}'`);
    const file = join(await scratchDir('readme-ts'), 'example.mjs');
    await writeFile(file, code);
    const { stdout } = await run(process.execPath, [file], { cwd: REPO_ROOT, timeout: 60_000 });
    expect(stdout.trim().length).toBeGreaterThan(10);
  });
});
