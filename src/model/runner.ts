/**
 * ModelRunner: turns a SchedulerOutput into one device step and the step's results into sampled tokens.
 *
 * Host work per step is a few linear passes over preallocated typed arrays (no per-step allocation
 * beyond the results). Two input buffer sets alternate so a step can be prepared while the previous
 * one is still reading its inputs (the overlap of issue 4 builds on this).
 */
import type { Program } from '../device/device.ts';
import type { StepRequest } from '../device/program.ts';
import type { TopLogprob } from '../engine/inference-service.ts';
import type { SchedulerOutput } from '../engine/scheduler-output.ts';
import { LogitsProcessor, type LogitsProcessingOptions } from '../sampling/logits-inputs.ts';
import { MAX_TOP_LOGPROBS } from '../sampling/params.ts';
import { DIM, INPUT, OUTPUT } from './step-io.ts';

export interface RunnerLimits {
  blockSize: number;
  /** Max tokens per step (the scheduler's token budget). */
  maxNumTokens: number;
  /** Max sequences per step. */
  maxNumSeqs: number;
  /** Max block-table columns (ceil(maxModelLen / blockSize)). */
  maxBlocksPerSeq: number;
}

export interface RunnerOptions {
  /** Pad decode steps to bucket shapes and ask for graph replay (devices whose info says supportsGraphs). */
  useGraphs?: boolean;
  /**
   * The model's vocabulary for penalties, logit_bias, min_tokens bans and structured output
   * (src/sampling/logits-inputs.ts); without it, requests that use them fail their step.
   */
  logits?: LogitsProcessingOptions;
}

/** Decode batch sizes that get a graph: 1, 2, 4, then multiples of 8 (as vLLM captures). */
export function graphBucket(numSeqs: number, maxNumSeqs: number): number | null {
  const bucket = numSeqs <= 2 ? numSeqs : numSeqs <= 4 ? 4 : Math.ceil(numSeqs / 8) * 8;
  return bucket <= maxNumSeqs ? bucket : null;
}

/** Block-table widths of graph steps are powers of two from this many columns up, so few graphs cover every context. */
const MIN_GRAPH_BLOCK_COLUMNS = 16;

function nextPowerOfTwo(n: number): number {
  return 2 ** Math.ceil(Math.log2(n));
}

export interface SampledToken {
  tokenId: number;
  logprob: number;
  /** Most likely alternatives, when the request asked for logprobs (else null). */
  top: TopLogprob[] | null;
}

/** What the engine needs of a runner; tests can substitute a fake. */
export interface StepRunner {
  /** One entry per out.scheduled entry; null where the entry does not sample this step. */
  execute(out: SchedulerOutput): Promise<(SampledToken | null)[]>;
}

/** The per-step input arrays, sized for the limits. */
class StepBuffers {
  readonly inputIds: Int32Array; // [maxNumTokens]
  readonly tokenSources: Int32Array; // [maxNumTokens]: -1, or the previous step's sequence index
  readonly positions: Int32Array; // [maxNumTokens]
  readonly slotMapping: Int32Array; // [maxNumTokens]
  readonly blockTables: Int32Array; // [maxNumSeqs, maxBlocksPerSeq]
  readonly seqLens: Int32Array; // [maxNumSeqs]
  readonly queryStartLoc: Int32Array; // [maxNumSeqs + 1]
  readonly logitsIndices: Int32Array; // [maxNumSeqs]
  readonly temperature: Float32Array; // [maxNumSeqs]
  readonly topK: Int32Array; // [maxNumSeqs]
  readonly topP: Float32Array; // [maxNumSeqs]
  readonly minP: Float32Array; // [maxNumSeqs]
  readonly seeds: BigUint64Array; // [maxNumSeqs]
  readonly sampleCounters: Int32Array; // [maxNumSeqs]

  constructor(limits: RunnerLimits) {
    const { maxNumTokens: t, maxNumSeqs: s, maxBlocksPerSeq: b } = limits;
    this.inputIds = new Int32Array(t);
    this.tokenSources = new Int32Array(t);
    this.positions = new Int32Array(t);
    this.slotMapping = new Int32Array(t);
    this.blockTables = new Int32Array(s * b);
    this.seqLens = new Int32Array(s);
    this.queryStartLoc = new Int32Array(s + 1);
    this.logitsIndices = new Int32Array(s);
    this.temperature = new Float32Array(s);
    this.topK = new Int32Array(s);
    this.topP = new Float32Array(s);
    this.minP = new Float32Array(s);
    this.seeds = new BigUint64Array(s);
    this.sampleCounters = new Int32Array(s);
  }
}

