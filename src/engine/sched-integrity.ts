/**
 * Scheduler-side invariants (the KV side is KVCacheManager.checkIntegrity, called from here):
 * every live request is in exactly one queue with a matching status; waiting requests hold no blocks
 * (prefix hits are never pinned) and have nothing computed; a running request's table covers exactly
 * numComputedTokens (which counts scheduled steps, in flight or not); only running requests hold
 * tables; the running set respects maxNumSeqs.
 */
import type { KVCacheManager } from '../kv/kv-cache-manager.ts';
import { RequestStatus } from './request.ts';
import type { Request } from './request.ts';
import type { WaitingQueue } from './sched-waiting-queue.ts';

export interface SchedulerState {
  readonly requests: ReadonlyMap<string, Request>;
  readonly running: readonly Request[];
  readonly waiting: WaitingQueue;
  readonly kv: KVCacheManager;
  readonly numStepsInFlight: number;
  readonly maxNumSeqs: number;
}

export function checkSchedulerIntegrity(state: SchedulerState): void {
  const { requests, running, waiting, kv, numStepsInFlight } = state;
  kv.checkIntegrity();
  waiting.checkIntegrity();
  if (running.length > state.maxNumSeqs) throw new Error(`${running.length} running requests, maxNumSeqs is ${state.maxNumSeqs}`);

  const placed = new Set<Request>();
  for (const r of running) {
    if (placed.has(r)) throw new Error(`request ${r.requestId} is in the running list twice`);
    placed.add(r);
    if (r.status !== RequestStatus.RUNNING) throw new Error(`running request ${r.requestId} has status ${r.status}`);
    if (requests.get(r.requestId) !== r) throw new Error(`running request ${r.requestId} is not the registered request of that id`);
    if (r.numOutputPlaceholders < 0 || r.numOutputPlaceholders > numStepsInFlight) {
      throw new Error(`running request ${r.requestId}: ${r.numOutputPlaceholders} outputs pending with ${numStepsInFlight} steps in flight`);
    }
    if (r.numComputedTokens > r.numTokensWithPlaceholders) {
      throw new Error(`running request ${r.requestId}: ${r.numComputedTokens} computed of ${r.numTokensWithPlaceholders} tokens`);
    }
    if (numStepsInFlight === 0 && r.numComputedTokens >= r.numTokens) {
      throw new Error(`running request ${r.requestId}: ${r.numComputedTokens} computed of ${r.numTokens} tokens with no step in flight (nothing left to compute)`);
    }
    // Slots are allocated when a step is scheduled, so the table covers every scheduled token.
    kv.checkRequestBlocks(r, r.numComputedTokens);
  }
  for (const r of waiting.snapshot()) {
    if (placed.has(r)) throw new Error(`request ${r.requestId} is both running and waiting (or waiting twice)`);
    placed.add(r);
    if (r.status !== RequestStatus.WAITING && r.status !== RequestStatus.PREEMPTED) {
      throw new Error(`waiting request ${r.requestId} has status ${r.status}`);
    }
    if (requests.get(r.requestId) !== r) throw new Error(`waiting request ${r.requestId} is not the registered request of that id`);
    if (r.numComputedTokens !== 0 || r.numOutputPlaceholders !== 0) {
      throw new Error(`waiting request ${r.requestId} has ${r.numComputedTokens} computed tokens and ${r.numOutputPlaceholders} pending outputs`);
    }
    kv.checkRequestBlocks(r, 0);
  }
  if (placed.size !== requests.size) {
    const lost = [...requests.values()].filter((r) => !placed.has(r)).map((r) => r.requestId);
    throw new Error(`requests in no queue: ${lost.join(', ')}`);
  }
  for (const requestId of kv.requestIds()) {
    const r = requests.get(requestId);
    if (r === undefined || r.status !== RequestStatus.RUNNING) {
      throw new Error(`KV blocks held by ${requestId}, which is ${r === undefined ? 'not live' : r.status}`);
    }
  }
  for (const r of requests.values()) {
    if (r.numCachedTokens >= r.numPromptTokens && r.numCachedTokens > 0) {
      throw new Error(`request ${r.requestId}: ${r.numCachedTokens} cached tokens of a ${r.numPromptTokens}-token prompt`);
    }
  }
}
