/**
 * The request fields that become logits processing (src/sampling, src/structured): presence /
 * frequency / repetition penalties, logit_bias, response_format and vLLM's guided decoding fields
 * (guided_json, guided_choice, and their newer form structured_outputs.json / .choice) — their zod
 * schemas and their conversion into SamplingParams fields.
 */
import { z } from 'zod';
import type { StructuredOutput } from '../../sampling/params.ts';
import { compileChoice, compileJsonObject, compileJsonSchema, SchemaError } from '../../structured/index.ts';
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

/** vLLM's guided_json: a JSON Schema as an object (or boolean), or as a JSON string. */
const guidedJsonSchema = z.union([z.record(z.string(), z.unknown()), z.boolean(), z.string()]);
/** vLLM's structured_outputs (its newer spelling of the guided_* fields). */
const structuredOutputsSchema = z.object({
  json: guidedJsonSchema.nullish(),
  choice: z.array(z.string()).nullish(),
  json_object: z.boolean().nullish(),
  regex: z.string().nullish(),
  grammar: z.string().nullish(),
  structural_tag: z.unknown().optional(),
});

/** vLLM's guided decoding fields, accepted by both endpoints (regex and grammar are refused, not ignored). */
export const guidedDecodingFields = {
  guided_json: guidedJsonSchema.nullish(),
  guided_choice: z.array(z.string()).nullish(),
  guided_regex: z.string().nullish(),
  guided_grammar: z.string().nullish(),
  structured_outputs: structuredOutputsSchema.nullish(),
};

/** The fields of logits processing as the schemas parsed them. */
export interface LogitsFields {
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  repetition_penalty?: number | null;
  logit_bias?: Record<string, number> | null;
  response_format?: ResponseFormat | null;
  guided_json?: z.output<typeof guidedJsonSchema> | null;
  guided_choice?: string[] | null;
  guided_regex?: string | null;
  guided_grammar?: string | null;
  structured_outputs?: z.output<typeof structuredOutputsSchema> | null;
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
    structuredOutput: toStructuredOutput(fields),
  };
}

/** One constraint a request asked for, with the field that asked (for errors). */
type Constraint =
  | { kind: 'json_object'; param: string }
  | { kind: 'json_schema'; param: string; schema: unknown }
  | { kind: 'choice'; param: string; choices: string[] };

/** The structured-output constraints of the request; at most one may be given. */
function requestedConstraints(fields: LogitsFields): Constraint[] {
  const found: Constraint[] = [];
  const format = fields.response_format ?? null;
  if (format?.type === 'json_object') found.push({ kind: 'json_object', param: 'response_format' });
  // No schema: any JSON value (the schema `{}`).
  if (format?.type === 'json_schema') found.push({ kind: 'json_schema', param: 'response_format.json_schema.schema', schema: format.json_schema?.schema ?? {} });
  const json = (param: string, value: z.output<typeof guidedJsonSchema>): Constraint => {
    if (typeof value !== 'string') return { kind: 'json_schema', param, schema: value };
    try {
      return { kind: 'json_schema', param, schema: JSON.parse(value) as unknown };
    } catch {
      throw invalidRequest(`Invalid '${param}': a JSON Schema as a string must be valid JSON.`, param, 'invalid_value');
    }
  };
  if (fields.guided_json != null) found.push(json('guided_json', fields.guided_json));
  if (fields.guided_choice != null) found.push({ kind: 'choice', param: 'guided_choice', choices: fields.guided_choice });
  const outputs = fields.structured_outputs ?? null;
  if (outputs?.json != null) found.push(json('structured_outputs.json', outputs.json));
  if (outputs?.choice != null) found.push({ kind: 'choice', param: 'structured_outputs.choice', choices: outputs.choice });
  if (outputs?.json_object === true) found.push({ kind: 'json_object', param: 'structured_outputs.json_object' });
  for (const [param, value] of [
    ['guided_regex', fields.guided_regex],
    ['guided_grammar', fields.guided_grammar],
    ['structured_outputs.regex', outputs?.regex],
    ['structured_outputs.grammar', outputs?.grammar],
    ['structured_outputs.structural_tag', outputs?.structural_tag],
  ] as const) {
    if (value != null) {
      throw invalidRequest(`'${param}' is not supported by this server: use response_format (json_schema), guided_json or guided_choice.`, param, 'unsupported_parameter');
    }
  }
  if (found.length > 1) {
    throw invalidRequest(`Only one kind of structured output per request: got ${found.map((c) => `'${c.param}'`).join(' and ')}.`, found[1]!.param, 'invalid_value');
  }
  return found;
}

function toStructuredOutput(fields: LogitsFields): StructuredOutput | null {
  const [constraint] = requestedConstraints(fields);
  if (constraint === undefined) return null;
  try {
    switch (constraint.kind) {
      case 'json_object':
        return { kind: 'json_object', grammar: cachedGrammar('json_object', compileJsonObject) };
      case 'json_schema': {
        const { schema } = constraint;
        return { kind: 'json_schema', grammar: cachedGrammar(`json_schema:${JSON.stringify(schema)}`, () => compileJsonSchema(schema)) };
      }
      case 'choice': {
        const { choices } = constraint;
        return { kind: 'choice', grammar: cachedGrammar(`choice:${JSON.stringify(choices)}`, () => compileChoice(choices)) };
      }
    }
  } catch (error) {
    if (error instanceof SchemaError) throw invalidRequest(`Invalid '${constraint.param}': ${error.message}`, constraint.param, 'invalid_value');
    throw error;
  }
}

/**
 * Compiled grammars by schema text, most recent last: requests with the same schema share one
 * grammar, hence its interned states and the masks cached for them.
 */
const GRAMMAR_CACHE_ENTRIES = 64;
const grammars = new Map<string, Grammar>();

function cachedGrammar(key: string, compile: () => Grammar): Grammar {
  let grammar = grammars.get(key);
  if (grammar !== undefined) {
    grammars.delete(key);
  } else {
    grammar = compile();
    if (grammars.size >= GRAMMAR_CACHE_ENTRIES) grammars.delete(grammars.keys().next().value!);
  }
  grammars.set(key, grammar);
  return grammar;
}
