/**
 * A scripted InferenceService for HTTP route tests: no model, no engine, just predictable outputs.
 *
 * Tokenizer: a word-level vocabulary that grows as text is seen (" world" is one token), BOS = 1,
 * EOS = 2. By default every generate() replies with `reply`, one word per output, honouring
 * maxTokens (→ 'length'), stop strings (→ 'stop' with stopReason) and the abort signal
 * (→ 'abort'). Tests can instead give an exact `script` of outputs, make generate() throw, fail
 * mid-stream, or stall until the client goes away; every request and its signal are recorded.
 */
import type {
  ChatMessage,
  GenerateOutput,
  GenerateRequest,
  InferenceService,
  ModelCard,
  RenderChatOptions,
  ServiceStats,
  TokenLogprob,
} from '../../src/engine/inference-service.ts';

export const BOS_TOKEN_ID = 1;
export const EOS_TOKEN_ID = 2;
const FIRST_WORD_TOKEN_ID = 100;
/** Ids 10..99 are "alternative" tokens the fake offers in top logprobs: `<alt10>`, `<alt11>`, … */
const FIRST_ALTERNATIVE_TOKEN_ID = 10;

export interface FakeServiceOptions {
  model?: Partial<ModelCard>;
  /** What generate() answers unless a script is set. */
  reply?: string;
  /** Delay before each output, ms. */
  tokenDelayMs?: number;
  /** Reported as usage.cachedPromptTokens. */
  cachedPromptTokens?: number;
}

/** What the fake saw of one generate() call. */
export interface FakeGeneration {
  request: GenerateRequest;
  /** Resolves when request.signal fires (never, if it does not). */
  aborted: Promise<void>;
  signalFired: boolean;
  outputsYielded: number;
  /** The consumer stopped iterating before the end (iterator.return()). */
  returnedEarly: boolean;
  /** The generator is done (ran to its end, or was returned): no consumer is left waiting on it. */
  ended: boolean;
}

export class FakeInferenceService implements InferenceService {
  readonly model: ModelCard;
  reply: string;
  tokenDelayMs: number;
  cachedPromptTokens: number;
  /** When set, generate() yields exactly these outputs (usage filled in where omitted). */
  script: Array<Partial<GenerateOutput>> | null = null;
  /** When set (and no script), the reply to each request, e.g. from its seed, to tell choices apart. */
  replyFor: ((request: GenerateRequest) => string) | null = null;
  /** What `chatTemplateSource` reports (the API detects the tool-call format from it). */
  chatTemplateSource: string | null = null;
  /** Thrown synchronously by the next generate() call, then cleared. */
  throwOnGenerate: Error | null = null;
  /** Thrown by the iterator after this many outputs. */
  failAfterOutputs: { count: number; error: Error } | null = null;
  /** After this many outputs, wait (without yielding) until the request is aborted. */
  stallAfterOutputs: number | null = null;
  /** Thrown by stats() (and so by GET /health) while set. */
  statsError: Error | null = null;

  readonly generations: FakeGeneration[] = [];
  readonly renderedChats: Array<{ messages: ChatMessage[]; options: RenderChatOptions; prompt: string }> = [];
  readonly encodedTexts: string[] = [];

  private readonly vocabulary = new Map<string, number>();
  private readonly tokenTexts = new Map<number, string>([
    [BOS_TOKEN_ID, '<s>'],
    [EOS_TOKEN_ID, '</s>'],
  ]);
  private readonly waiters: Array<() => void> = [];

  constructor(options: FakeServiceOptions = {}) {
    this.model = { id: 'fake-model', root: '/models/fake-model', created: 1_700_000_000, maxModelLen: 4096, ...options.model };
    this.reply = options.reply ?? 'Hello there, world!';
    this.tokenDelayMs = options.tokenDelayMs ?? 0;
    this.cachedPromptTokens = options.cachedPromptTokens ?? 0;
  }

  /** Words with their leading whitespace: "Hi you" → ["Hi", " you"]. */
  static splitWords(text: string): string[] {
    return text.match(/\s*\S+|\s+$/g) ?? [];
  }

