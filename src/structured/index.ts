/**
 * Structured output: JSON Schema / JSON object grammars enforced during decoding by masking the
 * tokens that would break them (README: response_format).
 */
export { compileJsonObject, compileJsonSchema, SchemaError } from './json-schema.ts';
export { Grammar, MAX_EXP_DIGITS, MAX_FRAC_DIGITS, MAX_INT_DIGITS, MAX_WHITESPACE_RUN, type State } from './grammar.ts';
export { GrammarMatcher } from './matcher.ts';
export { validateJson, type JsonValue } from './validate.ts';
export { VocabularyTrie, vocabularyTrie, type TokenVocabulary } from './vocabulary.ts';
