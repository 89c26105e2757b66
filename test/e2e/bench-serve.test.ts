/**
 * `updraft bench serve` end to end: against a real Updraft server (CPU backend, tiny model) it completes
 * every request with sane metrics; against a stub server that fails requests in every way a server can
 * (an HTTP error, an error event mid-stream, a cut connection, a stream that never ends) it counts them
 * as failed and still reports.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBenchServeArgs } from '../../bench/serve/args.ts';
import { benchServe, type BenchIo } from '../../bench/serve/main.ts';
import { main } from '../../src/cli/main.ts';
import { tinyModelDir } from '../fixtures/tiny-models.ts';
import { startTestServer, type TestServer } from './harness.ts';

const modelDir = await tinyModelDir('tiny-llama');

function quietIo(): BenchIo & { lines: string[] } {
  const lines: string[] = [];
  return { lines, out: (line) => lines.push(line), progress: { isTTY: false, write: () => true } };
}

async function bench(argv: string[], io = quietIo()) {
  const { options } = parseBenchServeArgs(['--disable-tqdm', ...argv], {});
  return { ...(await benchServe(options, io)), lines: io.lines };
}

describe('bench serve against Updraft (CPU, tiny-llama)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(modelDir, { maxNumSeqs: 8 });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('random 32 in / 16 out, 20 requests at concurrency 4: all complete, metrics are sane, JSON is written', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'updraft-bench-'));
    const file = join(dir, 'result.json');
    const { result, lines } = await bench([
      '--base-url', server.url, '--tokenizer', modelDir, '--num-prompts', '20', '--random-input-len', '32', '--random-output-len', '16',
      '--ignore-eos', '--max-concurrency', '4', '--seed', '1', '--save-result', '--result-filename', file,
    ]);
    expect(result['completed']).toBe(20);
    expect(result['failed']).toBe(0);
    expect(result['model_id']).toBe(modelDir); // asked from /v1/models
    expect(result['total_input_tokens']).toBe(20 * 32);
    expect(result['total_output_tokens']).toBe(20 * 16);
    expect(result['output_lens']).toEqual(new Array(20).fill(16));
    expect(result['max_concurrency']).toBe(4);
    const n = (key: string) => result[key] as number;
    expect(n('request_throughput')).toBeGreaterThan(0);
    expect(n('output_throughput')).toBeCloseTo((20 * 16) / n('duration'), 6);
    expect(n('median_ttft_ms')).toBeGreaterThan(0);
    expect(n('median_tpot_ms')).toBeGreaterThan(0);
    expect(n('p99_ttft_ms')).toBeGreaterThanOrEqual(n('median_ttft_ms'));
    expect(n('mean_e2el_ms')).toBeGreaterThan(n('mean_ttft_ms'));
    expect(n('mean_e2el_ms')).toBeLessThan(n('duration') * 1000);
    expect(n('max_concurrent_requests')).toBeLessThanOrEqual(20);
    for (const itl of result['itls'] as number[][]) expect(itl.length).toBeLessThanOrEqual(15);
    expect((result['ttfts'] as number[]).every((t) => t > 0)).toBe(true);
    expect(lines.join('\n')).toContain('============ Serving Benchmark Result ============');
    expect(JSON.parse(await readFile(file, 'utf-8'))).toMatchObject({ completed: 20, backend: 'openai', num_prompts: 20 });
  });

  it('chat endpoint, shared-prefix dataset, Poisson arrivals', async () => {
    const { result } = await bench([
      '--base-url', server.url, '--model', modelDir, '--tokenizer', modelDir, '--endpoint', '/v1/chat/completions', '--dataset-name', 'prefix',
      '--prefix-len', '64', '--suffix-len', '8', '--num-prefixes', '2', '--random-output-len', '8', '--num-prompts', '6', '--request-rate', '40',
      '--ignore-eos',
    ]);
    expect(result).toMatchObject({ completed: 6, failed: 0, backend: 'openai-chat', request_rate: 40, total_output_tokens: 48 });
    expect(result['mean_tpot_ms'] as number).toBeGreaterThan(0);
  });
});

/** A server that fails requests on purpose: by arrival order n = 1, 2, ... */
function stubServer(behaviour: (n: number, res: ServerResponse) => void): Promise<{ url: string; server: Server }> {
  let n = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => behaviour(++n, res));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server })));
}

