/** The text layer: tokenizer, chat templates, streaming detokenization and stop strings. */
export { TextTokenizer, type ChatPrompt, type DecodeOptions, type EncodeOptions, type TextTokenizerOptions } from './tokenizer.ts';
export { ChatTemplate, detectContentFormat, type ChatTemplateRenderOptions, type ContentFormat } from './chat-template.ts';
export { ChatTemplateError, NoChatTemplateError } from './chat-template-errors.ts';
export { resolveChatTemplateOverride } from './chat-template-source.ts';
export { IncrementalDetokenizer, type DetokenizerOptions, type TokenDecoder } from './detokenizer.ts';
export { StopStringMatcher, type StopMatch } from './stop-strings.ts';
export { readTokenizerFiles, type TokenizerFiles } from './tokenizer-files.ts';
export { EncodePool, DEFAULT_INLINE_BELOW_CHARS, type EncodePoolOptions, type PoolEncodeOptions } from './encode-pool.ts';
