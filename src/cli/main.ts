/**
 * The `updraft` command: dispatches subcommands. Returns the process exit code.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../config.ts';
import { parseServeArgs, serveHelp } from './args.ts';
import { serve } from './serve.ts';

const USAGE = `Usage: updraft <command> [options]

Commands:
  serve [MODEL]   Serve an OpenAI-compatible API for MODEL (a folder or a Hub id)
  download REPO   Fetch a Hub model into the Hugging Face cache without serving
  bench serve     Benchmark any OpenAI-compatible server (updraft bench serve --help)

Options:
  --version       Print the version
  --help          Show this help (updraft serve --help for the server's options)`;

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf-8')) as { version: string };
  return pkg.version;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    console.log(USAGE);
    return command === undefined ? 1 : 0;
  }
  if (command === '--version' || command === '-v') {
    console.log(version());
    return 0;
  }
  if (command === 'serve') {
    try {
      const { config, help } = parseServeArgs(rest);
      if (help) {
        console.log(serveHelp());
        return 0;
      }
      return await serve(config);
    } catch (error) {
      if (error instanceof ConfigError) {
        console.error(`updraft serve: ${error.message}\n(see updraft serve --help)`);
        return 2;
      }
      throw error;
    }
  }
  if (command === 'bench') {
    // Loaded only when asked for: the server's start-up path does not carry the benchmark.
    const { benchMain } = await import('../../bench/serve/main.ts');
    return await benchMain(rest);
  }
  if (command === 'download') {
    const { downloadMain } = await import('./download.ts');
    return await downloadMain(rest);
  }
  console.error(`updraft: unknown command "${command}"\n\n${USAGE}`);
  return 2;
}
