/** Small builders shared by the deterministic scheduler tests. */
import { KVCacheManager } from '../../../src/kv/kv-cache-manager.ts';
import { Request } from '../../../src/engine/request.ts';
import { Scheduler } from '../../../src/engine/scheduler.ts';
import type { SchedulerConfig } from '../../../src/engine/scheduler.ts';
import type { RequestUpdate, ScheduledRequest, SchedulerOutput } from '../../../src/engine/scheduler-output.ts';
import { defaultSamplingParams } from '../../../src/sampling/params.ts';
import type { SamplingParams } from '../../../src/sampling/params.ts';

export const EOS = 0;

export interface Setup extends Partial<SchedulerConfig> {
  numBlocks?: number;
  blockSize?: number;
  enablePrefixCaching?: boolean;
}

export function setup(o: Setup = {}): { sched: Scheduler; kv: KVCacheManager } {
  const kv = new KVCacheManager({ numBlocks: o.numBlocks ?? 64, blockSize: o.blockSize ?? 4, enablePrefixCaching: o.enablePrefixCaching ?? true });
  const sched = new Scheduler(
    {
      maxNumSeqs: o.maxNumSeqs ?? 8,
      maxNumBatchedTokens: o.maxNumBatchedTokens ?? 64,
      maxModelLen: o.maxModelLen ?? 128,
      enableChunkedPrefill: o.enableChunkedPrefill ?? true,
      eosTokenIds: o.eosTokenIds ?? [EOS],
      ...(o.maxWaitingSkips !== undefined ? { maxWaitingSkips: o.maxWaitingSkips } : {}),
      ...(o.longPrefillTokenThreshold !== undefined ? { longPrefillTokenThreshold: o.longPrefillTokenThreshold } : {}),
      ...(o.headroom !== undefined ? { headroom: o.headroom } : {}),
    },
    kv,
  );
  return { sched, kv };
}

export const tokens = (n: number, start = 1): number[] => Array.from({ length: n }, (_, i) => start + i);

export function req(
  requestId: string,
  prompt: number[] | number,
  params: Partial<SamplingParams> = {},
  extra: { priority?: number; cacheSalt?: string } = {},
): Request {
  return new Request({
    requestId,
    promptTokenIds: typeof prompt === 'number' ? tokens(prompt) : prompt,
    params: defaultSamplingParams({ maxTokens: 100, ...params }),
    ...extra,
  });
}

/** One engine step with a sampler that answers `sample(entry)` (default: token 7 for everyone). */
export function step(
  sched: Scheduler,
  sample: (s: ScheduledRequest) => number = () => 7,
): { out: SchedulerOutput; updates: RequestUpdate[] } {
  const out = sched.schedule();
  sched.checkIntegrity();
  const updates = sched.updateFromOutput(out, out.scheduled.map((s) => (s.willSample ? sample(s) : -1)));
  sched.checkIntegrity();
  return { out, updates };
}

/** [requestId, numScheduledTokens] pairs of a step, in output order. */
export const plan = (out: SchedulerOutput): [string, number][] => out.scheduled.map((s) => [s.requestId, s.numScheduledTokens]);
