/**
 * The scheduler alone on a batch workload (N requests of fixed prompt / output lengths arriving at once,
 * as throughput-1000 does), no model: how many steps, prompt tokens computed (recomputation after
 * preemption included), preemptions, and decode context read — and a step-time model fitted to the
 * H200 measurements of bench/NOTES.md, which turns those into seconds. It predicted the H200's
 * 229 preemptions at --schedule-conservativeness 0 exactly, and the 0 → 1 gain within two points
 * (7.4% predicted, 5.6% measured; GPU run 16). Use it to try an admission policy before spending GPU time.
 *
 *   node bench/sched-sim.ts [--requests 1000 --input 1024 --output 512 --kv-tokens 894800
 *                            --max-num-seqs 1024 --max-num-batched-tokens 8192 --conservativeness 0,1]
 */
import { parseArgs } from 'node:util';
import { Request } from '../src/engine/request.ts';
import { headroomFromConservativeness } from '../src/engine/sched-headroom.ts';
import { Scheduler } from '../src/engine/scheduler.ts';
import { KVCacheManager } from '../src/kv/kv-cache-manager.ts';
import { defaultSamplingParams } from '../src/sampling/params.ts';

export interface BatchWorkload {
  requests: number;
  inputLen: number;
  outputLen: number;
  kvTokens: number;
  blockSize: number;
  maxNumSeqs: number;
  maxNumBatchedTokens: number;
  conservativeness: number;
  /** Decode attention's cost per context token read (ns); 40 for bf16 K/V on the H200. */
  attentionNsPerToken?: number;
}

/**
 * Step time in ms, fitted to the H200 (dummy Llama-3.1-8B, bf16): 1 ms of per-step work outside the
 * big kernels; GEMMs never faster than streaming the weights (3.8 ms); 27 µs per prompt token (prefill
 * at 37k tok/s); 24 µs per decode row at large M; 40 ns per context token a decode row reads (131 KB of
 * K/V at 78% of copy bandwidth: NOTES, "Where a throughput step goes").
 */
export function modelStepMs(promptTokens: number, decodeRows: number, contextReads: number, attentionNsPerToken = 40): number {
  return 1 + Math.max(3.8, promptTokens * 0.027 + decodeRows * 0.024) + contextReads * attentionNsPerToken * 1e-6;
}

export interface SimulationResult {
  steps: number;
  promptTokensComputed: number;
  recomputedTokens: number;
  outputTokens: number;
  preemptions: number;
  modelSeconds: number;
  modelOutputTokensPerSecond: number;
}

export function simulateBatch(w: BatchWorkload): SimulationResult {
  const kv = new KVCacheManager({ numBlocks: Math.floor(w.kvTokens / w.blockSize), blockSize: w.blockSize, enablePrefixCaching: true });
  const scheduler = new Scheduler(
    {
      maxNumSeqs: w.maxNumSeqs,
      maxNumBatchedTokens: w.maxNumBatchedTokens,
      maxModelLen: w.inputLen + w.outputLen,
      enableChunkedPrefill: true,
      eosTokenIds: [0],
      headroom: headroomFromConservativeness(w.conservativeness),
    },
    kv,
  );
  let seed = 1;
  for (let i = 0; i < w.requests; i++) {
    const promptTokenIds = Array.from({ length: w.inputLen }, () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return 1 + (seed % 100_000);
    });
    const params = defaultSamplingParams({ maxTokens: w.outputLen, ignoreEos: true, temperature: 0 });
    scheduler.addRequest(new Request({ requestId: `r${i}`, promptTokenIds, params }));
  }
  let steps = 0, promptTokens = 0, outputTokens = 0, preemptions = 0, ms = 0;
  while (scheduler.hasUnfinishedRequests()) {
    const out = scheduler.schedule();
    if (out.scheduled.length === 0) throw new Error(`step ${steps + 1}: nothing schedulable with requests unfinished`);
    steps++;
    let prompt = 0, decode = 0, reads = 0;
    for (const s of out.scheduled) {
      if (s.numScheduledTokens === 1 && s.startPos >= s.request.numPromptTokens) {
        decode++;
        reads += s.startPos + 1;
      } else prompt += s.numScheduledTokens;
      if (s.willSample) outputTokens++;
    }
    promptTokens += prompt;
    preemptions += out.preemptedRequestIds.length;
    ms += modelStepMs(prompt, decode, reads, w.attentionNsPerToken);
    scheduler.updateFromOutput(out, out.scheduled.map((s) => (s.willSample ? 7 : -1)));
  }
  return {
    steps,
    promptTokensComputed: promptTokens,
    recomputedTokens: promptTokens - w.requests * w.inputLen,
    outputTokens,
    preemptions,
    modelSeconds: ms / 1000,
    modelOutputTokensPerSecond: outputTokens / (ms / 1000),
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      requests: { type: 'string', default: '1000' },
      input: { type: 'string', default: '1024' },
      output: { type: 'string', default: '512' },
      'kv-tokens': { type: 'string', default: '894800' },
      'block-size': { type: 'string', default: '16' },
      'max-num-seqs': { type: 'string', default: '1024' },
      'max-num-batched-tokens': { type: 'string', default: '8192' },
      conservativeness: { type: 'string', default: '0,1' },
      // What-ifs: an FP8 KV cache holds twice the tokens and reads half the bytes (--kv-tokens 1789600
      // --attention-ns 20).
      'attention-ns': { type: 'string', default: '40' },
    },
  });
  for (const c of values.conservativeness.split(',').map(Number)) {
    const result = simulateBatch({
      requests: Number(values.requests),
      inputLen: Number(values.input),
      outputLen: Number(values.output),
      kvTokens: Number(values['kv-tokens']),
      blockSize: Number(values['block-size']),
      maxNumSeqs: Number(values['max-num-seqs']),
      maxNumBatchedTokens: Number(values['max-num-batched-tokens']),
      conservativeness: c,
      attentionNsPerToken: Number(values['attention-ns']),
    });
    console.log(
      `conservativeness ${c}: ${result.steps} steps, ${result.preemptions} preemptions, ${result.recomputedTokens} prompt tokens recomputed; ` +
        `model: ${result.modelSeconds.toFixed(1)} s = ${result.modelOutputTokensPerSecond.toFixed(0)} output tok/s`,
    );
  }
}
