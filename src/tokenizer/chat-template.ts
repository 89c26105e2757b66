/**
 * A model's Jinja chat template, compiled once and rendered per request with the variables and helpers
 * transformers' `apply_chat_template` provides (messages, tools, add_generation_prompt, bos_token,
 * eos_token, raise_exception, strftime_now; @huggingface/jinja supplies tojson and the filters).
 */
import { Environment, Interpreter, Template } from '@huggingface/jinja';
import type { ChatMessage } from '../engine/inference-service.ts';
import { ChatTemplateError } from './chat-template-errors.ts';
import { strftime } from './strftime.ts';

export interface ChatTemplateRenderOptions {
  /** Append the assistant turn header so the model answers (OpenAI chat requests always want it). */
  addGenerationPrompt: boolean;
  /** OpenAI `tools`, passed to the template as they came (templates print them with tojson). */
  tools?: unknown[];
  /** Extra template variables (vLLM's chat_template_kwargs), e.g. `date_string` or `enable_thinking`. */
  templateKwargs?: Record<string, unknown>;
  bosToken?: string | null;
  eosToken?: string | null;
  /** The time `strftime_now` reports; defaults to the current time. Fix it for reproducible prompts. */
  now?: Date;
}

/**
 * How a template reads `message.content`: most expect a string; some loop over OpenAI content parts
 * (vLLM's "openai" content format). Detected from the source, as vLLM does.
 */
export type ContentFormat = 'string' | 'openai';

const LOOPS_OVER_CONTENT = /\bfor\s+\w+\s+in\s+\w+(?:\.content\b|\[\s*['"]content['"]\s*\])/;

export function detectContentFormat(source: string): ContentFormat {
  return LOOPS_OVER_CONTENT.test(source) ? 'openai' : 'string';
}

export class ChatTemplate {
  readonly source: string;
  readonly contentFormat: ContentFormat;
  readonly #template: Template;

  constructor(source: string, options: { contentFormat?: ContentFormat } = {}) {
    this.source = source;
    this.contentFormat = options.contentFormat ?? detectContentFormat(source);
    try {
      this.#template = new Template(source);
    } catch (error) {
      throw new ChatTemplateError(`chat template does not compile: ${errorMessage(error)}`, { cause: error });
    }
  }

  render(messages: readonly ChatMessage[], options: ChatTemplateRenderOptions): string {
    const now = options.now;
    const context: Record<string, unknown> = {
      ...specialTokenVariables(options),
      ...options.templateKwargs,
      messages: messages.map((message) => templateMessage(message, this.contentFormat)),
      add_generation_prompt: options.addGenerationPrompt,
      raise_exception: (message: unknown): never => {
        throw new ChatTemplateError(String(message));
      },
      strftime_now: (format: unknown): string => strftime(now ?? new Date(), String(format)),
    };
    // Templates test `tools is defined` / `tools is not none`; leave it undefined when the request has none.
    if (options.tools !== undefined) context.tools = options.tools;
    try {
      return renderWithGlobals(this.#template, context);
    } catch (error) {
      if (error instanceof ChatTemplateError) throw error;
      throw new ChatTemplateError(`chat template failed to render: ${errorMessage(error)}`, { cause: error });
    }
  }
}

/**
 * The globals @huggingface/jinja's Template.render declares, minus the two this module provides itself
 * (its raise_exception throws a plain Error; its strftime_now reads the clock and the server's locale).
 * Template.render refuses to redeclare them, hence rendering through Environment + Interpreter here.
 */
const JINJA_GLOBALS: Readonly<Record<string, unknown>> = {
  true: true,
  false: false,
  none: null,
  True: true,
  False: false,
  None: null,
  range: pythonRange,
};

function renderWithGlobals(template: Template, variables: Record<string, unknown>): string {
  const env = new Environment();
  for (const [name, value] of Object.entries({ ...JINJA_GLOBALS, ...variables })) env.set(name, value);
  const result = new Interpreter(env).run(template.parsed).value;
  return typeof result === 'string' ? result : String(result);
}

function pythonRange(start: number, stop?: number, step = 1): number[] {
  const [from, to] = stop === undefined ? [0, start] : [start, stop];
  if (step === 0) throw new ChatTemplateError('range() step must not be zero');
  const values: number[] = [];
  for (let i = from; step > 0 ? i < to : i > to; i += step) values.push(i);
  return values;
}

function specialTokenVariables(options: ChatTemplateRenderOptions): Record<string, string> {
  // transformers passes only the special tokens the model has (None ones are left out of the context).
  const variables: Record<string, string> = {};
  if (options.bosToken != null) variables.bos_token = options.bosToken;
  if (options.eosToken != null) variables.eos_token = options.eosToken;
  return variables;
}

/**
 * The message as templates expect it: content flattened (or wrapped) to the template's format, tool
 * call arguments parsed from OpenAI's JSON string (templates print them with tojson), and absent fields
 * left out entirely, since templates test `'tool_calls' in message`.
 */
function templateMessage(message: ChatMessage, format: ContentFormat): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(message)) {
    if (value !== undefined) result[key] = value;
  }
  result.content = templateContent(message.content, format);
  if (Array.isArray(message.tool_calls)) result.tool_calls = message.tool_calls.map(withParsedArguments);
  return result;
}

function templateContent(content: ChatMessage['content'], format: ContentFormat): unknown {
  if (content === null || content === undefined) return null;
  if (typeof content === 'string') return format === 'openai' ? [{ type: 'text', text: content }] : content;
  if (format === 'openai') return content;
  const texts = content.map((part) => {
    if (part.type !== 'text' || typeof part.text !== 'string') {
      throw new ChatTemplateError(`content part of type '${part.type}' is not supported: this model takes text only`);
    }
    return part.text;
  });
  // vLLM joins text parts with a newline for string-content templates.
  return texts.join('\n');
}

function withParsedArguments(toolCall: unknown): unknown {
  if (typeof toolCall !== 'object' || toolCall === null || !('function' in toolCall)) return toolCall;
  const fn = toolCall.function;
  if (typeof fn !== 'object' || fn === null) return toolCall;
  const args = 'arguments' in fn ? fn.arguments : undefined;
  let parsed: unknown = args;
  if (args === undefined || args === null || args === '') {
    parsed = {};
  } else if (typeof args === 'string') {
    try {
      parsed = JSON.parse(args);
    } catch {
      parsed = args; // Not JSON: the template prints the string as given.
    }
  }
  return { ...toolCall, function: { ...fn, arguments: parsed } };
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
