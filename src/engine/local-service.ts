/**
 * The InferenceService the server uses in production: the tokenizer and chat template on one side,
 * the engine core on the other.
 */
import type {
  ChatMessage,
  EncodeTextOptions,
  GenerateOutput,
  GenerateRequest,
  InferenceService,
  ModelCard,
  RenderChatOptions,
  ServiceStats,
} from './inference-service.ts';
import { ServiceError } from './inference-service.ts';
import type { EngineCore } from './engine.ts';
import { applyRequestLimits, checkPromptText, DEFAULT_REQUEST_LIMITS, maxPromptChars, type RequestLimits } from './request-limits.ts';
import type { EncodePool, TextTokenizer } from '../tokenizer/index.ts';

export interface ServiceLimits {
  /** Requests allowed to wait for admission; beyond it new requests get 429 (overloaded). */
  maxQueuedRequests: number;
  /** What one request may ask for (request-limits.ts); default DEFAULT_REQUEST_LIMITS. */
  request?: Partial<RequestLimits>;
  /** Tokenizes long prompts on worker threads (closed with the service); absent: on the main thread. */
  encodePool?: EncodePool | null;
}

export class LocalInferenceService implements InferenceService {
  readonly model: ModelCard;
  readonly engine: EngineCore;
  readonly tokenizer: TextTokenizer;

  readonly #limits: ServiceLimits;
  readonly #requestLimits: RequestLimits;
  /** Longest token of the vocabulary in bytes, computed on first use (bounds prompt text, request-limits.ts). */
  #longestTokenBytes: number | null = null;

  constructor(model: ModelCard, engine: EngineCore, tokenizer: TextTokenizer, limits: ServiceLimits = { maxQueuedRequests: Infinity }) {
    this.model = model;
    this.engine = engine;
    this.tokenizer = tokenizer;
    this.#limits = limits;
    this.#requestLimits = { ...DEFAULT_REQUEST_LIMITS, ...limits.request };
  }

  async encode(text: string, options: EncodeTextOptions = {}): Promise<number[]> {
    checkPromptText(text.length, this.#maxPromptChars(), 'prompt');
    return this.#encodeText(text, options.addSpecialTokens ?? true, options.signal);
  }

  #encodeText(text: string, addSpecialTokens: boolean, signal: AbortSignal | undefined): Promise<number[]> {
    const pool = this.#limits.encodePool;
    if (pool == null) {
      signal?.throwIfAborted();
      return Promise.resolve(this.tokenizer.encode(text, { addSpecialTokens }));
    }
    return pool.encode(text, { addSpecialTokens, signal });
  }

  /** Ends the tokenizer workers (runtime.close). */
  async close(): Promise<void> {
    await this.#limits.encodePool?.close();
  }

  decode(tokenIds: number[], options: { skipSpecialTokens?: boolean } = {}): string {
    return this.tokenizer.decode(tokenIds, options);
  }

  tokenText(tokenId: number): string {
    return this.tokenizer.tokenText(tokenId);
  }

  tokenBytes(tokenId: number): Uint8Array {
    return this.tokenizer.tokenBytes(tokenId);
  }

  get chatTemplateSource(): string | null {
    return this.tokenizer.chatTemplateSource;
  }

