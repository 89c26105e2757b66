/**
 * TextTokenizer: a model folder's tokenizer (@huggingface/tokenizers) plus what the server needs around it:
 * BOS/EOS ids, special ids, per-token text for logprobs, and chat rendering with the model's template.
 */
import { Tokenizer } from '@huggingface/tokenizers';
import type { ChatMessage, RenderChatOptions } from '../engine/inference-service.ts';
import { ByteLevelDecoder } from './byte-level-decode.ts';
import { NoChatTemplateError } from './chat-template-errors.ts';
import { ChatTemplate } from './chat-template.ts';
import { chatTemplateFromFiles, resolveChatTemplateOverride } from './chat-template-source.ts';
import type { TokenDecoder } from './detokenizer.ts';
import { byteFallbackTokenByte, byteLevelTokenBytes, bytesToDisplayText } from './token-bytes.ts';
import { eosTokenIdsOf, normalizeTokenizerConfig, specialTokenText } from './tokenizer-config.ts';
import { isJsonObject, readTokenizerFiles, type JsonObject, type TokenizerFiles } from './tokenizer-files.ts';

export interface EncodeOptions {
  /** Add the tokenizer's special tokens (BOS for Llama-style models); default true, as in transformers. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Leave out special tokens (BOS, EOS, <|im_end|>...); default false, as in transformers. */
  skipSpecialTokens?: boolean;
  /**
   * transformers' clean-up heuristic (" ." → ".", " n't" → "n't"). Default false, whatever the config
   * says: it rewrites real text ("x .y"), and generated text is never cleaned up (vLLM streams without
   * it), so `decode` stays equal to the detokenizer's stream. `cleanUpTokenizationSpaces` tells what
   * the config asks for, for callers that want transformers' `decode` exactly.
   */
  cleanUpTokenizationSpaces?: boolean;
}

export interface TextTokenizerOptions {
  /** Chat template source that replaces the model's own (already resolved; see fromDirectory). */
  chatTemplate?: string;
  /** Name for error messages. */
  name?: string;
  /**
   * Decode with the library alone, never ByteLevelDecoder (default false). For tests that hold the
   * fast path equal to the library.
   */
  libraryDecode?: boolean;
}

export interface ChatPrompt {
  prompt: string;
  promptTokenIds: number[];
}

export class TextTokenizer implements TokenDecoder {
  /** BOS text ('<s>', '<|begin_of_text|>'), or null for models without one (Qwen2). */
  readonly bosToken: string | null;
  readonly bosTokenId: number | null;
  readonly eosToken: string | null;
  /** Every id that ends generation: generation_config ∪ config ∪ the tokenizer's eos_token, in that order. */
  readonly eosTokenIds: readonly number[];
  /** Ids that `skipSpecialTokens` leaves out: added tokens marked special, plus additional_special_tokens. */
  readonly specialTokenIds: ReadonlySet<number>;
  /** Ids the tokenizer knows (highest id + 1). The model's embedding may be larger (padded). */
  readonly vocabSize: number;
  /** The chat template source in use (override, chat_template.jinja or tokenizer_config), or null. */
  readonly chatTemplateSource: string | null;
  /** tokenizer_config's clean_up_tokenization_spaces (transformers defaults it to true when absent). */
  readonly cleanUpTokenizationSpaces: boolean;
  readonly #tokenizer: Tokenizer;
  readonly #decoderKinds: ReadonlySet<string>;
  readonly #addedTokens: ReadonlyMap<number, string>;
  /** decode from cached per-id pieces, where it provably equals the library's decode; else null. */
  readonly #byteLevelDecoder: ByteLevelDecoder | null;
  readonly #name: string;
  readonly #tokenBytesCache = new Map<number, Uint8Array>();
  readonly #tokenTextCache = new Map<number, string>();
  #chatTemplate: ChatTemplate | undefined;

  /**
   * Loads tokenizer.json + tokenizer_config.json (+ generation_config.json, config.json and
   * chat_template.jinja when present) from a model folder. `chatTemplate` is a --chat-template value:
   * a file path or inline Jinja.
   */
  static async fromDirectory(dir: string, options: { chatTemplate?: string | null } = {}): Promise<TextTokenizer> {
    const files = await readTokenizerFiles(dir);
    const chatTemplate = options.chatTemplate == null ? undefined : await resolveChatTemplateOverride(options.chatTemplate);
    return new TextTokenizer(files, { chatTemplate, name: dir });
  }

