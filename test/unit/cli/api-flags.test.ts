/** The serve flags of the OpenAI API layer: --max-n and --tool-call-parser. */
import { describe, expect, it } from 'vitest';
import { parseServeArgs } from '../../../src/cli/args.ts';

describe('API flags', () => {
  it('default to n <= 16 and a tool-call format detected from the chat template', () => {
    const { config } = parseServeArgs(['m'], {});
    expect(config.maxN).toBe(16);
    expect(config.toolCallParser).toBeNull();
  });

  it('parse --max-n and --tool-call-parser, and their environment variables', () => {
    expect(parseServeArgs(['m', '--max-n', '4', '--tool-call-parser', 'hermes'], {}).config).toMatchObject({ maxN: 4, toolCallParser: 'hermes' });
    expect(parseServeArgs(['m'], { UPDRAFT_MAX_N: '2', UPDRAFT_TOOL_CALL_PARSER: 'llama3_json' }).config).toMatchObject({ maxN: 2, toolCallParser: 'llama3_json' });
  });

  it('refuse an unknown parser and a non-positive --max-n', () => {
    expect(() => parseServeArgs(['m', '--tool-call-parser', 'mistral'], {})).toThrow(/llama3_json, hermes/);
    expect(() => parseServeArgs(['m', '--max-n', '0'], {})).toThrow(/--max-n must be positive/);
  });
});