  async renderChat(messages: ChatMessage[], options: RenderChatOptions, encodeOptions: { signal?: AbortSignal } = {}): Promise<{ prompt: string; promptTokenIds: number[] }> {
    checkPromptText(chatTextLength(messages), this.#maxPromptChars(), 'messages');
    let prompt: string;
    try {
      const template = this.tokenizer.chatTemplate();
      // OpenAI's `developer` role is the newer name of `system`; templates that predate it get `system`.
      const known = template.source.includes('developer');
      const rendered = known ? messages : messages.map((m) => (m.role === 'developer' ? { ...m, role: 'system' } : m));
      prompt = template.render(rendered, {
        addGenerationPrompt: options.addGenerationPrompt,
        tools: options.tools,
        templateKwargs: options.templateKwargs,
        bosToken: this.tokenizer.bosToken,
        eosToken: this.tokenizer.eosToken,
      });
    } catch (error) {
      // Template errors come from the client's messages (e.g. roles the template rejects).
      throw new ServiceError('invalid_request', `could not apply the chat template: ${(error as Error).message}`, { param: 'messages' });
    }
    if (options.continueFinalMessage === true) prompt = cutAfterFinalMessage(prompt, messages.at(-1));
    checkPromptText(prompt.length, this.#maxPromptChars(), 'messages');
    const addSpecialTokens = this.tokenizer.chatPromptEncodeOptions(prompt).addSpecialTokens ?? true;
    return { prompt, promptTokenIds: await this.#encodeText(prompt, addSpecialTokens, encodeOptions.signal) };
  }

  generate(request: GenerateRequest): AsyncIterable<GenerateOutput> {
    request = applyRequestLimits(request, this.#requestLimits, { maxModelLen: this.model.maxModelLen, vocabSize: this.tokenizer.vocabSize });
    const problem = this.engine.scheduler.validateRequest(request.promptTokenIds.length, request.params.maxTokens);
    if (problem !== null) throw new ServiceError('invalid_request', `This request cannot run: ${problem}.`, { param: 'messages' });
    this.checkAdmission();
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

  checkAdmission(): void {
    const numWaiting = this.engine.scheduler.numWaiting;
    if (numWaiting >= this.#limits.maxQueuedRequests) {
      throw new ServiceError('overloaded', `The server is at capacity (${numWaiting} requests waiting); retry shortly.`, { retryAfterSeconds: 1 });
    }
  }

  #maxPromptChars(): number {
    if (this.#longestTokenBytes === null) {
      let longest = 1;
      for (let id = 0; id < this.tokenizer.vocabSize; id++) {
        try {
          longest = Math.max(longest, this.tokenizer.tokenBytes(id).length);
        } catch {
          // An id the tokenizer does not know (a gap in the vocabulary) is no token.
        }
      }
      this.#longestTokenBytes = longest;
    }
    return maxPromptChars(Math.min(this.#requestLimits.maxPromptTokens ?? this.model.maxModelLen, this.model.maxModelLen), this.#longestTokenBytes);
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
      engine: {
        numSteps: this.engine.numSteps,
        deviceTimeMs: this.engine.deviceTimeMs,
        criticalHostTimeMs: this.engine.criticalHostTimeMs,
        exposedHostTimeMs: this.engine.exposedHostTimeMs,
      },
    };
  }
}

/**
 * continue_final_message, as transformers does it: the rendered prompt ends right after the final
 * message's text, so whatever the template adds after it (end-of-turn tokens) is gone and the model
 * continues the message.
 */
function cutAfterFinalMessage(prompt: string, final: ChatMessage | undefined): string {
  const content = final?.content;
  const text = typeof content === 'string' ? content : Array.isArray(content) ? ([...content].reverse().find((part) => typeof part.text === 'string')?.text ?? null) : null;
  const problem = (why: string) => new ServiceError('invalid_request', `continue_final_message: ${why}`, { param: 'continue_final_message' });
  if (text === null) throw problem('the final message has no text to continue');
  const at = prompt.lastIndexOf(text.trim());
  if (text.trim() === '' || at < 0) throw problem('the final message does not appear in the prompt the chat template renders');
  // Templates that keep the message's spacing keep it here too; ones that trim it are cut after the trimmed text.
  const kept = text.trimStart();
  return prompt.slice(at, at + kept.length) === kept ? prompt.slice(0, at + kept.length) : prompt.slice(0, at + text.trim().length);
}

/** Characters of text the messages bring into the prompt (a lower bound of the rendered prompt's length). */
function chatTextLength(messages: readonly ChatMessage[]): number {
  let total = 0;
  for (const message of messages) {
    const content = message.content;
    if (typeof content === 'string') total += content.length;
    else if (Array.isArray(content)) for (const part of content) total += typeof part.text === 'string' ? part.text.length : 0;
  }
  return total;
}
