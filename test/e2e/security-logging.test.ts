/**
 * Issue 8, security: prompts and outputs are never logged unless the operator asks (--log-prompts).
 * The real CLI runs as a child process and everything it writes (stdout and stderr, whatever the
 * logger) is captured while it serves chat and completion requests, streamed and not, a refused one
 * and one whose client hangs up; then the same with --log-prompts, where both must appear. In-process,
 * a request that fails inside the engine (the 500 path, which logs the error) must not log them either.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiLogger } from '../../src/api/errors.ts';
import type { StepRunner } from '../../src/model/runner.ts';
import { startTestServer, type TestServer } from './harness.ts';
import { rawExchange, rawPost, spawnServe, storiesOrTiny, waitFor, type CliServer } from './reliability-helpers.ts';

const model = await storiesOrTiny();
const SECRET = 'Zanzibar-Quokka-4471 said the secret password';

interface Traffic {
  outputs: string[];
}

/** Requests carrying SECRET in every way a prompt can arrive; returns the output texts the server produced. */
async function sendTraffic(url: string): Promise<Traffic> {
  const post = (path: string, body: unknown) => fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const outputs: string[] = [];
  const completion = await post('/v1/completions', { prompt: SECRET, max_tokens: 40, ignore_eos: true, temperature: 0 });
  expect(completion.status).toBe(200);
  outputs.push(((await completion.json()) as { choices: { text: string }[] }).choices[0]!.text);
  const chat = await post('/v1/chat/completions', { messages: [{ role: 'user', content: SECRET }], max_tokens: 40, ignore_eos: true, temperature: 0.5, seed: 1 });
  expect(chat.status).toBe(200);
  outputs.push(((await chat.json()) as { choices: { message: { content: string } }[] }).choices[0]!.message.content);
  const streamed = await post('/v1/completions', { prompt: `${SECRET}, streamed`, max_tokens: 40, ignore_eos: true, stream: true, temperature: 0 });
  const sse = await streamed.text();
  outputs.push([...sse.matchAll(/"text":"((?:[^"\\]|\\.)*)"/g)].map((m) => JSON.parse(`"${m[1]!}"`) as string).join(''));
  // Refused (stop string over the limit): the 400 goes to the client, nothing about the body to the log.
  const refused = await post('/v1/completions', { prompt: SECRET, max_tokens: 4, stop: [SECRET.repeat(100)] });
  expect(refused.status).toBe(400);
  // A client that hangs up mid-stream.
  const hangUp = await rawExchange(url, rawPost('/v1/completions', { prompt: `${SECRET}, then gone`, max_tokens: 200, ignore_eos: true, stream: true }));
  await hangUp.waitFor(/"text":"[^"]+"/);
  hangUp.socket.destroy();
  for (const output of outputs) expect(output.length).toBeGreaterThan(20);
  return { outputs };
}

describe(`prompts and outputs in the logs of updraft serve (${model.name})`, () => {
  let quiet: CliServer;
  let verbose: CliServer;
  beforeAll(async () => {
    [quiet, verbose] = await Promise.all([spawnServe([model.dir]), spawnServe([model.dir, '--log-prompts'])]);
  });
  afterAll(() => {
    quiet?.kill();
    verbose?.kill();
  });

  it('never appear without --log-prompts', async () => {
    const { outputs } = await sendTraffic(quiet.url);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const log = quiet.output();
    expect(log.length).toBeGreaterThan(0);
    expect(log).not.toContain('Zanzibar');
    expect(log).not.toContain('Quokka');
    for (const output of outputs) expect(log).not.toContain(JSON.stringify(output).slice(1, -1).slice(0, 40));
  });

  it('appear with --log-prompts', async () => {
    const { outputs } = await sendTraffic(verbose.url);
    await waitFor(() => verbose.output().includes('then gone'), 5000, 'the hung-up request to be logged');
    const log = verbose.output();
    expect(log).toContain(SECRET);
    expect(log).toContain(JSON.stringify(outputs[0]!).slice(1, -1).slice(0, 40));
  });
});

describe('a request that fails inside the engine', () => {
  let server: TestServer;
  const logged: string[] = [];
  const logger: ApiLogger = { error: (message, details) => logged.push(`${message} ${JSON.stringify(details ?? {})}`) };
  const failEveryStep = (runner: StepRunner): StepRunner => ({
    execute: async (out) => {
      await runner.execute(out);
      throw new Error('kernel error (injected)');
    },
  });
  beforeAll(async () => {
    server = await startTestServer(model.dir, {}, { wrapRunner: failEveryStep, onStepError: (error) => logged.push(error.message) }, { logger });
  });
  afterAll(async () => server?.close());

  it('logs the error, not the prompt', async () => {
    const captured: string[] = [];
    const originals = { out: process.stdout.write, err: process.stderr.write, log: console.log, error: console.error, warn: console.warn, info: console.info };
    const capture = (...args: unknown[]) => void captured.push(args.map(String).join(' '));
    process.stdout.write = ((chunk: unknown) => (capture(chunk), true)) as typeof process.stdout.write;
    process.stderr.write = ((chunk: unknown) => (capture(chunk), true)) as typeof process.stderr.write;
    console.log = console.error = console.warn = console.info = capture;
    try {
      const response = await fetch(`${server.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: SECRET, max_tokens: 8 }),
      });
      expect(response.status).toBe(500);
      expect(await response.text()).not.toContain('Zanzibar');
    } finally {
      Object.assign(process.stdout, { write: originals.out });
      Object.assign(process.stderr, { write: originals.err });
      Object.assign(console, { log: originals.log, error: originals.error, warn: originals.warn, info: originals.info });
    }
    expect(logged.some((line) => line.includes('kernel error'))).toBe(true);
    for (const line of [...logged, ...captured]) expect(line).not.toContain('Zanzibar');
  });
});
