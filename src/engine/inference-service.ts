/**
 * The contract between the HTTP layer and whatever generates tokens.
 *
 * `src/api` depends only on this file (and `src/sampling/params.ts`), never on the engine class, so
 * route tests run over a fake service and engine tests need no HTTP.
 */
import type { SamplingParams } from '../sampling/params.ts';

export interface ModelCard {
  /** The name clients send as `model` (--served-model-name, else the model path / hub id). */
  id: string;
  /** Where the weights came from (path or hub id). */
  root: string;
  /** Unix seconds when the model was loaded. */
  created: number;
  /** Context window: prompt + generated tokens. */
  maxModelLen: number;
  /** Columns of the model's logits (token ids below it exist): bounds logit_bias ids. Unknown: unchecked. */
  vocabSize?: number;
  /** The paged KV cache as configured at load (/metrics' cache_config_info); absent for remote services. */
  kvCache?: KvCacheCard;
}

/** What /metrics reports of the KV cache, as vLLM's `vllm:cache_config_info` labels do. */
export interface KvCacheCard {
  /** `--kv-cache-dtype` as given: 'auto', 'fp8' or 'fp8_e4m3'. */
  cacheDtype: string;
  /** The element dtype the cache is stored in ('bf16', 'f32', 'f8e4m3', ...). */
  storageDtype: string;
  blockSize: number;
  /** Usable blocks (the reserved null block excluded). */
  numBlocks: number;
  enablePrefixCaching: boolean;
}

/** One chat message as the chat template sees it (OpenAI shape, content already flattened or kept as parts). */
export interface ChatMessage {
  role: string;
  content: string | null | Array<{ type: string; text?: string }>;
  name?: string;
  tool_calls?: unknown[];
  tool_call_id?: string;
}

export interface RenderChatOptions {
  addGenerationPrompt: boolean;
  /**
   * vLLM's continue_final_message: the prompt ends inside the last message (its end-of-turn marker cut
   * off), so the model continues that message. Needs addGenerationPrompt false.
   */
  continueFinalMessage?: boolean;
  /** Extra variables for the template (vLLM's chat_template_kwargs). */
  templateKwargs?: Record<string, unknown>;
  /** OpenAI `tools` (as the request gave them) for templates that render them. */
  tools?: unknown[];
}

export interface EncodeTextOptions {
  addSpecialTokens?: boolean;
  /** The client's signal: a prompt whose client left is not tokenized (or its result is dropped). */
  signal?: AbortSignal;
}

export interface GenerateRequest {
  requestId: string;
  promptTokenIds: number[];
  params: SamplingParams;
  /** Lower runs first (vLLM's convention); default 0. */
  priority?: number;
  /** Aborting frees the request's KV blocks at once and ends its stream with finishReason 'abort'. */
  signal?: AbortSignal;
  /**
   * Tenant key mixed into the prefix cache's block hashes (e.g. derived from the API key): requests
   * with different salts never share cached blocks, so one tenant cannot probe another's prompts.
   */
  cacheSalt?: string | null;
}

export interface TopLogprob {
  tokenId: number;
  logprob: number;
}

export interface TokenLogprob {
  tokenId: number;
  logprob: number;
  /** The top-k alternatives (k = params.logprobs), most likely first. */
  top: TopLogprob[];
}

export type FinishReason = 'stop' | 'length' | 'abort';

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  /** Prompt tokens served from the prefix cache. */
  cachedPromptTokens: number;
}

/** One increment of a request's output. The final one has a finishReason. */
export interface GenerateOutput {
  /** New text since the previous output (stop strings removed; may be '' while a match is pending). */
  text: string;
  /** New token ids since the previous output. */
  tokenIds: number[];
  /** One per new token when params.logprobs is not null. */
  logprobs?: TokenLogprob[];
  finishReason: FinishReason | null;
  /** The stop string or stop token id that ended generation, when finishReason is 'stop' because of one. */
  stopReason?: string | number | null;
  usage: Usage;
  /** How the engine handled the request, on the final output (metrics, logs); services that do not track it omit it. */
  timing?: RequestTiming;
}