  wordTokenId(word: string): number {
    let id = this.vocabulary.get(word);
    if (id === undefined) {
      id = FIRST_WORD_TOKEN_ID + this.vocabulary.size;
      this.vocabulary.set(word, id);
      this.tokenTexts.set(id, word);
    }
    return id;
  }

  async encode(text: string, options: { addSpecialTokens?: boolean; signal?: AbortSignal } = {}): Promise<number[]> {
    options.signal?.throwIfAborted();
    return this.encodeNow(text, options);
  }

  /** encode's ids, synchronously (tests computing the prompt a request will get). */
  encodeNow(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    this.encodedTexts.push(text);
    const ids = FakeInferenceService.splitWords(text).map((word) => this.wordTokenId(word));
    return options.addSpecialTokens === false ? ids : [BOS_TOKEN_ID, ...ids];
  }

  decode(tokenIds: number[], options: { skipSpecialTokens?: boolean } = {}): string {
    const skip = options.skipSpecialTokens ?? true;
    return tokenIds
      .filter((id) => !(skip && (id === BOS_TOKEN_ID || id === EOS_TOKEN_ID)))
      .map((id) => this.tokenText(id))
      .join('');
  }

  /**
   * Byte tokens: ids registered here hold one raw byte (part of a UTF-8 character), shown as `\xNN`
   * by tokenText the way the real tokenizer shows them.
   */
  readonly byteTokens = new Map<number, number>();

  tokenBytes(tokenId: number): Uint8Array {
    const byte = this.byteTokens.get(tokenId);
    return byte === undefined ? new TextEncoder().encode(this.tokenText(tokenId)) : Uint8Array.of(byte);
  }

  tokenText(tokenId: number): string {
    const byte = this.byteTokens.get(tokenId);
    if (byte !== undefined) return `\\x${byte.toString(16).padStart(2, '0')}`;
    if (tokenId >= FIRST_ALTERNATIVE_TOKEN_ID && tokenId < FIRST_WORD_TOKEN_ID) return `<alt${tokenId}>`;
    return this.tokenTexts.get(tokenId) ?? `<unk${tokenId}>`;
  }

  async renderChat(messages: ChatMessage[], options: RenderChatOptions, encodeOptions: { signal?: AbortSignal } = {}): Promise<{ prompt: string; promptTokenIds: number[] }> {
    encodeOptions.signal?.throwIfAborted();
    const turns = messages.map((message) => `<|${message.role}|> ${typeof message.content === 'string' ? message.content : JSON.stringify(message.content)}\n`);
    const prompt = turns.join('') + (options.addGenerationPrompt ? '<|assistant|>' : '');
    this.renderedChats.push({ messages, options, prompt });
    return { prompt, promptTokenIds: this.encodeNow(prompt) };
  }

  stats(): ServiceStats {
    if (this.statsError) throw this.statsError;
    return { numRunning: 0, numWaiting: 0, kvCacheUsage: 0, prefixCacheQueries: 0, prefixCacheHits: 0, numPreemptions: 0 };
  }

  generate(request: GenerateRequest): AsyncIterable<GenerateOutput> {
    if (this.throwOnGenerate) {
      const error = this.throwOnGenerate;
      this.throwOnGenerate = null;
      throw error;
    }
    let markAborted!: () => void;
    const record: FakeGeneration = {
      request,
      aborted: new Promise<void>((resolve) => (markAborted = resolve)),
      signalFired: false,
      outputsYielded: 0,
      returnedEarly: false,
      ended: false,
    };
    const onAbort = () => {
      record.signalFired = true;
      markAborted();
    };
    if (request.signal?.aborted) onAbort();
    else request.signal?.addEventListener('abort', onAbort, { once: true });
    this.generations.push(record);
    this.notifyWaiters();
    return this.run(record, this.script ? this.scriptedOutputs(request, this.script) : this.replyOutputs(request));
  }

  /** Resolves once `count` generate() calls have been made. */
  async waitForGenerations(count: number): Promise<FakeGeneration> {
    while (this.generations.length < count) await new Promise<void>((resolve) => this.waiters.push(resolve));
    return this.generations[count - 1]!;
  }

