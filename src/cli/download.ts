/**
 * `updraft download REPO [--revision REV]`: fetch what `updraft serve REPO` would load (config,
 * tokenizer files, safetensors weights) into the Hugging Face cache, without serving. Prints the
 * snapshot folder on stdout (for scripts); progress and messages go to stderr.
 */
import { parseArgs } from 'node:util';
import { hubSettingsFromEnv, resolveModel } from '../model/hub.ts';
import { NO_PROGRESS } from '../model/progress.ts';
import { createProgressDisplay } from './progress.ts';

export const DOWNLOAD_HELP = `Usage: updraft download REPO [options]

Downloads the files \`updraft serve REPO\` needs (config, tokenizer, *.safetensors; not .bin/.pth or
other formats) from the Hugging Face Hub into the Hugging Face cache, shared with Python tools.
An interrupted download continues where it stopped when run again. Prints the snapshot folder.

Options:
  --revision <rev>     Branch, tag or commit (default: main)  [UPDRAFT_REVISION]
  --cache-dir <dir>    The cache (default: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub)
  --quiet              No progress output
  --help               Show this help

Environment: HF_ENDPOINT (a mirror), HF_TOKEN (gated or private repos; else the token file of
\`huggingface-cli login\`), HF_HUB_OFFLINE=1 (check the cache only).`;

export interface DownloadIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  env: NodeJS.ProcessEnv;
}

export async function downloadMain(argv: string[], io: DownloadIo = { stdout: process.stdout, stderr: process.stderr, env: process.env }): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: { revision: { type: 'string' }, 'cache-dir': { type: 'string' }, quiet: { type: 'boolean' }, help: { type: 'boolean' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    io.stderr.write(`updraft download: ${(error as Error).message}\n(see updraft download --help)\n`);
    return 2;
  }
  if (parsed.values.help) {
    io.stdout.write(`${DOWNLOAD_HELP}\n`);
    return 0;
  }
  if (parsed.positionals.length !== 1) {
    io.stderr.write(`updraft download: give one repo id, e.g. updraft download Qwen/Qwen2.5-0.5B-Instruct\n(see updraft download --help)\n`);
    return 2;
  }
  const repo = parsed.positionals[0]!;
  const revision = parsed.values.revision ?? (io.env['UPDRAFT_REVISION'] || 'main');
  const settings = hubSettingsFromEnv(io.env);
  if (parsed.values['cache-dir']) settings.cacheDir = parsed.values['cache-dir'];
  const quiet = parsed.values.quiet === true;
  const say = (message: string) => {
    if (!quiet) io.stderr.write(`${message}\n`);
  };
  try {
    const resolved = await resolveModel(repo, {
      revision,
      settings,
      log: say,
      progress: quiet ? NO_PROGRESS : createProgressDisplay({ stream: io.stderr }),
    });
    if (resolved.source === 'local') say(`${repo} is a local folder: nothing to download`);
    else if (resolved.source === 'cache') say(`using the cached snapshot (offline)`);
    io.stdout.write(`${resolved.dir}\n`);
    return 0;
  } catch (error) {
    io.stderr.write(`updraft download: ${(error as Error).message}\n`);
    return 1;
  }
}