  constructor(files: TokenizerFiles, options: TextTokenizerOptions = {}) {
    const config = normalizeTokenizerConfig(files.tokenizerConfig);
    this.#tokenizer = new Tokenizer(files.tokenizerJson, config);
    this.#name = options.name ?? 'this model';
    this.#decoderKinds = decoderKinds(files.tokenizerJson.decoder);
    this.#addedTokens = new Map([...this.#tokenizer.get_added_tokens_decoder()].map(([id, token]) => [id, token.content]));

    this.bosToken = specialTokenText(config.bos_token);
    this.bosTokenId = this.#idOf(this.bosToken);
    this.eosToken = specialTokenText(config.eos_token);
    const tokenizerEos = this.#idOf(this.eosToken);
    this.eosTokenIds = [
      ...new Set([
        ...eosTokenIdsOf(files.generationConfig),
        ...eosTokenIdsOf(files.modelConfig),
        ...(tokenizerEos === null ? [] : [tokenizerEos]),
      ]),
    ];
    this.specialTokenIds = this.#findSpecialTokenIds(config.additional_special_tokens);
    this.vocabSize = highestId(this.#tokenizer.get_vocab(true).values()) + 1;
    this.chatTemplateSource = options.chatTemplate ?? chatTemplateFromFiles(files);
    this.cleanUpTokenizationSpaces = config.clean_up_tokenization_spaces !== false;
    this.#byteLevelDecoder =
      options.libraryDecode !== true && decodesAsByteLevel(files.tokenizerJson)
        ? new ByteLevelDecoder({
            tokenOf: (id) => this.#tokenizer.id_to_token(id),
            addedContents: new Set(this.#addedTokens.values()),
            specialContents: this.#specialContents(config.additional_special_tokens),
            bytesOf: byteLevelTokenBytes,
          })
        : null;
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    return this.#tokenizer.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
  }

  /** Ids the tokenizer does not know (the padded tail of a model's vocabulary) decode to nothing. */
  decode(tokenIds: readonly number[], options: DecodeOptions = {}): string {
    // Streaming decodes a window of a few ids per token, so the library's per-call cost shows (a CPU
    // profile at 256 streams had it at 13% of the main thread). The clean-up heuristic, asked for only
    // by callers that want transformers' decode, stays the library's; the config's flag never applies,
    // as the option is always passed.
    if (this.#byteLevelDecoder !== null && options.cleanUpTokenizationSpaces !== true) {
      const text = this.#byteLevelDecoder.decode(tokenIds, options.skipSpecialTokens ?? false);
      if (text !== null) return text;
    }
    const known = tokenIds.filter((id) => this.#isKnown(id));
    // The library rejects an empty list; the text of no tokens is ''.
    if (known.length === 0) return '';
    return this.#tokenizer.decode(known, {
      skip_special_tokens: options.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: options.cleanUpTokenizationSpaces ?? false,
    });
  }

  isSpecialToken(tokenId: number): boolean {
    return this.specialTokenIds.has(tokenId);
  }

  /**
   * The token's text as it reads mid-sequence, the way OpenAI logprobs show it: ' time' keeps its
   * space (decoding a SentencePiece token alone would drop it), special tokens show their text, and
   * bytes that are only part of a UTF-8 character appear as `\xNN` escapes. Unknown ids give ''.
   */
  tokenText(tokenId: number): string {
    let text = this.#tokenTextCache.get(tokenId);
    if (text === undefined) {
      text = bytesToDisplayText(this.tokenBytes(tokenId));
      this.#tokenTextCache.set(tokenId, text);
    }
    return text;
  }

  /** The UTF-8 bytes the token contributes to the text (OpenAI logprobs' `bytes`). */
  tokenBytes(tokenId: number): Uint8Array {
    let bytes = this.#tokenBytesCache.get(tokenId);
    if (bytes === undefined) {
      bytes = this.#computeTokenBytes(tokenId);
      this.#tokenBytesCache.set(tokenId, bytes);
    }
    return bytes;
  }

  /** The model's chat template, compiled on first use. Throws NoChatTemplateError when there is none. */
  chatTemplate(): ChatTemplate {
    if (this.#chatTemplate === undefined) {
      if (this.chatTemplateSource === null) throw new NoChatTemplateError(this.#name);
      this.#chatTemplate = new ChatTemplate(this.chatTemplateSource);
    }
    return this.#chatTemplate;
  }

  /** Renders messages with the chat template (bos/eos tokens filled in) and tokenizes the result. */
  renderChat(messages: readonly ChatMessage[], options: RenderChatOptions & { now?: Date }): ChatPrompt {
    const prompt = this.chatTemplate().render(messages, {
      ...options,
      bosToken: this.bosToken,
      eosToken: this.eosToken,
    });
    return { prompt, promptTokenIds: this.encodeChatPrompt(prompt) };
  }

  /**
   * Tokenizes a rendered chat prompt. Most templates print bos_token themselves; encoding that text with
   * special tokens on would add a second BOS, so special tokens are added only when the text does not
   * already start with the BOS token.
   */
  encodeChatPrompt(prompt: string): number[] {
    return this.encode(prompt, this.chatPromptEncodeOptions(prompt));
  }

  /** How encodeChatPrompt encodes a rendered prompt (for encoders elsewhere, e.g. the encode pool's workers). */
  chatPromptEncodeOptions(prompt: string): EncodeOptions {
    const hasBos = this.bosToken !== null && this.bosToken !== '' && prompt.startsWith(this.bosToken);
    return { addSpecialTokens: !hasBos };
  }

  #idOf(token: string | null): number | null {
    return token === null ? null : (this.#tokenizer.token_to_id(token) ?? null);
  }

  #isKnown(id: number): boolean {
    return Number.isInteger(id) && id >= 0 && this.#tokenizer.id_to_token(id) !== undefined;
  }

  #findSpecialTokenIds(additionalSpecialTokens: unknown): Set<number> {
    const ids = new Set<number>();
    for (const [id, token] of this.#tokenizer.get_added_tokens_decoder()) {
      if (token.special) ids.add(id);
    }
    if (Array.isArray(additionalSpecialTokens)) {
      for (const token of additionalSpecialTokens) {
        const id = typeof token === 'string' ? this.#idOf(token) : null;
        if (id !== null) ids.add(id);
      }
    }
    return ids;
  }