export class ModelRunner implements StepRunner {
  readonly #program: Program;
  readonly #limits: RunnerLimits;
  readonly #buffers: [StepBuffers, StepBuffers];
  #nextBuffer = 0;

  readonly #options: RunnerOptions;
  /** requestId → its row in the previous step's samples (what placeholder tokens point at). */
  #previousSampleRows = new Map<string, number>();
  /** Penalties, biases, bans and grammar masks (the process_logits op's inputs). */
  readonly logitsProcessor: LogitsProcessor;

  constructor(program: Program, limits: RunnerLimits, options: RunnerOptions = {}) {
    this.#program = program;
    this.#limits = limits;
    this.#options = options;
    this.#buffers = [new StepBuffers(limits), new StepBuffers(limits)];
    this.logitsProcessor = new LogitsProcessor(options.logits ?? null, limits.maxBlocksPerSeq * limits.blockSize);
  }

  /** Builds the device inputs of a step (exposed for tests). */
  prepare(out: SchedulerOutput): StepRequest {
    const { blockSize, maxNumTokens, maxNumSeqs, maxBlocksPerSeq } = this.#limits;
    const numRealSeqs = out.scheduled.length;
    const numRealTokens = out.numScheduledTokens;
    if (numRealSeqs > maxNumSeqs || numRealTokens > maxNumTokens) {
      throw new Error(`step of ${numRealSeqs} sequences / ${numRealTokens} tokens exceeds the runner's ${maxNumSeqs} / ${maxNumTokens}`);
    }
    const buf = this.#buffers[this.#nextBuffer]!;
    this.#nextBuffer ^= 1;

    let numBlockColumns = 1;
    let numTopLogprobs = 0;
    for (const s of out.scheduled) {
      numBlockColumns = Math.max(numBlockColumns, s.blockIds.length);
      if (s.willSample && s.request.params.logprobs !== null) numTopLogprobs = Math.max(numTopLogprobs, s.request.params.logprobs);
    }
    if (numBlockColumns > maxBlocksPerSeq) throw new Error(`block table of ${numBlockColumns} blocks exceeds ${maxBlocksPerSeq}`);
    numTopLogprobs = Math.min(numTopLogprobs, MAX_TOP_LOGPROBS);

    // A pure decode step (one token per sequence) is padded to a bucket shape so the device can
    // replay a captured graph for it; padding sequences have seq_len 0 and slot -1, so they touch
    // nothing, and their samples are discarded.
    const bucket = this.#options.useGraphs && numRealTokens === numRealSeqs ? graphBucket(numRealSeqs, maxNumSeqs) : null;
    const numSeqs = bucket ?? numRealSeqs;
    const numTokens = bucket ?? numRealTokens;
    if (bucket !== null) {
      numBlockColumns = Math.min(maxBlocksPerSeq, nextPowerOfTwo(Math.max(numBlockColumns, MIN_GRAPH_BLOCK_COLUMNS)));
      numTopLogprobs = numTopLogprobs > 0 ? MAX_TOP_LOGPROBS : 0;
    }

    // Before #previousSampleRows moves on: pending penalty tokens point at the previous step's rows.
    const processing = this.logitsProcessor.prepare(out.scheduled, numSeqs, this.#previousSampleRows, bucket !== null);

    let row = 0;
    const sampleRows = new Map<string, number>();
    for (let seq = 0; seq < numRealSeqs; seq++) {
      const s = out.scheduled[seq]!;
      const { startPos, numScheduledTokens, tokenIds, blockIds } = s;
      buf.queryStartLoc[seq] = row;
      buf.inputIds.set(tokenIds, row);
      buf.tokenSources.fill(-1, row, row + tokenIds.length);
      // Tokens the previous step samples on the device: the device fills them in (select_tokens).
      for (let i = tokenIds.length; i < numScheduledTokens; i++) {
        const source = this.#previousSampleRows.get(s.requestId);
        if (source === undefined) throw new Error(`step ${out.stepId}: ${s.requestId} waits for a token the previous step did not sample`);
        buf.inputIds[row + i] = 0;
        buf.tokenSources[row + i] = source;
      }
      if (s.willSample) sampleRows.set(s.requestId, seq);
      for (let i = 0; i < numScheduledTokens; i++) {
        const pos = startPos + i;
        buf.positions[row + i] = pos;
        buf.slotMapping[row + i] = blockIds[Math.floor(pos / blockSize)]! * blockSize + (pos % blockSize);
      }
      row += numScheduledTokens;
      const tableRow = seq * numBlockColumns;
      for (let j = 0; j < numBlockColumns; j++) buf.blockTables[tableRow + j] = j < blockIds.length ? blockIds[j]! : -1;
      buf.seqLens[seq] = startPos + numScheduledTokens;
      buf.logitsIndices[seq] = row - 1;

      const params = s.request.params;
      buf.temperature[seq] = params.temperature;
      buf.topK[seq] = params.topK;
      buf.topP[seq] = params.topP;
      buf.minP[seq] = params.minP;
      buf.seeds[seq] = params.seed;
      buf.sampleCounters[seq] = s.sampleIndex;
    }
    this.#previousSampleRows = sampleRows;
    for (let seq = numRealSeqs; seq < numSeqs; seq++) {
      buf.queryStartLoc[seq] = row;
      buf.inputIds[row] = 0;
      buf.tokenSources[row] = -1;
      buf.positions[row] = 0;
      buf.slotMapping[row] = -1;
      buf.blockTables.fill(-1, seq * numBlockColumns, (seq + 1) * numBlockColumns);
      buf.seqLens[seq] = 0;
      buf.logitsIndices[seq] = row;
      buf.temperature[seq] = 0;
      buf.topK[seq] = 0;
      buf.topP[seq] = 1;
      buf.minP[seq] = 0;
      buf.seeds[seq] = 0n;
      buf.sampleCounters[seq] = 0;
      row++;
    }
    buf.queryStartLoc[numSeqs] = row;

    return {
      dims: {
        [DIM.numTokens]: numTokens,
        [DIM.numSeqs]: numSeqs,
        [DIM.maxBlocksPerSeq]: numBlockColumns,
        [DIM.numTopLogprobs]: numTopLogprobs,
        ...processing.dims,
      },
      inputs: {
        [INPUT.inputIds]: buf.inputIds.subarray(0, numTokens),
        [INPUT.tokenSources]: buf.tokenSources.subarray(0, numTokens),
        [INPUT.positions]: buf.positions.subarray(0, numTokens),
        [INPUT.slotMapping]: buf.slotMapping.subarray(0, numTokens),
        [INPUT.blockTables]: buf.blockTables.subarray(0, numSeqs * numBlockColumns),
        [INPUT.seqLens]: buf.seqLens.subarray(0, numSeqs),
        [INPUT.queryStartLoc]: buf.queryStartLoc.subarray(0, numSeqs + 1),
        [INPUT.logitsIndices]: buf.logitsIndices.subarray(0, numSeqs),
        [INPUT.temperature]: buf.temperature.subarray(0, numSeqs),
        [INPUT.topK]: buf.topK.subarray(0, numSeqs),
        [INPUT.topP]: buf.topP.subarray(0, numSeqs),
        [INPUT.minP]: buf.minP.subarray(0, numSeqs),
        [INPUT.seeds]: buf.seeds.subarray(0, numSeqs),
        [INPUT.sampleCounters]: buf.sampleCounters.subarray(0, numSeqs),
        ...processing.inputs,
      },
      ...(bucket !== null ? { graph: true } : {}),
    };
  }

  async execute(out: SchedulerOutput): Promise<(SampledToken | null)[]> {
    if (out.scheduled.length === 0) return [];
    const request = this.prepare(out);
    const result = await this.#program.step(request);
    const numTop = request.dims[DIM.numTopLogprobs]!;
    const ids = result[OUTPUT.sampledIds] as Int32Array;
    const logprobs = result[OUTPUT.sampledLogprobs] as Float32Array;
    const topIds = result[OUTPUT.topIds] as Int32Array | undefined;
    const topLogprobs = result[OUTPUT.topLogprobs] as Float32Array | undefined;
    return out.scheduled.map((s, seq) => {
      if (!s.willSample) return null;
      const wanted = s.request.params.logprobs;
      let top: TopLogprob[] | null = null;
      if (wanted !== null) {
        top = [];
        for (let k = 0; k < Math.min(wanted, numTop); k++) {
          top.push({ tokenId: topIds![seq * numTop + k]!, logprob: topLogprobs![seq * numTop + k]! });
        }
      }
      return { tokenId: ids[seq]!, logprob: logprobs[seq]!, top };
    });
  }
}
