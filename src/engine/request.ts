/**
 * One generation request as the scheduler tracks it.
 *
 * Tokens live in one growable Int32Array (prompt then outputs) so that appending a token is amortized
 * O(1) and any range [startPos, endPos) is a zero-copy view. Tokens are never rewritten, only appended,
 * so a view stays correct even after the buffer grows (it then points at the old copy).
 */
import type { BlockHash } from '../kv/block-hash.ts';
import type { KVRequest } from '../kv/kv-cache-manager.ts';
import type { FinishReason } from './inference-service.ts';
import type { SamplingParams } from '../sampling/params.ts';

export const RequestStatus = {
  WAITING: 'waiting',
  RUNNING: 'running',
  /** Back in the waiting queue after losing its blocks; will recompute prompt + outputs so far. */
  PREEMPTED: 'preempted',
  FINISHED_STOPPED: 'finished_stopped',
  FINISHED_LENGTH: 'finished_length',
  FINISHED_ABORTED: 'finished_aborted',
} as const;
export type RequestStatus = (typeof RequestStatus)[keyof typeof RequestStatus];
export type FinishedStatus =
  | typeof RequestStatus.FINISHED_STOPPED
  | typeof RequestStatus.FINISHED_LENGTH
  | typeof RequestStatus.FINISHED_ABORTED;

export function isFinished(status: RequestStatus): status is FinishedStatus {
  return status === RequestStatus.FINISHED_STOPPED || status === RequestStatus.FINISHED_LENGTH || status === RequestStatus.FINISHED_ABORTED;
}

/** The OpenAI finish_reason for a status, null while unfinished. */
export function finishReasonOf(status: RequestStatus): FinishReason | null {
  switch (status) {
    case RequestStatus.FINISHED_STOPPED:
      return 'stop';
    case RequestStatus.FINISHED_LENGTH:
      return 'length';
    case RequestStatus.FINISHED_ABORTED:
      return 'abort';
    default:
      return null;
  }
}

export interface NewRequest {
  requestId: string;
  promptTokenIds: ArrayLike<number>;
  params: SamplingParams;
  /** Lower runs first (vLLM's convention). Default 0. */
  priority?: number;
  /** Tenant key mixed into block hashes: requests with different salts never share cached blocks. */
  cacheSalt?: string | null;
  /** ms timestamp, informational (metrics); ordering uses arrivalSeq. Default Date.now(). */
  arrivalTime?: number;
}

/** Process-wide arrival counter: ties in priority go to the request created first. */
let nextArrivalSeq = 0;

export class Request implements KVRequest {
  readonly requestId: string;
  readonly params: SamplingParams;
  readonly priority: number;
  readonly cacheSalt: string | null;
  readonly arrivalTime: number;
  /** Strictly increasing in creation order; the tie-breaker after priority. */
  readonly arrivalSeq: number;
  readonly numPromptTokens: number;
  readonly outputTokenIds: number[] = [];

  status: RequestStatus = RequestStatus.WAITING;
  /** The stop token id or stop string that ended the request, when one did. */
  stopReason: number | string | null = null;
  /**
   * Tokens whose KV is computed or scheduled to be (a step counts from the moment it is scheduled);
   * chases numTokensWithPlaceholders. Reset to 0 on preemption.
   */
  numComputedTokens = 0;
  /**
   * Output tokens that scheduled steps will sample but whose ids have not reached the host yet (0 when
   * steps run one at a time; up to the number of steps in flight with async scheduling).
   */
  numOutputPlaceholders = 0;
  /** Prompt tokens served from the prefix cache at first scheduling (reported in usage). */
  numCachedTokens = 0;
  numPreemptions = 0;
  /** Hashes of the full blocks of allTokenIds, appended by the KV manager; they survive preemption. */
  readonly blockHashes: BlockHash[] = [];

  #tokens: Int32Array;
  #numTokens: number;

  constructor(init: NewRequest) {
    this.requestId = init.requestId;
    this.params = init.params;
    this.priority = init.priority ?? 0;
    this.cacheSalt = init.cacheSalt ?? null;
    this.arrivalTime = init.arrivalTime ?? Date.now();
    this.arrivalSeq = nextArrivalSeq++;
    const n = init.promptTokenIds.length;
    this.numPromptTokens = n;
    this.#tokens = new Int32Array(Math.max(16, n + Math.min(init.params.maxTokens, 1024)));
    for (let i = 0; i < n; i++) this.#tokens[i] = init.promptTokenIds[i]!;
    this.#numTokens = n;
  }

  /** Prompt plus outputs so far. */
  get numTokens(): number {
    return this.#numTokens;
  }

  get numOutputTokens(): number {
    return this.outputTokenIds.length;
  }

  /** numTokens plus the outputs still being sampled: what scheduling may compute up to. */
  get numTokensWithPlaceholders(): number {
    return this.#numTokens + this.numOutputPlaceholders;
  }

  /** Zero-copy view of all tokens (prompt then outputs). */
  get allTokenIds(): Int32Array {
    return this.#tokens.subarray(0, this.#numTokens);
  }

  get promptTokenIds(): Int32Array {
    return this.#tokens.subarray(0, this.numPromptTokens);
  }

  /** Zero-copy view of tokens [startPos, endPos). */
  tokenIds(startPos: number, endPos: number): Int32Array {
    if (startPos < 0 || endPos > this.#numTokens || startPos > endPos) {
      throw new RangeError(`tokenIds [${startPos}, ${endPos}) outside [0, ${this.#numTokens})`);
    }
    return this.#tokens.subarray(startPos, endPos);
  }

  appendOutputToken(tokenId: number): void {
    if (this.#numTokens === this.#tokens.length) {
      const grown = new Int32Array(this.#tokens.length * 2);
      grown.set(this.#tokens);
      this.#tokens = grown;
    }
    this.#tokens[this.#numTokens++] = tokenId;
    this.outputTokenIds.push(tokenId);
  }
}