  private notifyWaiters(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  private async *run(record: FakeGeneration, outputs: GenerateOutput[]): AsyncGenerator<GenerateOutput> {
    const { request } = record;
    const promptTokens = request.promptTokenIds.length;
    let finished = false;
    try {
      for (const output of outputs) {
        if (this.stallAfterOutputs !== null && record.outputsYielded >= this.stallAfterOutputs) await record.aborted;
        if (this.tokenDelayMs > 0) await Promise.race([sleep(this.tokenDelayMs), record.aborted]);
        if (record.signalFired) {
          finished = true;
          yield { text: '', tokenIds: [], finishReason: 'abort', usage: this.usage(promptTokens, record.outputsYielded) };
          return;
        }
        if (this.failAfterOutputs && record.outputsYielded >= this.failAfterOutputs.count) throw this.failAfterOutputs.error;
        record.outputsYielded += 1;
        if (output.finishReason !== null) finished = true;
        yield output;
      }
      finished = true;
    } finally {
      if (!finished) record.returnedEarly = true;
      record.ended = true;
    }
  }

  private usage(promptTokens: number, completionTokens: number) {
    return { promptTokens, completionTokens, cachedPromptTokens: Math.min(this.cachedPromptTokens, promptTokens) };
  }

  private scriptedOutputs(request: GenerateRequest, script: Array<Partial<GenerateOutput>>): GenerateOutput[] {
    let completionTokens = 0;
    return script.map((partial) => {
      completionTokens += partial.tokenIds?.length ?? 0;
      return {
        text: '',
        tokenIds: [],
        finishReason: null,
        usage: this.usage(request.promptTokenIds.length, completionTokens),
        ...partial,
      };
    });
  }

  /** One output per word of `reply`, cut by maxTokens and stop strings like a real engine would. */
  private replyOutputs(request: GenerateRequest): GenerateOutput[] {
    const { params } = request;
    const reply = this.replyFor?.(request) ?? this.reply;
    const words = FakeInferenceService.splitWords(reply);
    const stopMatch = earliestStop(reply, params.stop);
    const outputs: GenerateOutput[] = [];
    let textSoFar = 0;
    for (let index = 0; index < words.length; index++) {
      const word = words[index]!;
      const tokenId = this.wordTokenId(word);
      let text = word;
      let finishReason: GenerateOutput['finishReason'] = null;
      let stopReason: string | null | undefined;
      if (stopMatch && textSoFar + word.length >= stopMatch.index) {
        text = word.slice(0, Math.max(0, stopMatch.index - textSoFar));
        finishReason = 'stop';
        stopReason = stopMatch.stop;
      } else if (index + 1 >= params.maxTokens && index + 1 < words.length) {
        finishReason = 'length';
      } else if (index + 1 === words.length) {
        finishReason = 'stop';
        stopReason = null;
      }
      textSoFar += word.length;
      const output: GenerateOutput = { text, tokenIds: [tokenId], finishReason, usage: this.usage(request.promptTokenIds.length, index + 1) };
      if (stopReason !== undefined) output.stopReason = stopReason;
      if (params.logprobs !== null) output.logprobs = [fakeLogprob(tokenId, index, params.logprobs)];
      outputs.push(output);
      if (finishReason !== null) break;
    }
    return outputs;
  }
}

/** Chosen token logprob -0.1·(position+1); alternatives <alt10>, <alt11>, … each 1 lower. */
export function fakeLogprob(tokenId: number, position: number, topK: number): TokenLogprob {
  const logprob = -0.1 * (position + 1);
  const top = [{ tokenId, logprob }];
  for (let rank = 1; top.length < topK; rank++) top.push({ tokenId: FIRST_ALTERNATIVE_TOKEN_ID + rank - 1, logprob: logprob - rank });
  return { tokenId, logprob, top: top.slice(0, topK) };
}

function earliestStop(text: string, stops: string[]): { index: number; stop: string } | null {
  let best: { index: number; stop: string } | null = null;
  for (const stop of stops) {
    const index = text.indexOf(stop);
    if (index >= 0 && (best === null || index < best.index)) best = { index, stop };
  }
  return best;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
