/**
 * ModelRunner.prepare: the step inputs it builds from a SchedulerOutput, including the padding of
 * decode steps to graph buckets.
 */
import { describe, expect, it } from 'vitest';
import type { Program } from '../../../src/device/device.ts';
import type { StepRequest, StepResult } from '../../../src/device/program.ts';
import { ModelRunner, graphBucket } from '../../../src/model/runner.ts';
import { DIM, INPUT, OUTPUT } from '../../../src/model/step-io.ts';
import { setup, req } from '../engine/helpers.ts';

class RecordingProgram implements Program {
  requests: StepRequest[] = [];
  async step(request: StepRequest): Promise<StepResult> {
    this.requests.push(request);
    const numSeqs = request.dims[DIM.numSeqs]!;
    const numTop = request.dims[DIM.numTopLogprobs]!;
    return {
      [OUTPUT.sampledIds]: Int32Array.from({ length: numSeqs }, (_, i) => 100 + i),
      [OUTPUT.sampledLogprobs]: new Float32Array(numSeqs).fill(-1),
      [OUTPUT.topIds]: new Int32Array(numSeqs * numTop),
      [OUTPUT.topLogprobs]: new Float32Array(numSeqs * numTop),
    };
  }
  memoryUsage() {
    return { weight: 0, state: 0, activation: 0, input: 0, output: 0, total: 0 };
  }
  dispose() {}
}

const limits = { blockSize: 4, maxNumTokens: 64, maxNumSeqs: 8, maxBlocksPerSeq: 32 };

/** Runs prefill steps until every request decodes, returning the scheduler at its first pure-decode step. */
function decodingScheduler(numRequests: number) {
  const { sched } = setup({ numBlocks: 128, blockSize: 4, maxNumSeqs: 8, maxNumBatchedTokens: 64 });
  for (let i = 0; i < numRequests; i++) sched.addRequest(req(`r${i}`, 5 + i, { maxTokens: 10, ignoreEos: true }));
  const prefill = sched.schedule();
  sched.updateFromOutput(prefill, prefill.scheduled.map(() => 7));
  return sched;
}

describe('ModelRunner.prepare', () => {
  it('lays out a mixed step: positions, slot mapping, block tables, query ranges', () => {
    const { sched } = setup({ numBlocks: 64, blockSize: 4, maxNumSeqs: 8, maxNumBatchedTokens: 64 });
    sched.addRequest(req('a', 6, { maxTokens: 4 }));
    sched.addRequest(req('b', 3, { maxTokens: 4 }));
    const out = sched.schedule();
    const runner = new ModelRunner(new RecordingProgram(), limits);
    const step = runner.prepare(out);
    expect(step.graph).toBeUndefined();
    expect(step.dims).toMatchObject({ [DIM.numTokens]: 9, [DIM.numSeqs]: 2 });
    expect([...(step.inputs[INPUT.positions] as Int32Array)]).toEqual([0, 1, 2, 3, 4, 5, 0, 1, 2]);
    expect([...(step.inputs[INPUT.queryStartLoc] as Int32Array)]).toEqual([0, 6, 9]);
    expect([...(step.inputs[INPUT.seqLens] as Int32Array)]).toEqual([6, 3]);
    expect([...(step.inputs[INPUT.logitsIndices] as Int32Array)]).toEqual([5, 8]);
    const a = out.scheduled[0]!.blockIds;
    const slots = [...(step.inputs[INPUT.slotMapping] as Int32Array)];
    expect(slots.slice(0, 6)).toEqual([0, 1, 2, 3, 4, 5].map((p) => a[Math.floor(p / 4)]! * 4 + (p % 4)));
  });

  it('without graphs, a decode step keeps its exact shape', () => {
    const sched = decodingScheduler(3);
    const step = new ModelRunner(new RecordingProgram(), limits).prepare(sched.schedule());
    expect(step.dims[DIM.numSeqs]).toBe(3);
    expect(step.graph).toBeUndefined();
  });

  it('with graphs, a decode step is padded to its bucket with rows that touch nothing', async () => {
    const sched = decodingScheduler(3);
    const out = sched.schedule();
    const program = new RecordingProgram();
    const runner = new ModelRunner(program, limits, { useGraphs: true });
    const sampled = await runner.execute(out);
    const step = program.requests[0]!;
    expect(step.graph).toBe(true);
    expect(step.dims).toMatchObject({ [DIM.numSeqs]: 4, [DIM.numTokens]: 4, [DIM.maxBlocksPerSeq]: 16 });
    expect((step.inputs[INPUT.slotMapping] as Int32Array)[3]).toBe(-1);
    expect((step.inputs[INPUT.seqLens] as Int32Array)[3]).toBe(0);
    expect([...(step.inputs[INPUT.queryStartLoc] as Int32Array)]).toEqual([0, 1, 2, 3, 4]);
    expect([...(step.inputs[INPUT.blockTables] as Int32Array).subarray(3 * 16, 4 * 16)]).toEqual(new Array(16).fill(-1));
    // The padding row's sample is dropped: one result per real sequence.
    expect(sampled.map((s) => s?.tokenId)).toEqual([100, 101, 102]);
  });

  it('buckets: 1, 2, 4, then multiples of 8, never past the limit', () => {
    expect([1, 2, 3, 4, 5, 8, 9, 17].map((n) => graphBucket(n, 64))).toEqual([1, 2, 4, 4, 8, 8, 16, 24]);
    expect(graphBucket(9, 12)).toBeNull();
  });
});
