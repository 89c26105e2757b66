/**
 * vLLM's guided_choice: the output is exactly one of the given strings, as raw text (no quotes, no
 * whitespace around it). A literal node over the choices' bytes (nodes.ts), recognized at the top level
 * with the root's whitespace switched off.
 */
import { Grammar } from './grammar.ts';
import { SchemaError } from './json-schema.ts';
import { NodeIds } from './nodes.ts';

/** At most this many choices (each becomes a path of the grammar's byte trie). */
export const MAX_CHOICES = 1024;

export function compileChoice(choices: readonly string[]): Grammar {
  if (choices.length === 0) throw new SchemaError('needs at least one choice', '');
  if (choices.length > MAX_CHOICES) throw new SchemaError(`takes at most ${MAX_CHOICES} choices, got ${choices.length}`, '');
  const empty = choices.findIndex((choice) => choice.length === 0);
  if (empty >= 0) throw new SchemaError('a choice may not be the empty string', `/${empty}`);
  const ids = new NodeIds();
  return new Grammar({ kind: 'literal', id: ids.next(), texts: [...new Set(choices)] }, { rootWhitespace: false });
}
