/**
 * The process_logits inputs the runner builds (src/sampling/logits-inputs.ts through
 * ModelRunner.prepare): nothing at all for steps without processing, incrementally maintained
 * penalty lists, the async-scheduling pending token, logit_bias with the min_tokens bans, graph
 * buckets of the list dims, structured output masks, and the scheduler keeping constrained requests
 * off placeholders.
 */
import { describe, expect, it } from 'vitest';
import type { Program } from '../../../src/device/device.ts';
import type { StepRequest, StepResult } from '../../../src/device/program.ts';
import { KVCacheManager } from '../../../src/kv/kv-cache-manager.ts';
import { Request } from '../../../src/engine/request.ts';
import { Scheduler } from '../../../src/engine/scheduler.ts';
import type { SchedulerOutput } from '../../../src/engine/scheduler-output.ts';
import { ModelRunner } from '../../../src/model/runner.ts';
import type { RunnerOptions } from '../../../src/model/runner.ts';
import { DIM, INPUT, MAX_BIAS_TOKENS, OUTPUT } from '../../../src/model/step-io.ts';
import { defaultSamplingParams } from '../../../src/sampling/params.ts';
import type { SamplingParams } from '../../../src/sampling/params.ts';
import { compileJsonSchema, GrammarMatcher, MAX_WHITESPACE_RUN, vocabularyTrie } from '../../../src/structured/index.ts';
import { TextTokenizer } from '../../../src/tokenizer/index.ts';
import { TOK512_DIR } from '../../fixtures/tiny-models.ts';

class FakeProgram implements Program {
  async step(request: StepRequest): Promise<StepResult> {
    const n = request.dims[DIM.numSeqs]!;
    return {
      [OUTPUT.sampledIds]: new Int32Array(n).fill(7),
      [OUTPUT.sampledLogprobs]: new Float32Array(n),
      [OUTPUT.topIds]: new Int32Array(0),
      [OUTPUT.topLogprobs]: new Float32Array(0),
    };
  }
  memoryUsage() {
    return { weight: 0, state: 0, activation: 0, input: 0, output: 0, total: 0 };
  }
  dispose() {}
}

const VOCAB = 64;
const EOS = 0;
const limits = { blockSize: 4, maxNumTokens: 64, maxNumSeqs: 8, maxBlocksPerSeq: 16 };

function makeScheduler(maxStepsInFlight = 1): Scheduler {
  const kv = new KVCacheManager({ numBlocks: 64, blockSize: 4, enablePrefixCaching: false });
  return new Scheduler({ maxNumSeqs: 8, maxNumBatchedTokens: 64, maxModelLen: 64, enableChunkedPrefill: true, eosTokenIds: [EOS], maxStepsInFlight }, kv);
}

function makeRunner(options: RunnerOptions = {}): ModelRunner {
  return new ModelRunner(new FakeProgram(), limits, { logits: { vocabSize: VOCAB, eosTokenIds: [EOS], vocabulary: null }, ...options });
}

function request(id: string, prompt: number[], params: Partial<SamplingParams>): Request {
  return new Request({ requestId: id, promptTokenIds: prompt, params: defaultSamplingParams({ maxTokens: 20, ...params }) });
}

const ints = (step: StepRequest, name: string) => [...(step.inputs[name] as Int32Array)];
const floats = (step: StepRequest, name: string) => [...(step.inputs[name] as Float32Array)];

/** Row `row` of a [R, n] input, up to its first -1 (the list itself). */
function listOf(step: StepRequest, name: string, row: number, dim: string): number[] {
  const n = step.dims[dim]!;
  const all = ints(step, name).slice(row * n, (row + 1) * n);
  const end = all.indexOf(-1);
  return end < 0 ? all : all.slice(0, end);
}

/** Schedules, prepares and applies one step with `sampled` for every sampling entry. */
function runStep(sched: Scheduler, runner: ModelRunner, sampled: number | ((id: string) => number)): { out: SchedulerOutput; step: StepRequest } {
  const out = sched.schedule();
  const step = runner.prepare(out);
  sched.updateFromOutput(out, out.scheduled.map((s) => (typeof sampled === 'number' ? sampled : sampled(s.requestId))));
  return { out, step };
}

