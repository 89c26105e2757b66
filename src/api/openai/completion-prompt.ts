/**
 * The `prompt` of /v1/completions in every form OpenAI accepts: a string, an array of strings, an
 * array of token ids, or an array of arrays of token ids. The batched forms give several prompts; each
 * gets `n` choices, numbered promptIndex × n + choiceIndex as OpenAI does.
 */
import { z } from 'zod';

export type CompletionPrompt = { kind: 'text'; text: string } | { kind: 'tokens'; tokenIds: number[] };

const isTokenId = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;

const EXPECTED_FORMS = 'a string, an array of strings, an array of token ids, or an array of arrays of token ids';

type Problem = { message: string; code: string; path?: Array<string | number> };

export const completionPromptsSchema = z.unknown().transform((value, ctx): CompletionPrompt[] => {
  const result = readPrompts(value);
  if (Array.isArray(result)) return result;
  ctx.addIssue({ code: 'custom', input: value, path: result.path ?? [], message: result.message, params: { code: result.code } });
  return z.NEVER;
});

function readPrompts(value: unknown): CompletionPrompt[] | Problem {
  if (value === undefined) return { message: "Missing required parameter: '{param}'.", code: 'missing_required_parameter' };
  if (typeof value === 'string') return [{ kind: 'text', text: value }];
  if (!Array.isArray(value)) return { message: `Invalid type for '{param}': expected ${EXPECTED_FORMS}.`, code: 'invalid_type' };
  if (value.length === 0) return { message: "Invalid '{param}': the prompt must not be empty.", code: 'invalid_value' };
  if (value.every((item) => typeof item === 'string')) return value.map((text: string) => ({ kind: 'text', text }));
  if (value.every((item) => typeof item === 'number')) {
    const bad = value.findIndex((item) => !isTokenId(item));
    if (bad >= 0) return badTokenId([bad]);
    return [{ kind: 'tokens', tokenIds: value as number[] }];
  }
  if (value.every((item) => Array.isArray(item))) {
    const prompts: CompletionPrompt[] = [];
    for (const [index, item] of (value as unknown[][]).entries()) {
      if (item.length === 0) return { message: "Invalid '{param}': the prompt must not be empty.", code: 'invalid_value', path: [index] };
      const bad = item.findIndex((id) => !isTokenId(id));
      if (bad >= 0) return badTokenId([index, bad]);
      prompts.push({ kind: 'tokens', tokenIds: item as number[] });
    }
    return prompts;
  }
  return { message: `Invalid type for '{param}': expected ${EXPECTED_FORMS}, not a mix.`, code: 'invalid_type' };
}

function badTokenId(path: number[]): Problem {
  return { message: "Invalid '{param}': token ids must be non-negative integers.", code: 'invalid_value', path };
}
