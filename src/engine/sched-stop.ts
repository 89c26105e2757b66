/**
 * Token-level stop rules, checked after each sampled token (stop strings are the engine's job: they need
 * text, and it ends the request through Scheduler.finishRequest). Order follows vLLM: length limits first,
 * then nothing may stop the request before minTokens, then EOS (unless ignoreEos), then stopTokenIds.
 */
import { RequestStatus } from './request.ts';
import type { FinishedStatus, Request } from './request.ts';

export interface StopDecision {
  readonly status: FinishedStatus;
  /** The stop token id when one ended the request; null for EOS and length. */
  readonly stopReason: number | null;
}

export function checkStop(request: Request, maxModelLen: number, eosTokenIds: ReadonlySet<number>): StopDecision | null {
  const numOutput = request.numOutputTokens;
  if (request.numTokens >= maxModelLen || numOutput >= request.params.maxTokens) {
    return { status: RequestStatus.FINISHED_LENGTH, stopReason: null };
  }
  if (numOutput < request.params.minTokens) return null;
  const last = request.outputTokenIds[numOutput - 1]!;
  if (!request.params.ignoreEos && eosTokenIds.has(last)) return { status: RequestStatus.FINISHED_STOPPED, stopReason: null };
  if (request.params.stopTokenIds.includes(last)) return { status: RequestStatus.FINISHED_STOPPED, stopReason: last };
  return null;
}