const event = (res: ServerResponse, payload: object | string) => res.write(`data: ${typeof payload === 'string' ? payload : JSON.stringify(payload)}\n\n`);
const textChunk = (text: string) => ({ object: 'text_completion', choices: [{ index: 0, text, finish_reason: null }] });

describe('bench serve against a failing server', () => {
  const servers: Server[] = [];
  afterAll(() => {
    for (const s of servers) s.closeAllConnections(), s.close();
  });

  it('counts HTTP errors, error events, cut connections as failed, and reports the rest', async () => {
    const { url, server } = await stubServer((n, res) => {
      if (n % 5 === 1) {
        res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'boom', type: 'server_error' } }));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      event(res, textChunk('a'));
      if (n % 5 === 2) {
        event(res, { error: { message: 'engine died', type: 'server_error' } });
        event(res, '[DONE]');
        res.end();
      } else if (n % 5 === 3) {
        setTimeout(() => res.destroy(), 5);
      } else {
        setTimeout(() => {
          event(res, textChunk('b'));
          event(res, textChunk('c'));
          event(res, { object: 'text_completion', choices: [{ index: 0, text: '', finish_reason: 'length' }] });
          event(res, { object: 'text_completion', choices: [], usage: { prompt_tokens: 8, completion_tokens: 3 } });
          event(res, '[DONE]');
          res.end();
        }, 5);
      }
    });
    servers.push(server);
    const { result, lines } = await bench(['--base-url', url, '--model', 'stub', '--num-prompts', '10', '--random-input-len', '8', '--random-output-len', '3', '--ready-check-timeout-sec', '0']);
    expect(result['completed']).toBe(4);
    expect(result['failed']).toBe(6);
    expect(result['total_output_tokens']).toBe(12);
    expect(result['output_lens']).toEqual(expect.arrayContaining([3, 0]));
    const errors = (result['errors'] as string[]).filter((e) => e !== '');
    expect(errors.filter((e) => e === 'HTTP 500: boom')).toHaveLength(2);
    expect(errors.filter((e) => e.startsWith('error in the stream: engine died'))).toHaveLength(2);
    expect(errors.filter((e) => /connection/.test(e))).toHaveLength(2);
    expect(result['mean_tpot_ms'] as number).toBeGreaterThan(0);
    expect(lines.join('\n')).toContain('Failed requests:                         6');
  });

  it('--time-limit aborts streams that never end (failed) and drops requests not yet sent', async () => {
    const { url, server } = await stubServer((n, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      event(res, textChunk('a'));
      if (n <= 2) {
        event(res, { object: 'text_completion', choices: [{ index: 0, text: '', finish_reason: 'stop' }] });
        event(res, '[DONE]');
        res.end();
      } // else: never ends
    });
    servers.push(server);
    const started = performance.now();
    const { result } = await bench(['--base-url', url, '--model', 'stub', '--num-prompts', '6', '--random-input-len', '4', '--max-concurrency', '3', '--time-limit', '0.5', '--ready-check-timeout-sec', '0']);
    expect(performance.now() - started).toBeLessThan(5000);
    expect(result['time_limit_reached']).toBe(true);
    expect(result['completed']).toBe(2);
    expect(result['failed']).toBe(3); // in flight at the limit
    expect(result['not_sent']).toBe(1);
    expect((result['errors'] as string[]).filter((e) => e.startsWith('aborted'))).toHaveLength(3);
  });

  it('an initial test request that fails stops the run with the reason', async () => {
    const { url, server } = await stubServer((_n, res) => {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'The model `nope` does not exist.' } }));
    });
    servers.push(server);
    await expect(bench(['--base-url', url, '--model', 'nope', '--num-prompts', '2', '--random-input-len', '4'])).rejects.toThrow(/HTTP 404: The model `nope` does not exist/);
  });
});

describe('updraft bench (CLI)', () => {
  it('dispatches `bench serve` and reports bad flags with exit code 2', async () => {
    expect(await main(['bench', 'serve', '--num-prompts', 'many'])).toBe(2);
    expect(await main(['bench', 'nope'])).toBe(2);
    expect(await main(['bench', '--help'])).toBe(0);
  });
});