export interface RequestTiming {
  /** Milliseconds from reaching the engine to being first scheduled; null when it never was (aborted while waiting). */
  queueTimeMs: number | null;
  /** Times the request lost its KV blocks and was recomputed. */
  numPreemptions: number;
}

/** Cumulative counters of the engine loop: where a step's time goes (GET /metrics, bench/gpu/serve.sh). */
export interface EngineTimingStats {
  numSteps: number;
  /** Milliseconds spent awaiting device steps. */
  deviceTimeMs: number;
  /** Host milliseconds between a step's result and the next launch (update, schedule, prepare). */
  criticalHostTimeMs: number;
  /** Of those, milliseconds the device sat idle (no step queued): host time async scheduling did not hide. */
  exposedHostTimeMs: number;
}

export type ServiceErrorKind = 'invalid_request' | 'overloaded' | 'unavailable' | 'internal';

/** An error the service raises on purpose; the API maps `kind` to the HTTP status. */
export class ServiceError extends Error {
  readonly kind: ServiceErrorKind;
  readonly param: string | null;
  /** Seconds the client should wait before retrying (overload). */
  readonly retryAfterSeconds: number | null;
  constructor(kind: ServiceErrorKind, message: string, options: { param?: string; retryAfterSeconds?: number } = {}) {
    super(message);
    this.name = 'ServiceError';
    this.kind = kind;
    this.param = options.param ?? null;
    this.retryAfterSeconds = options.retryAfterSeconds ?? null;
  }
}

export interface ServiceStats {
  numRunning: number;
  numWaiting: number;
  /** Fraction of KV blocks in use, 0..1. */
  kvCacheUsage: number;
  /** Prompt tokens looked up in the prefix cache, and of those served from it (first scheduling only). */
  prefixCacheQueries: number;
  prefixCacheHits: number;
  numPreemptions: number;
  /** The engine loop's cumulative timing (absent for services without a local engine). */
  engine?: EngineTimingStats;
}

export interface InferenceService {
  readonly model: ModelCard;

  /**
   * Token ids of a completion prompt (adds BOS where the tokenizer does). Asynchronous: long prompts are
   * tokenized off the main thread. Aborting `signal` (the client left) rejects with its reason.
   */
  encode(text: string, options?: EncodeTextOptions): Promise<number[]>;
  decode(tokenIds: number[], options?: { skipSpecialTokens?: boolean }): string;
  /** The text of a single token as OpenAI's logprobs `token` field shows it. */
  tokenText(tokenId: number): string;
  /**
   * The UTF-8 bytes the token contributes to the text (OpenAI's logprobs `bytes`); differs from
   * tokenText's bytes for a token holding part of a character (shown as `\xNN`). Absent: tokenText's.
   */
  tokenBytes?(tokenId: number): Uint8Array;
  /** Renders messages with the chat template and tokenizes the result (off the main thread, as encode). */
  renderChat(messages: ChatMessage[], options: RenderChatOptions, encodeOptions?: { signal?: AbortSignal }): Promise<{ prompt: string; promptTokenIds: number[] }>;

  /**
   * The chat template's Jinja source (null: the model has none). The API reads it to tell which
   * tool-call format the model writes (src/tools detectToolCallParser).
   */
  readonly chatTemplateSource?: string | null;

  /**
   * Starts generating. Throws ServiceError synchronously for requests that can never run (prompt
   * longer than the context, overload). The iterator yields outputs as tokens are produced and ends
   * after the output with a finishReason; abort via request.signal.
   */
  generate(request: GenerateRequest): AsyncIterable<GenerateOutput>;

  /**
   * Throws ServiceError('overloaded') when a new generation would be refused now. The API calls it
   * before reading a request's body, so that refusing the excess of an overload costs next to nothing
   * (generate() still checks). Absent: nothing is refused early.
   */
  checkAdmission?(): void;

  stats(): ServiceStats;
}
