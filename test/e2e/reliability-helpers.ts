/**
 * Shared by the reliability, security and fuzz tests: the real CLI as a child process, raw HTTP over
 * a socket (to hang up at chosen moments or send what fetch refuses to), SSE reading, polling.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { envName } from '../../src/cli/args.ts';
import { SERVE_FLAGS } from '../../src/config.ts';
import { tinyModelDir } from '../fixtures/tiny-models.ts';
import { HAS_SHARED_MODELS, REPO_ROOT, SHARED_MODELS } from '../helpers/paths.ts';

/** stories260K when ../shared is there, else the committed tiny model; `name` says which ran. */
export async function storiesOrTiny(): Promise<{ dir: string; name: string }> {
  if (HAS_SHARED_MODELS) return { dir: join(SHARED_MODELS, 'stories260K'), name: 'stories260K' };
  return { dir: await tinyModelDir('tiny-llama'), name: 'tiny-llama' };
}

export async function waitFor(condition: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

export interface CliServer {
  url: string;
  child: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Resolves with the exit code (null when killed by a signal) and signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(): void;
}

/** `node bin/updraft.js serve --port 0 --num-threads 2 ARGS` (ARGS win) on this Node (24); resolves once it listens. */
export async function spawnServe(args: string[], env: Record<string, string> = {}, options: { node?: string; startTimeoutMs?: number } = {}): Promise<CliServer> {
  // The server's settings come from the arguments alone (no UPDRAFT_<FLAG> from this environment).
  const flagVariables = new Set(SERVE_FLAGS.map((spec) => envName(spec.flag)));
  const cleanEnv: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (!flagVariables.has(key) && value !== undefined) cleanEnv[key] = value;
  const child = spawn(options.node ?? process.execPath, [join(REPO_ROOT, 'bin', 'updraft.js'), 'serve', '--port', '0', '--num-threads', '2', ...args], {
    cwd: REPO_ROOT,
    env: { ...cleanEnv, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let exitedEarly = false;
  void exited.then(() => (exitedEarly = true));
  const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
  let url: string | null = null;
  while (url === null) {
    const match = /listening on (http:\/\/[^\s"]+)|"url":"(http:\/\/[^"]+)"/.exec(output);
    if (match) url = (match[1] ?? match[2])!;
    else if (exitedEarly) throw new Error(`updraft serve exited before listening:\n${output}`);
    else if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`updraft serve did not start in time:\n${output}`);
    } else await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { url, child, output: () => output, exited, kill: () => child.kill('SIGKILL') };
}

/** Runs `node bin/updraft.js ARGS` to its end (for commands that should fail at startup). */
export function runCli(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<{ code: number | null; output: string; ms: number }> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'updraft.js'), ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`timed out after ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output, ms: Date.now() - start });
    });
  });
}

export interface RawExchange {
  socket: Socket;
  /** Every byte received so far, as text. */
  received(): string;
  /** Resolves once the received text matches. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Resolves when the server closes the connection. */
  closed: Promise<void>;
}

/** Opens a socket to the server and writes `request` (raw HTTP/1.1 bytes) as is. */
export async function rawExchange(url: string, request: string | Buffer): Promise<RawExchange> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.on('error', () => {});
  let received = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (received += chunk));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write(request);
  return {
    socket,
    received: () => received,
    waitFor: async (pattern, timeoutMs = 10_000) => waitFor(() => pattern.test(received), timeoutMs, `${pattern} in the response`),
    closed,
  };
}

/** A POST with a JSON body as raw HTTP/1.1. */
export function rawPost(path: string, body: unknown, headers: Record<string, string> = {}): string {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const lines = [`POST ${path} HTTP/1.1`, 'Host: localhost', 'Content-Type: application/json', `Content-Length: ${Buffer.byteLength(text)}`];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  return `${lines.join('\r\n')}\r\n\r\n${text}`;
}

/** The `data:` payloads of an SSE body, in order. */
export function sseData(text: string): string[] {
  return [...text.matchAll(/^data: (.*)$/gm)].map((match) => match[1]!);
}

export interface OpenAIErrorShape {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** Whether a parsed body has exactly OpenAI's error shape. */
export function isOpenAIError(body: unknown): body is OpenAIErrorShape {
  if (typeof body !== 'object' || body === null || !('error' in body)) return false;
  const error = (body as { error: unknown }).error;
  if (typeof error !== 'object' || error === null) return false;
  const e = error as Record<string, unknown>;
  return (
    typeof e['message'] === 'string' &&
    e['message'] !== '' &&
    typeof e['type'] === 'string' &&
    (e['param'] === null || typeof e['param'] === 'string') &&
    (e['code'] === null || typeof e['code'] === 'string')
  );
}
