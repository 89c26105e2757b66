import { describe, expect, it } from 'vitest';
import { BenchArgsError, benchServeHelp, parseBenchServeArgs } from '../../../bench/serve/args.ts';

const parse = (argv: string[]) => parseBenchServeArgs(argv, {}).options;

describe('updraft bench serve arguments', () => {
  it("defaults follow vllm bench serve's", () => {
    const o = parse([]);
    expect(o).toMatchObject({
      backend: 'openai', baseUrl: 'http://127.0.0.1:8000', endpoint: '/v1/completions', datasetName: 'random', numPrompts: 1000,
      randomInputLen: 1024, randomOutputLen: 128, requestRate: Infinity, burstiness: 1, maxConcurrency: null, ignoreEos: false, temperature: 0,
      goodput: null, percentiles: [90, 99], percentileMetrics: ['ttft', 'tpot', 'itl', 'e2el'], model: null, progress: true,
    });
  });

  it('parses the flags of a typical run, several-valued ones and aliases', () => {
    const o = parse([
      '--base-url', 'http://h:9/', '--endpoint=/v1/chat/completions', '--model', 'llama', '--request-rate', '16', '--burstiness', '0.5',
      '--max-concurrency', '32', '--ignore-eos', '--goodput', 'ttft:200', 'tpot:10', '--percentiles', '50,99.9', '--metadata', 'a=1', 'b=x=y',
      '--dataset-name', 'prefix', '--prefix-len', '100', '--suffix-len', '5', '--num-prefixes', '3', '--no-progress', '--extra-body', '{"top_k":5}',
    ]);
    expect(o).toMatchObject({
      baseUrl: 'http://h:9', backend: 'openai-chat', model: 'llama', requestRate: 16, burstiness: 0.5, maxConcurrency: 32, ignoreEos: true,
      goodput: { ttft: 200, tpot: 10 }, percentiles: [50, 99.9], metadata: { a: '1', b: 'x=y' }, datasetName: 'prefix', prefixLen: 100,
      suffixLen: 5, numPrefixes: 3, progress: false, extraBody: { top_k: 5 },
    });
    expect(parse(['--request-rate', 'inf']).requestRate).toBe(Infinity);
    expect(parse(['--backend', 'openai-chat']).endpoint).toBe('/v1/chat/completions');
    expect(parseBenchServeArgs(['--api-key', 'k'], {}).options.apiKey).toBe('k');
    expect(parseBenchServeArgs([], { OPENAI_API_KEY: 'env' }).options.apiKey).toBe('env');
  });

  it('rejects what cannot work, naming the flag', () => {
    const bad: [string[], RegExp][] = [
      [['--frobnicate'], /unknown option/],
      [['--num-prompts', 'x'], /--num-prompts must be an integer/],
      [['--num-prompts', '0'], /--num-prompts must be at least 1/],
      [['--request-rate', '0'], /--request-rate/],
      [['--goodput', 'ttfb:3'], /--goodput/],
      [['--goodput', 'ttft'], /KEY:VALUE/],
      [['--dataset-name', 'sonnet'], /--dataset-name/],
      [['--prompt-format', 'ids'], /--tokenizer/],
      [['--prompt-format', 'ids', '--tokenizer', 'd', '--endpoint', '/v1/chat/completions'], /completions only/],
      [['--random-range-ratio', '1'], /range-ratio/],
      [['--extra-body', '[1]'], /JSON object/],
      [['--model'], /needs a value/],
    ];
    for (const [argv, message] of bad) expect(() => parse(argv), argv.join(' ')).toThrow(message);
    expect(() => parse(['--seed', 'nan'])).toThrow(BenchArgsError);
  });

  it('has help for every flag', () => {
    expect(parseBenchServeArgs(['--help'], {}).help).toBe(true);
    expect(benchServeHelp()).toContain('--goodput NAME:MS...');
  });
});