describe('process_logits inputs', () => {
  it('a step where no request uses processing sends numProcessedSeqs = 0 and no data', () => {
    const sched = makeScheduler();
    sched.addRequest(request('a', [1, 2, 3], {}));
    const { step } = runStep(sched, makeRunner(), 5);
    expect(step.dims).toMatchObject({ [DIM.numProcessedSeqs]: 0, [DIM.numPenaltyTokens]: 0, [DIM.numBiasTokens]: 0, [DIM.maskWords]: 0 });
    for (const name of [INPUT.logitsFlags, INPUT.penalties, INPUT.penaltyTokenIds, INPUT.biasIds, INPUT.allowedMask]) expect(step.inputs[name]!.length).toBe(0);
  });

  it('penalty lists: prompt tokens only with a repetition penalty, output counts kept incrementally', () => {
    const sched = makeScheduler();
    const runner = makeRunner();
    sched.addRequest(request('rep', [5, 6, 5, 7], { repetitionPenalty: 1.3, presencePenalty: 0.5 }));
    sched.addRequest(request('freq', [5, 6], { frequencyPenalty: -1 }));
    sched.addRequest(request('plain', [9], {}));
    const outputs = [6, 9, 6, 30];
    let step!: StepRequest;
    for (const token of outputs) step = runStep(sched, runner, token).step;
    // The last step saw the first three outputs (the fourth was sampled by it).
    expect(step.dims[DIM.numProcessedSeqs]).toBe(3);
    expect(ints(step, INPUT.logitsFlags)).toEqual([1, 1, 0]);
    expect(floats(step, INPUT.penalties).slice(0, 6)).toEqual([0.5, 0, Math.fround(1.3), 0, -1, 1]);
    const pairs = (row: number) => {
      const ids = listOf(step, INPUT.penaltyTokenIds, row, DIM.numPenaltyTokens);
      const counts = ints(step, INPUT.penaltyTokenCounts).slice(row * step.dims[DIM.numPenaltyTokens]!);
      return Object.fromEntries(ids.map((id, j) => [id, counts[j]]));
    };
    expect(pairs(0)).toEqual({ 5: 0, 6: 2, 7: 0, 9: 1 });
    expect(pairs(1)).toEqual({ 6: 2, 9: 1 });
    expect(ints(step, INPUT.penaltyExtraSources)).toEqual([-1, -1, -1]);
    // Not a graph step: the exact list width.
    expect(step.dims[DIM.numPenaltyTokens]).toBe(4);
  });

  it('async scheduling: the pending sample of the previous step is named by its row, not counted on the host', () => {
    const sched = makeScheduler(2);
    const runner = makeRunner();
    sched.addRequest(request('other', [1, 2], {}));
    sched.addRequest(request('p', [3, 4], { frequencyPenalty: 1 }));
    const first = sched.schedule();
    runner.prepare(first);
    // Step 2 is scheduled while step 1 runs: p's first output is a placeholder.
    const second = sched.schedule();
    const step = runner.prepare(second);
    const row = second.scheduled.findIndex((s) => s.requestId === 'p');
    const previousRow = first.scheduled.findIndex((s) => s.requestId === 'p');
    expect(second.scheduled[row]!.numPlaceholderTokens).toBe(1);
    expect(ints(step, INPUT.penaltyExtraSources)[row]).toBe(previousRow);
    expect(ints(step, INPUT.penaltyExtraIds)).toEqual([-1, -1]);
    expect(listOf(step, INPUT.penaltyTokenIds, row, DIM.numPenaltyTokens)).toEqual([]);
    expect(ints(step, INPUT.penaltyExtraSources)[1 - row]).toBe(-1);
  });

  it('logit_bias, and the min_tokens bans (EOS and stop ids, -inf) until min_tokens outputs exist', () => {
    const sched = makeScheduler();
    const runner = makeRunner();
    sched.addRequest(request('b', [1], { logitBias: [[3, 5], [4, -100], [EOS, 7]], minTokens: 2, stopTokenIds: [9] }));
    sched.addRequest(request('i', [1], { minTokens: 1, stopTokenIds: [9], ignoreEos: true }));
    const bias = (step: StepRequest, row: number) => {
      const ids = listOf(step, INPUT.biasIds, row, DIM.numBiasTokens);
      const values = floats(step, INPUT.biasValues).slice(row * step.dims[DIM.numBiasTokens]!);
      return Object.fromEntries(ids.map((id, j) => [id, values[j]]));
    };
    const s0 = runStep(sched, runner, 5).step;
    expect(ints(s0, INPUT.logitsFlags)).toEqual([2, 2]);
    expect(bias(s0, 0)).toEqual({ 3: 5, 4: -100, [EOS]: -Infinity, 9: -Infinity });
    expect(bias(s0, 1)).toEqual({ 9: -Infinity }); // ignore_eos: EOS is no stop, so no ban
    const s1 = runStep(sched, runner, 5).step;
    expect(bias(s1, 0)).toEqual({ 3: 5, 4: -100, [EOS]: -Infinity, 9: -Infinity });
    expect(ints(s1, INPUT.logitsFlags)).toEqual([2, 0]); // 'i' has its one token
    const s2 = runStep(sched, runner, 5).step;
    expect(bias(s2, 0)).toEqual({ 3: 5, 4: -100, [EOS]: 7 });
    expect(s2.dims[DIM.numProcessedSeqs]).toBe(2);
  });

  it('graph steps bucket the list dims (powers of two from 16) and pad rows with flags 0', () => {
    const sched = makeScheduler();
    const runner = makeRunner({ useGraphs: true });
    sched.addRequest(request('a', [1, 2, 3], { repetitionPenalty: 1.1, logitBias: [[2, 1]] }));
    sched.addRequest(request('b', [4], {}));
    sched.addRequest(request('c', [5], {}));
    runStep(sched, runner, 8); // prefill: not a graph step
    const { step } = runStep(sched, runner, 8);
    expect(step.graph).toBe(true);
    expect(step.dims).toMatchObject({ [DIM.numSeqs]: 4, [DIM.numProcessedSeqs]: 4, [DIM.numPenaltyTokens]: 16, [DIM.numBiasTokens]: 16, [DIM.maskWords]: 0 });
    expect(ints(step, INPUT.logitsFlags)).toEqual([3, 0, 0, 0]);
    expect(listOf(step, INPUT.penaltyTokenIds, 0, DIM.numPenaltyTokens)).toEqual([1, 2, 3, 8]);
    expect(ints(step, INPUT.penaltyExtraSources)).toEqual([-1, -1, -1, -1]);
  });

  it('bans past the bias columns go into the mask instead', () => {
    const sched = makeScheduler();
    const vocab = 2 * MAX_BIAS_TOKENS + 64;
    const runner = new ModelRunner(new FakeProgram(), limits, { logits: { vocabSize: vocab, eosTokenIds: [EOS], vocabulary: null } });
    const stopTokenIds = Array.from({ length: MAX_BIAS_TOKENS + 10 }, (_, i) => 100 + i);
    sched.addRequest(request('s', [1], { minTokens: 1, stopTokenIds, logitBias: [[5, 2]] }));
    const { step } = runStep(sched, runner, 3);
    expect(ints(step, INPUT.logitsFlags)).toEqual([2 | 4]);
    expect(step.dims[DIM.maskWords]).toBe(Math.ceil(vocab / 32));
    const mask = step.inputs[INPUT.allowedMask] as Uint32Array;
    const allowed = (id: number) => ((mask[id >>> 5]! >>> (id & 31)) & 1) === 1;
    expect(allowed(EOS) || allowed(100) || allowed(100 + MAX_BIAS_TOKENS + 9)).toBe(false);
    expect(allowed(5) && allowed(99) && allowed(100 + MAX_BIAS_TOKENS + 10)).toBe(true);
    expect(listOf(step, INPUT.biasIds, 0, DIM.numBiasTokens)).toEqual([5]);
  });

  it('structured output: the grammar mask of each constrained row; min_tokens yields once only the end is left', async () => {
    const tok = await TextTokenizer.fromDirectory(TOK512_DIR);
    const eos = tok.eosTokenIds[0]!;
    const space = tok.encode(' x', { addSpecialTokens: false })[0]!;
    expect([...tok.tokenBytes(space)]).toEqual([0x20]);
    const kv = new KVCacheManager({ numBlocks: 64, blockSize: 4, enablePrefixCaching: false });
    const sched = new Scheduler({ maxNumSeqs: 8, maxNumBatchedTokens: 64, maxModelLen: 64, enableChunkedPrefill: true, eosTokenIds: [eos] }, kv);
    const runner = new ModelRunner(new FakeProgram(), limits, { logits: { vocabSize: 512, eosTokenIds: [eos], vocabulary: tok } });
    const grammar = compileJsonSchema({ type: 'object', properties: { a: { type: 'boolean' } }, required: ['a'], additionalProperties: false });
    sched.addRequest(request('j', [1, 2], { structuredOutput: { kind: 'json_schema', grammar }, minTokens: 40, maxTokens: 50 }));
    sched.addRequest(request('free', [3], { maxTokens: 50 }));
    // The document, then trailing whitespace up to the cap: while anything but the end is allowed, min_tokens holds.
    const doc = tok.encode('{"a":true}', { addSpecialTokens: false });
    const script = [...doc, ...Array<number>(MAX_WHITESPACE_RUN).fill(space)];
    const expected = new GrammarMatcher(grammar, vocabularyTrie(tok), [eos]);
    const words = new Uint32Array(16);
    for (let i = 0; i <= script.length; i++) {
      const { step } = runStep(sched, runner, (id) => (id === 'j' ? (script[i] ?? eos) : 11));
      const onlyEndLeft = i === script.length;
      expect(step.dims[DIM.maskWords]).toBe(16);
      expect(ints(step, INPUT.logitsFlags), `step ${i}`).toEqual([onlyEndLeft ? 4 : 4 | 2, 0]);
      expected.fillMask(words);
      const mask = [...(step.inputs[INPUT.allowedMask] as Uint32Array).subarray(0, 16)];
      expect(mask).toEqual([...words]);
      expect((mask[eos >>> 5]! >>> (eos & 31)) & 1).toBe(i >= doc.length ? 1 : 0);
      if (!onlyEndLeft) expect(listOf(step, INPUT.biasIds, 0, DIM.numBiasTokens)).toEqual([eos]);
      if (i < script.length) expected.accept(script[i]!);
    }
  });

  it('async scheduling never gives a constrained request a placeholder; others get one', () => {
    const sched = makeScheduler(2);
    const grammar = compileJsonSchema({ type: 'object' });
    sched.addRequest(request('json', [1, 2], { structuredOutput: { kind: 'json_object', grammar } }));
    sched.addRequest(request('free', [3, 4], {}));
    const first = sched.schedule();
    const second = sched.schedule();
    expect(first.scheduled.map((s) => s.requestId).sort()).toEqual(['free', 'json']);
    expect(second.scheduled.map((s) => [s.requestId, s.numPlaceholderTokens])).toEqual([['free', 1]]);
    sched.updateFromOutput(first, first.scheduled.map(() => 9));
    const third = sched.schedule();
    expect(third.scheduled.map((s) => [s.requestId, s.numPlaceholderTokens]).sort()).toEqual([['free', 1], ['json', 0]]);
    sched.checkIntegrity();
  });

  it('a runner without the model vocabulary refuses requests that need processing', () => {
    const sched = makeScheduler();
    sched.addRequest(request('a', [1], { presencePenalty: 1 }));
    const runner = new ModelRunner(new FakeProgram(), limits);
    expect(() => runner.prepare(sched.schedule())).toThrow(/need the model's vocabulary/);
  });
});
