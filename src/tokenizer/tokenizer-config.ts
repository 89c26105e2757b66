/**
 * Interprets the loosely typed fields of tokenizer_config.json / generation_config.json / config.json
 * that have more than one historical shape.
 */
import { isJsonObject, type JsonObject } from './tokenizer-files.ts';

/** The special-token fields transformers keeps as strings or as serialized AddedToken objects. */
const SPECIAL_TOKEN_KEYS = ['bos_token', 'eos_token', 'unk_token', 'pad_token', 'sep_token', 'cls_token', 'mask_token'];

/**
 * A special token's text: older configs store `{"__type": "AddedToken", "content": "<s>", ...}` instead
 * of the string; null / absent means the model has no such token.
 */
export function specialTokenText(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (isJsonObject(value) && typeof value.content === 'string') return value.content;
  return null;
}

/**
 * The config with AddedToken objects flattened to strings, which is the only shape
 * @huggingface/tokenizers understands (it reads unk/eos tokens and additional_special_tokens).
 */
export function normalizeTokenizerConfig(config: JsonObject): JsonObject {
  const normalized: JsonObject = { ...config };
  for (const key of SPECIAL_TOKEN_KEYS) {
    if (key in normalized) normalized[key] = specialTokenText(normalized[key]);
  }
  const additional = normalized.additional_special_tokens;
  if (Array.isArray(additional)) {
    normalized.additional_special_tokens = additional.map(specialTokenText).filter((t): t is string => t !== null);
  }
  return normalized;
}

/** `eos_token_id` is a number in most configs and a list in newer ones (Llama 3.1: [128001, 128008, 128009]). */
export function eosTokenIdsOf(config: JsonObject | null | undefined): number[] {
  const value = config?.eos_token_id;
  if (typeof value === 'number') return [value];
  if (Array.isArray(value)) return value.filter((v): v is number => Number.isInteger(v));
  return [];
}

/**
 * tokenizer_config's `chat_template`: a string, or (multi-template models) a list of {name, template}
 * or a name → template map; transformers uses the one named "default".
 */
export function selectChatTemplate(value: unknown): string | null {
  if (typeof value === 'string') return value;
  const named = new Map<string, string>();
  if (Array.isArray(value)) {
    for (const entry of value) {
      if (isJsonObject(entry) && typeof entry.name === 'string' && typeof entry.template === 'string') {
        named.set(entry.name, entry.template);
      }
    }
  } else if (isJsonObject(value)) {
    for (const [name, template] of Object.entries(value)) {
      if (typeof template === 'string') named.set(name, template);
    }
  }
  return named.get('default') ?? (named.size === 1 ? [...named.values()][0]! : null);
}
