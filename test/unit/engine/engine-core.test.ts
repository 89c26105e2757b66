/**
 * EngineCore over a scripted fake runner and the real tok512 tokenizer: stop strings, aborts that free
 * blocks at once, a failing device step that fails only its own requests, and slow consumers.
 */
import { describe, expect, it } from 'vitest';
import { EngineCore } from '../../../src/engine/engine.ts';
import type { GenerateOutput } from '../../../src/engine/inference-service.ts';
import type { SchedulerOutput } from '../../../src/engine/scheduler-output.ts';
import type { SampledToken, StepRunner } from '../../../src/model/runner.ts';
import { defaultSamplingParams } from '../../../src/sampling/params.ts';
import type { SamplingParams } from '../../../src/sampling/params.ts';
import { TextTokenizer } from '../../../src/tokenizer/index.ts';
import { TOK512_DIR } from '../../fixtures/tiny-models.ts';
import { setup } from './helpers.ts';

const tokenizer = await TextTokenizer.fromDirectory(TOK512_DIR);
/** A story the scripted model "generates" (token ids of real text, so stop strings can match). */
const STORY = tokenizer.encode('Once upon a time, there was a little girl named Lily. She loved to play outside.', { addSpecialTokens: false });

/** Emits STORY token by token (cycling), whatever the prompt; can be told to fail a step. */
class ScriptedRunner implements StepRunner {
  failWhen: ((out: SchedulerOutput) => boolean) | null = null;
  delayMs = 0;
  async execute(out: SchedulerOutput): Promise<(SampledToken | null)[]> {
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    else await Promise.resolve();
    if (this.failWhen?.(out)) throw new Error('simulated device fault');
    return out.scheduled.map((s) => (s.willSample ? { tokenId: STORY[s.sampleIndex % STORY.length]!, logprob: -0.5, top: null } : null));
  }
}

function makeEngine(runner = new ScriptedRunner()) {
  const { sched, kv } = setup({ numBlocks: 64, blockSize: 4, maxModelLen: 256, eosTokenIds: tokenizer.eosTokenIds });
  return { engine: new EngineCore(sched, runner, tokenizer, { checkIntegrity: true }), kv, runner };
}

const params = (p: Partial<SamplingParams>) => defaultSamplingParams({ temperature: 0, ...p });

async function collect(stream: AsyncIterable<GenerateOutput>): Promise<GenerateOutput[]> {
  const outputs: GenerateOutput[] = [];
  for await (const output of stream) outputs.push(output);
  return outputs;
}

