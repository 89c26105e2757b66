/**
 * guided_choice's grammar (src/structured/choice.ts): exactly one of the choices, as raw text — no
 * quotes, no whitespace around it; a choice that is a prefix of another may end or go on.
 */
import { describe, expect, it } from 'vitest';
import { compileChoice, MAX_CHOICES, SchemaError } from '../../../src/structured/index.ts';

const utf8 = new TextEncoder();
const accepts = (choices: string[], text: string): boolean => {
  const state = compileChoice(choices).initial.stepBytes(utf8.encode(text));
  return state !== null && state.accepting;
};
const alive = (choices: string[], text: string): boolean => compileChoice(choices).initial.stepBytes(utf8.encode(text)) !== null;

describe('compileChoice (guided_choice)', () => {
  it('accepts each choice exactly, nothing around it, nothing between them', () => {
    const choices = ['positive', 'negative', 'neutral'];
    for (const choice of choices) expect(accepts(choices, choice), choice).toBe(true);
    for (const text of ['', 'pos', 'positive ', ' positive', '"positive"', 'positivenegative', 'Positive', 'neutral\n']) {
      expect(accepts(choices, text), JSON.stringify(text)).toBe(false);
    }
    expect(alive(choices, 'ne')).toBe(true);
    expect(alive(choices, 'nx')).toBe(false);
    expect(alive(choices, ' ')).toBe(false);
  });

  it('a choice that is a prefix of another: both complete, the longer one may continue', () => {
    const choices = ['yes', 'yes, please'];
    expect(accepts(choices, 'yes')).toBe(true);
    expect(accepts(choices, 'yes, please')).toBe(true);
    expect(accepts(choices, 'yes,')).toBe(false);
    expect(alive(choices, 'yes,')).toBe(true);
  });

  it('takes any text: spaces inside or at the start, quotes, non-ASCII', () => {
    const choices = [' leading space', 'say "hi"', 'café', '日本語', '{not json'];
    for (const choice of choices) expect(accepts(choices, choice), choice).toBe(true);
    expect(accepts(choices, 'cafe')).toBe(false);
  });

  it('refuses an empty list, an empty choice and too many choices', () => {
    expect(() => compileChoice([])).toThrow(SchemaError);
    expect(() => compileChoice(['a', ''])).toThrow(/empty string/);
    expect(() => compileChoice(Array.from({ length: MAX_CHOICES + 1 }, (_, i) => `c${i}`))).toThrow(/at most/);
  });
});
