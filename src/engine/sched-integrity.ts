/**
 * Scheduler-side invariants (the KV side is KVCacheManager.checkIntegrity, called from here):
 * every live request is in exactly one queue with a matching status; waiting requests hold no blocks
 * (prefix hits are never pinned) and have nothing computed; a running request's table covers exactly
 * numComputedTokens plus the tokens scheduled for it in the step in flight; only running requests hold
 * tables; the running set respects maxNumSeqs.
 */
import type { KVCacheManager } from '../kv/kv-cache-manager.ts';
import { RequestStatus } from './request.ts';
import type { Request } from './request.ts';
import type { WaitingQueue } from './sched-waiting-queue.ts';
import type { SchedulerOutput } from './scheduler-output.ts';

export interface SchedulerState {
  readonly requests: ReadonlyMap<string, Request>;
  readonly running: readonly Request[];
  readonly waiting: WaitingQueue;
  readonly kv: KVCacheManager;
  readonly inFlight: SchedulerOutput | null;
  readonly maxNumSeqs: number;
}

export function checkSchedulerIntegrity(state: SchedulerState): void {
  const { requests, running, waiting, kv, inFlight } = state;
  kv.checkIntegrity();
  waiting.checkIntegrity();
  if (running.length > state.maxNumSeqs) throw new Error(`${running.length} running requests, maxNumSeqs is ${state.maxNumSeqs}`);

  const scheduledTokens = new Map<Request, number>();
  for (const s of inFlight?.scheduled ?? []) {
    if (s.request.status !== RequestStatus.RUNNING || requests.get(s.requestId) !== s.request) continue;
    if (s.startPos !== s.request.numComputedTokens) {
      throw new Error(`in-flight ${s.requestId}: starts at ${s.startPos} but has ${s.request.numComputedTokens} computed tokens`);
    }
    scheduledTokens.set(s.request, s.numScheduledTokens);
  }

  const placed = new Set<Request>();
  for (const r of running) {
    if (placed.has(r)) throw new Error(`request ${r.requestId} is in the running list twice`);
    placed.add(r);
    if (r.status !== RequestStatus.RUNNING) throw new Error(`running request ${r.requestId} has status ${r.status}`);
    if (requests.get(r.requestId) !== r) throw new Error(`running request ${r.requestId} is not the registered request of that id`);
    if (r.numComputedTokens >= r.numTokens) {
      throw new Error(`running request ${r.requestId}: ${r.numComputedTokens} computed of ${r.numTokens} tokens (nothing left to compute)`);
    }
    const covered = r.numComputedTokens + (scheduledTokens.get(r) ?? 0);
    if (covered > r.numTokens) throw new Error(`running request ${r.requestId}: covers ${covered} of ${r.numTokens} tokens`);
    kv.checkRequestBlocks(r, covered);
  }
  for (const r of waiting.snapshot()) {
    if (placed.has(r)) throw new Error(`request ${r.requestId} is both running and waiting (or waiting twice)`);
    placed.add(r);
    if (r.status !== RequestStatus.WAITING && r.status !== RequestStatus.PREEMPTED) {
      throw new Error(`waiting request ${r.requestId} has status ${r.status}`);
    }
    if (requests.get(r.requestId) !== r) throw new Error(`waiting request ${r.requestId} is not the registered request of that id`);
    if (r.numComputedTokens !== 0) throw new Error(`waiting request ${r.requestId} has ${r.numComputedTokens} computed tokens`);
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
