/**
 * The docs point at real code: every repository path that docs/architecture.md, docs/cli.md,
 * deploy/README.md or the README names (src/..., native/..., kernels/..., models/..., bench/...,
 * scripts/..., test/..., deploy/..., docs/...) exists. `{a,b}` lists are expanded; a path with a
 * placeholder or glob (`<op>`, `*`) must have its folder. A file moved or renamed without its docs
 * fails here.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../helpers/paths.ts';

const DOCS = ['docs/architecture.md', 'docs/cli.md', 'deploy/README.md', 'README.md'];
// Not after a letter, dot, slash or dash: "../shared/models/x", "/v1/models/{id}" and "build/native/..." are not repository paths.
const PATH = /(?<![\w./-])(?:src|native|kernels|models|bench|scripts|test|deploy|docs)\/[\w./*<>{},-]*[\w/*>}]/g;

/** "src/api/openai/{schemas,chat}.ts" → both files. */
function expand(path: string): string[] {
  const match = /\{([^}]*)\}/.exec(path);
  if (!match) return [path];
  return match[1]!.split(',').flatMap((part) => expand(path.replace(match[0], part)));
}

/** What must exist for a mentioned path: itself, or for a pattern the folder before its first wildcard. */
function mustExist(path: string): string {
  const wildcard = path.search(/[*<]/);
  if (wildcard < 0) return path.replace(/\/$/, '');
  return path.slice(0, path.lastIndexOf('/', wildcard));
}

function mentionedPaths(text: string): string[] {
  return [...new Set([...text.matchAll(PATH)].flatMap((m) => expand(m[0].replace(/[.,]+$/, ''))))];
}

describe('paths named in the docs', () => {
  it('finds what it should in a sample', () => {
    expect(mentionedPaths('see src/api/openai/{schemas,chat}.ts, kernels/cpu/<op>.cc and ../shared/models/x, GET /v1/models/{id}.')).toEqual([
      'src/api/openai/schemas.ts',
      'src/api/openai/chat.ts',
      'kernels/cpu/<op>.cc',
    ]);
    expect(mustExist('kernels/cpu/<op>.cc')).toBe('kernels/cpu');
    expect(mustExist('src/engine/sched-*.ts')).toBe('src/engine');
  });

  it.each(DOCS)('%s: every src/, native/, kernels/... path exists', (doc) => {
    const paths = mentionedPaths(readFileSync(join(REPO_ROOT, doc), 'utf-8'));
    expect(paths.length).toBeGreaterThan(0);
    const missing = paths.filter((path) => !existsSync(join(REPO_ROOT, mustExist(path))));
    expect(missing, `${doc} names paths that do not exist`).toEqual([]);
  });

  it('the architecture page follows a request through the layers it names', () => {
    const paths = mentionedPaths(readFileSync(join(REPO_ROOT, 'docs/architecture.md'), 'utf-8'));
    for (const file of ['src/api/app.ts', 'src/api/openai/chat.ts', 'src/engine/local-service.ts', 'src/engine/engine.ts', 'src/engine/scheduler.ts', 'src/model/runner.ts', 'native/src/program.cc', 'src/api/sse.ts']) {
      expect(paths, file).toContain(file);
    }
  });
});
