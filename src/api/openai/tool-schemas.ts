/**
 * Validation of the chat request's tool fields: `tools`, `tool_choice`, `parallel_tool_calls`, in the
 * shapes OpenAI documents, with 400s that name the parameter.
 */
import { z } from 'zod';

/** OpenAI's rule for function names. */
const FUNCTION_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

const functionName = z.string().refine((name) => FUNCTION_NAME.test(name), {
  message: "Invalid '{param}': a function name must be 1 to 64 letters, digits, underscores or dashes.",
  params: { code: 'invalid_value' },
});

export const toolSchema = z.object({
  type: z.literal('function'),
  function: z.object({
    name: functionName,
    description: z.string().nullish(),
    /** A JSON Schema object; passed to the chat template as given. */
    parameters: z.record(z.string(), z.unknown()).nullish(),
    strict: z.boolean().nullish(),
  }),
});

export type ToolInput = z.output<typeof toolSchema>;

export const toolChoiceSchema = z.union([
  z.enum(['none', 'auto', 'required']),
  z.object({ type: z.literal('function'), function: z.object({ name: z.string() }) }),
]);

export type ToolChoiceInput = z.output<typeof toolChoiceSchema>;

export const toolFields = {
  tools: z.array(toolSchema).nullish(),
  tool_choice: toolChoiceSchema.nullish(),
  parallel_tool_calls: z.boolean().nullish(),
};

/** tool_choice must make sense with the tools given (OpenAI answers these with a 400 too). */
export function checkToolFields(request: { tools?: ToolInput[] | null; tool_choice?: ToolChoiceInput | null }, ctx: z.RefinementCtx): void {
  const tools = request.tools ?? [];
  const choice = request.tool_choice;
  if (choice === null || choice === undefined || choice === 'none' || choice === 'auto') return;
  if (tools.length === 0) {
    ctx.addIssue({
      code: 'custom',
      path: ['tool_choice'],
      message: "Invalid value for '{param}': it requires 'tools' to be given.",
      params: { code: 'invalid_value' },
    });
    return;
  }
  if (typeof choice === 'object' && !tools.some((tool) => tool.function.name === choice.function.name)) {
    ctx.addIssue({
      code: 'custom',
      path: ['tool_choice', 'function', 'name'],
      message: `Invalid value for '{param}': no function named '${choice.function.name}' is in 'tools'.`,
      params: { code: 'invalid_value' },
    });
  }
}
