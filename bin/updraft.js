#!/usr/bin/env node
// Launcher for the `updraft` command. Updraft runs its TypeScript sources directly on Node >= 22.12
// (type stripping). On an older system Node (e.g. Node 20) it re-runs itself on the Node 24 binary that
// `npm ci` installs as a devDependency, so `npx updraft ...` works on either.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const [major, minor] = process.versions.node.split('.').map(Number);
const modern = major > 22 || (major === 22 && minor >= 12);

if (!modern) {
  const bundled = join(root, 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(bundled)) {
    console.error(`updraft needs Node >= 22.12 (this is ${process.version}); run \`npm ci\` to install Node 24 locally.`);
    process.exit(1);
  }
  const child = spawn(bundled, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  // SIGTERM (a supervisor stopping us) goes on to the real server, which drains and exits 0; this process
  // follows it. Ctrl-C's SIGINT already reaches the whole process group: forwarding it would make it a
  // second signal, which means "abort now", so it is only kept from killing this process early.
  for (const signal of ['SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  process.on('SIGINT', () => {});
  child.on('exit', (code, signal) => process.exit(code ?? (signal === 'SIGINT' ? 130 : 1)));
} else {
  const { main } = await import('../src/cli/main.ts');
  process.exitCode = await main(process.argv.slice(2));
}
