/**
 * The request fields that become logits processing (src/sampling, src/structured): presence /
 * frequency / repetition penalties, logit_bias and response_format — their zod schemas and their
 * conversion into SamplingParams fields.
 */
import { z } from 'zod';
import type { StructuredOutput } from '../../sampling/params.ts';
import { compileJsonObject, compileJsonSchema, SchemaError } from '../../structured/index.ts';
import type { Grammar } from '../../structured/index.ts';
import { invalidRequest } from '../errors.ts';

/** At most this many logit_bias entries (they travel in a fixed-size per-row list; see kernels/ops.h PROCESS_LOGITS). */
export const MAX_LOGIT_BIAS_ENTRIES = 300;

/** OpenAI: token id (as a string key) → bias in [-100, 100]. */
export const logitBiasSchema = z
  .record(z.string(), z.number().min(-100).max(100))
  .superRefine((bias, ctx) => {
    const keys = Object.keys(bias);
    if (keys.length > MAX_LOGIT_BIAS_ENTRIES) {
      ctx.addIssue({ code: 'custom', message: `'{param}' may hold at most ${MAX_LOGIT_BIAS_ENTRIES} entries, got ${keys.length}.`, params: { code: 'invalid_value' } });
    }
    for (const key of keys) {
      if (!/^(0|[1-9]\d{0,9})$/.test(key)) {
        ctx.addIssue({ code: 'custom', message: `Invalid key in '{param}': ${JSON.stringify(key)} is not a token id.`, params: { code: 'invalid_value' } });
        return;
      }
    }
  });

const jsonSchemaFormat = z.object({
  name: z.string().max(64).regex(/^[a-zA-Z0-9_-]+$/, "'{param}' may contain only a-z, A-Z, 0-9, underscores and dashes"),
  description: z.string().nullish(),
  schema: z.union([z.record(z.string(), z.unknown()), z.boolean()]).nullish(),
  strict: z.boolean().nullish(),
});

/** OpenAI response_format: text, json_object, or json_schema {name, schema, strict}. */
export const responseFormatSchema = z
  .object({ type: z.enum(['text', 'json_object', 'json_schema']), json_schema: jsonSchemaFormat.nullish() })
  .superRefine((format, ctx) => {
    if (format.type === 'json_schema' && (format.json_schema === null || format.json_schema === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['json_schema'], message: "Missing required parameter: '{param}'.", params: { code: 'missing_required_parameter' } });
    }
  });

export type ResponseFormat = z.output<typeof responseFormatSchema>;

/** The fields of logits processing as the schemas parsed them. */
export interface LogitsFields {
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  repetition_penalty?: number | null;
  logit_bias?: Record<string, number> | null;
  response_format?: ResponseFormat | null;
}

export interface LogitsParams {
  presencePenalty: number;
  frequencyPenalty: number;
  repetitionPenalty: number;
  logitBias: [number, number][];
  structuredOutput: StructuredOutput | null;
}

/**
 * SamplingParams' logits-processing fields. `vocabSize` (the model's logits width), when known,
 * bounds logit_bias ids; a schema Updraft cannot enforce is a 400 naming response_format.
 */
export function toLogitsParams(fields: LogitsFields, vocabSize: number | null): LogitsParams {
  const logitBias: [number, number][] = [];
  for (const [key, bias] of Object.entries(fields.logit_bias ?? {})) {
    const id = Number(key);
    if (vocabSize !== null && id >= vocabSize) {
      throw invalidRequest(`Invalid key in 'logit_bias': token id ${id} is outside the vocabulary (${vocabSize} tokens).`, 'logit_bias', 'invalid_value');
    }
    logitBias.push([id, bias]);
  }
  logitBias.sort((x, y) => x[0] - y[0]);
  return {
    presencePenalty: fields.presence_penalty ?? 0,
    frequencyPenalty: fields.frequency_penalty ?? 0,
    repetitionPenalty: fields.repetition_penalty ?? 1,
    logitBias,
    structuredOutput: toStructuredOutput(fields.response_format ?? null),
  };
}

function toStructuredOutput(format: ResponseFormat | null): StructuredOutput | null {
  if (format === null || format.type === 'text') return null;
  if (format.type === 'json_object') return { kind: 'json_object', grammar: cachedGrammar('json_object', null) };
  // No schema: any JSON value (the schema `{}`).
  const schema = format.json_schema?.schema ?? {};
  try {
    return { kind: 'json_schema', grammar: cachedGrammar('json_schema', schema) };
  } catch (error) {
    if (error instanceof SchemaError) {
      throw invalidRequest(`Invalid 'response_format.json_schema.schema': ${error.message}`, 'response_format.json_schema.schema', 'invalid_value');
    }
    throw error;
  }
}

/**
 * Compiled grammars by schema text, most recent last: requests with the same schema share one
 * grammar, hence its interned states and the masks cached for them.
 */
const GRAMMAR_CACHE_ENTRIES = 64;
const grammars = new Map<string, Grammar>();

function cachedGrammar(kind: 'json_object' | 'json_schema', schema: unknown): Grammar {
  const key = kind === 'json_object' ? kind : `${kind}:${JSON.stringify(schema)}`;
  let grammar = grammars.get(key);
  if (grammar !== undefined) {
    grammars.delete(key);
  } else {
    grammar = kind === 'json_object' ? compileJsonObject() : compileJsonSchema(schema);
    if (grammars.size >= GRAMMAR_CACHE_ENTRIES) grammars.delete(grammars.keys().next().value!);
  }
  grammars.set(key, grammar);
  return grammar;
}