  /**
   * The strings the library's skip_special_tokens drops: it compares token strings, not ids, with the
   * added tokens marked special and the config's additional_special_tokens (not only those in the
   * vocabulary), so this differs from specialTokenIds.
   */
  #specialContents(additionalSpecialTokens: unknown): Set<string> {
    const contents = new Set<string>();
    for (const token of this.#tokenizer.get_added_tokens_decoder().values()) {
      if (token.special) contents.add(token.content);
    }
    if (Array.isArray(additionalSpecialTokens)) {
      for (const token of additionalSpecialTokens) if (typeof token === 'string') contents.add(token);
    }
    return contents;
  }

  #computeTokenBytes(tokenId: number): Uint8Array {
    const raw = this.#isKnown(tokenId) ? this.#tokenizer.id_to_token(tokenId) : undefined;
    if (raw === undefined) return new Uint8Array();
    const added = this.#addedTokens.get(tokenId);
    if (added !== undefined) return utf8.encode(added);
    if (this.#decoderKinds.has('ByteLevel')) {
      const bytes = byteLevelTokenBytes(raw);
      if (bytes !== null) return bytes;
    }
    if (this.#decoderKinds.has('ByteFallback')) {
      const byte = byteFallbackTokenByte(raw);
      if (byte !== null) return Uint8Array.of(byte);
    }
    // Decoding a token twice and dropping the first copy keeps the leading space that SentencePiece
    // decoders strip from the first piece of a call, without knowing the decoder's details.
    const once = this.decode([tokenId]);
    return utf8.encode(this.decode([tokenId, tokenId]).slice(once.length));
  }
}

const utf8 = new TextEncoder();

function highestId(ids: Iterable<number>): number {
  let highest = -1;
  for (const id of ids) if (id > highest) highest = id;
  return highest;
}

/**
 * Whether the library's decode is ByteLevelDecoder's: the decoder is ByteLevel alone (its options only
 * matter for encoding) and the model has no end-of-word suffix (the library would turn it into spaces).
 */
function decodesAsByteLevel(tokenizerJson: JsonObject): boolean {
  const { decoder, model } = tokenizerJson;
  if (!isJsonObject(decoder) || decoder.type !== 'ByteLevel' || !isJsonObject(model)) return false;
  const suffix = model.end_of_word_suffix;
  return suffix === undefined || suffix === null || suffix === '';
}

/** The decoder types in tokenizer.json's `decoder` (a Sequence lists several). */
function decoderKinds(decoder: unknown): Set<string> {
  const kinds = new Set<string>();
  const visit = (node: unknown): void => {
    if (!isJsonObject(node)) return;
    if (typeof node.type === 'string') kinds.add(node.type);
    if (Array.isArray(node.decoders)) node.decoders.forEach(visit);
  };
  visit(decoder);
  return kinds;
}
