/**
 * The InferenceService the server uses in production: the tokenizer and chat template on one side,
 * the engine core on the other.
 */
import type {
  ChatMessage,
  GenerateOutput,
  GenerateRequest,
  InferenceService,
  ModelCard,
  RenderChatOptions,
  ServiceStats,
} from './inference-service.ts';
import { ServiceError } from './inference-service.ts';
import type { EngineCore } from './engine.ts';
import type { TextTokenizer } from '../tokenizer/index.ts';

export interface ServiceLimits {
  /** Requests allowed to wait for admission; beyond it new requests get 429 (overloaded). */
  maxQueuedRequests: number;
}

export class LocalInferenceService implements InferenceService {
  readonly model: ModelCard;
  readonly engine: EngineCore;
  readonly tokenizer: TextTokenizer;

  readonly #limits: ServiceLimits;

  constructor(model: ModelCard, engine: EngineCore, tokenizer: TextTokenizer, limits: ServiceLimits = { maxQueuedRequests: Infinity }) {
    this.model = model;
    this.engine = engine;
    this.tokenizer = tokenizer;
    this.#limits = limits;
  }

  encode(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    return this.tokenizer.encode(text, options);
  }

  decode(tokenIds: number[], options: { skipSpecialTokens?: boolean } = {}): string {
    return this.tokenizer.decode(tokenIds, options);
  }

  tokenText(tokenId: number): string {
    return this.tokenizer.tokenText(tokenId);
  }

  renderChat(messages: ChatMessage[], options: RenderChatOptions): { prompt: string; promptTokenIds: number[] } {
    try {
      return this.tokenizer.renderChat(messages, options);
    } catch (error) {
      // Template errors come from the client's messages (e.g. roles the template rejects).
      throw new ServiceError('invalid_request', `could not apply the chat template: ${(error as Error).message}`, { param: 'messages' });
    }
  }

  generate(request: GenerateRequest): AsyncIterable<GenerateOutput> {
    const problem = this.engine.scheduler.validateRequest(request.promptTokenIds.length, request.params.maxTokens);
    if (problem !== null) throw new ServiceError('invalid_request', `This request cannot run: ${problem}.`, { param: 'messages' });
    const numWaiting = this.engine.scheduler.numWaiting;
    if (numWaiting >= this.#limits.maxQueuedRequests) {
      throw new ServiceError('overloaded', `The server is at capacity (${numWaiting} requests waiting); retry shortly.`, { retryAfterSeconds: 1 });
    }
    return this.engine.addRequest(
      {
        requestId: request.requestId,
        promptTokenIds: request.promptTokenIds,
        params: request.params,
        priority: request.priority ?? 0,
        cacheSalt: request.cacheSalt ?? null,
      },
      request.signal,
    );
  }

  stats(): ServiceStats {
    const scheduler = this.engine.scheduler;
    const cache = scheduler.kv.prefixCacheStats;
    return {
      numRunning: scheduler.numRunning,
      numWaiting: scheduler.numWaiting,
      kvCacheUsage: scheduler.kv.usage(),
      prefixCacheQueries: cache.queries,
      prefixCacheHits: cache.hits,
      numPreemptions: this.engine.numPreemptions,
    };
  }
}
