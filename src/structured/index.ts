/**
 * Structured output: JSON Schema / JSON object / choice grammars enforced during decoding by masking
 * the tokens that would break them (README: response_format, guided_json, guided_choice).
 */
export { compileChoice, MAX_CHOICES } from './choice.ts';
export { compileJsonObject, compileJsonSchema, SchemaError } from './json-schema.ts';
export { Grammar, MAX_EXP_DIGITS, MAX_FRAC_DIGITS, MAX_INT_DIGITS, MAX_WHITESPACE_RUN, type State } from './grammar.ts';
export { GrammarMatcher } from './matcher.ts';
export { validateJson, type JsonValue } from './validate.ts';
export { VocabularyTrie, vocabularyTrie, type TokenVocabulary } from './vocabulary.ts';
