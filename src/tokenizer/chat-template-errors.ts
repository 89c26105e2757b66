/**
 * Errors of the chat-template layer. They describe a problem with the request or the model's template,
 * so the API answers them with 400 (as vLLM does), not 500.
 */

/** A template that fails to compile or render, including the template's own `raise_exception(...)`. */
export class ChatTemplateError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ChatTemplateError';
  }
}

/** The model ships no chat template and none was given with --chat-template. */
export class NoChatTemplateError extends ChatTemplateError {
  constructor(model = 'this model') {
    super(
      `${model} has no chat template (no chat_template.jinja, no chat_template in tokenizer_config.json); ` +
        'pass one with --chat-template (a file or inline Jinja), or use /v1/completions',
    );
    this.name = 'NoChatTemplateError';
  }
}
