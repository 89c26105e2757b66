/**
 * Where a model's chat template comes from: `--chat-template` (a file or inline Jinja), else
 * chat_template.jinja beside the tokenizer, else tokenizer_config.json's `chat_template`.
 */
import { ChatTemplateError } from './chat-template-errors.ts';
import { selectChatTemplate } from './tokenizer-config.ts';
import { parseJson, readOptional, type TokenizerFiles } from './tokenizer-files.ts';

/** The template the model folder ships, or null. */
export function chatTemplateFromFiles(files: TokenizerFiles): string | null {
  return files.chatTemplateJinja ?? selectChatTemplate(files.tokenizerConfig.chat_template);
}

/** Characters that only Jinja source contains, never a plausible file path (vLLM's test). */
const JINJA_CHARS = /[{}\n]/;

/**
 * Resolves a `--chat-template` value like vLLM: an existing file is read (a `.json` file holds
 * `{"chat_template": ...}` as tokenizer_config does); otherwise a value containing Jinja characters is
 * the template itself, with `\n`, `\t`, `\r` and `\\` escapes interpreted since shells pass them
 * literally; anything else is a path that does not exist.
 */
export async function resolveChatTemplateOverride(value: string): Promise<string> {
  const fileText = await readOptional(value).catch((error: unknown) => {
    // A long inline template can be an invalid path (ENAMETOOLONG) or a directory-like string: not a file.
    if (JINJA_CHARS.test(value)) return null;
    throw new ChatTemplateError(`--chat-template ${value}: cannot read: ${String(error)}`, { cause: error });
  });
  if (fileText !== null) return value.endsWith('.json') ? templateFromJsonFile(fileText, value) : fileText;
  if (!JINJA_CHARS.test(value)) {
    throw new ChatTemplateError(`--chat-template ${value}: looks like a file path, but no such file exists`);
  }
  return unescapeInline(value);
}

function templateFromJsonFile(text: string, file: string): string {
  let template: string | null;
  try {
    template = selectChatTemplate(parseJson(text, file).chat_template);
  } catch (error) {
    throw new ChatTemplateError(`--chat-template ${file}: ${String(error)}`, { cause: error });
  }
  if (template === null) throw new ChatTemplateError(`--chat-template ${file}: no "chat_template" string in the file`);
  return template;
}

const ESCAPES: Readonly<Record<string, string>> = { n: '\n', t: '\t', r: '\r', '\\': '\\' };

function unescapeInline(value: string): string {
  return value.replace(/\\([ntr\\])/g, (_match: string, code: string) => ESCAPES[code]!);
}