describe('EngineCore', () => {
  it('streams text equal to the full decode and finishes by length', async () => {
    const { engine, kv } = makeEngine();
    // After a prompt of BOS alone the stream equals decode(outputs); after visible prompt text it keeps
    // the first piece's leading space, as a continuation does (see the detokenizer).
    const outputs = await collect(engine.addRequest({ requestId: 'a', promptTokenIds: [1], params: params({ maxTokens: 10 }) }));
    expect(outputs.map((o) => o.text).join('')).toBe(tokenizer.decode(STORY.slice(0, 10)));
    expect(outputs.at(-1)!.finishReason).toBe('length');
    expect(outputs.at(-1)!.usage).toEqual({ promptTokens: 1, completionTokens: 10, cachedPromptTokens: 0 });
    const continued = await collect(engine.addRequest({ requestId: 'b', promptTokenIds: [1, 300], params: params({ maxTokens: 10 }) }));
    expect(continued.map((o) => o.text).join('')).toBe(' ' + tokenizer.decode(STORY.slice(0, 10)));
    expect(kv.usage()).toBe(0);
  });

  it('ends at a stop string, which is not part of the text', async () => {
    const { engine, kv } = makeEngine();
    const outputs = await collect(
      engine.addRequest({ requestId: 'a', promptTokenIds: [1], params: params({ maxTokens: 40, stop: ['little girl'] }) }),
    );
    const last = outputs.at(-1)!;
    expect(outputs.map((o) => o.text).join('')).toBe('Once upon a time, there was a ');
    expect(last.finishReason).toBe('stop');
    expect(last.stopReason).toBe('little girl');
    expect(last.usage.completionTokens).toBeLessThan(STORY.length);
    expect(kv.usage()).toBe(0);
    expect(engine.numTrackedRequests).toBe(0);
  });

  it('an abort frees the request at once while others keep going', async () => {
    const { engine, kv, runner } = makeEngine();
    runner.delayMs = 2;
    const controller = new AbortController();
    const other = collect(engine.addRequest({ requestId: 'keep', promptTokenIds: [1, 5, 6, 7, 8, 9], params: params({ maxTokens: 30 }) }));
    const aborted: GenerateOutput[] = [];
    for await (const output of engine.addRequest({ requestId: 'gone', promptTokenIds: [1, 9, 9, 9, 9, 9, 9], params: params({ maxTokens: 30 }) }, controller.signal)) {
      aborted.push(output);
      if (aborted.length === 3) {
        const usageBefore = kv.usage();
        controller.abort();
        // Its blocks are back before abort() returns, not at the end of the step.
        expect(kv.usage()).toBeLessThan(usageBefore);
        expect(engine.scheduler.getRequest('gone')).toBeUndefined();
      }
    }
    expect(aborted.at(-1)!.finishReason).toBe('abort');
    const kept = await other;
    expect(kept.at(-1)!.finishReason).toBe('length');
    expect(kept.at(-1)!.usage.completionTokens).toBe(30);
    expect(kv.usage()).toBe(0);
  });

  it('an already-aborted signal never reaches the scheduler', async () => {
    const { engine } = makeEngine();
    const outputs = await collect(engine.addRequest({ requestId: 'x', promptTokenIds: [1], params: params({ maxTokens: 5 }) }, AbortSignal.abort()));
    expect(outputs).toHaveLength(1);
    expect(outputs[0]!.finishReason).toBe('abort');
    expect(engine.scheduler.hasUnfinishedRequests()).toBe(false);
  });

  it('a failed device step fails only the requests in it; the engine keeps serving', async () => {
    const { engine, kv, runner } = makeEngine();
    let failed = false;
    runner.failWhen = (out) => {
      if (failed || !out.scheduled.some((s) => s.requestId === 'doomed')) return false;
      failed = true;
      return true;
    };
    const errors: string[] = [];
    const engineWithLog = new EngineCore(engine.scheduler, runner, tokenizer, { checkIntegrity: true, onStepError: (e) => errors.push(e.message) });
    await expect(collect(engineWithLog.addRequest({ requestId: 'doomed', promptTokenIds: [1, 2], params: params({ maxTokens: 5 }) }))).rejects.toThrow(
      /simulated device fault/,
    );
    expect(errors).toEqual(['simulated device fault']);
    expect(kv.usage()).toBe(0);
    const after = await collect(engineWithLog.addRequest({ requestId: 'fine', promptTokenIds: [1, 2], params: params({ maxTokens: 5 }) }));
    expect(after.at(-1)!.finishReason).toBe('length');
  });

  it('a slow consumer receives merged outputs and loses nothing', async () => {
    const { engine } = makeEngine();
    const stream = engine.addRequest({ requestId: 'slow', promptTokenIds: [1], params: params({ maxTokens: 25 }) });
    const outputs: GenerateOutput[] = [];
    for await (const output of stream) {
      outputs.push(output);
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(outputs.length).toBeLessThan(25);
    expect(outputs.flatMap((o) => o.tokenIds)).toEqual([...STORY, ...STORY].slice(0, 25));
    expect(outputs.map((o) => o.text).join('')).toBe(tokenizer.decode([...STORY, ...STORY].slice(0, 25)));
  });

  it('stop() aborts everything and refuses new requests', async () => {
    const { engine, kv, runner } = makeEngine();
    runner.delayMs = 1;
    const pending = collect(engine.addRequest({ requestId: 'p', promptTokenIds: [1], params: params({ maxTokens: 200 }) }));
    await new Promise((r) => setTimeout(r, 10));
    await engine.stop();
    expect((await pending).at(-1)!.finishReason).toBe('abort');
    expect(kv.usage()).toBe(0);
    expect(() => engine.addRequest({ requestId: 'q', promptTokenIds: [1], params: params({}) })).toThrow(/stopped/);
  });
});
