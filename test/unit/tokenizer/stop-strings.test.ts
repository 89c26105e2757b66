import { describe, expect, it } from 'vitest';
import { StopStringMatcher, type StopMatch } from '../../../src/tokenizer/stop-strings.ts';
import { randomInt, seededRandom } from './helpers.ts';

/** Feeds deltas until a stop; returns what each push released, the stop, and the flushed tail. */
function run(stops: string[], deltas: string[]): { released: string[]; stop: string | null; flushed: string; text: string } {
  const matcher = new StopStringMatcher(stops);
  const released: string[] = [];
  let result: StopMatch | null = null;
  for (const delta of deltas) {
    result = matcher.push(delta);
    released.push(result.text);
    if (result.stop !== null) break;
  }
  const stop = result?.stop ?? null;
  const flushed = matcher.flush();
  return { released, stop, flushed, text: released.join('') + flushed };
}

describe('StopStringMatcher', () => {
  it('passes text straight through when there are no stop strings', () => {
    expect(run([], ['Hello', ' world'])).toEqual({ released: ['Hello', ' world'], stop: null, flushed: '', text: 'Hello world' });
  });

  it('releases text that cannot start a stop string at once', () => {
    expect(run(['STOP'], ['Hello', ' there'])).toMatchObject({ released: ['Hello', ' there'], flushed: '' });
  });

  it('catches a stop string split across deltas and never emits any of it', () => {
    const result = run(['STOP'], ['Hello ST', 'O', 'P and more']);
    expect(result.released).toEqual(['Hello ', '', '']);
    expect(result.stop).toBe('STOP');
    expect(result.text).toBe('Hello ');
  });

  it('drops text after the stop string in the same delta', () => {
    expect(run(['\n\n'], ['one\n', '\ntwo'])).toMatchObject({ released: ['one', ''], stop: '\n\n', text: 'one' });
  });

  it('releases held text once it turns out not to be a stop string', () => {
    const result = run(['STOP'], ['Hello ST', 'ORM', ' ahead']);
    expect(result.released).toEqual(['Hello ', 'STORM', ' ahead']);
    expect(result.stop).toBeNull();
  });

  it('keeps holding while the text still ends like the start of a stop string', () => {
    // 'aab': after 'a','a','a' the last two may still begin 'aab', the first may not.
    const result = run(['aab'], ['a', 'a', 'a', 'b']);
    expect(result.released).toEqual(['', '', 'a', '']);
    expect(result).toMatchObject({ stop: 'aab', text: 'a' });
  });

  it('stops at a stop string at the very start, emitting nothing', () => {
    expect(run(['STOP'], ['STOP right there'])).toMatchObject({ released: [''], stop: 'STOP', text: '' });
    expect(run(['<|end|>'], ['<|', 'end|>', 'x'])).toMatchObject({ released: ['', ''], stop: '<|end|>', text: '' });
  });

  it('flushes held-back text at the end of the stream', () => {
    const result = run(['STOP', '###'], ['The end S', 'T', ' ##']);
    expect(result.released).toEqual(['The end ', '', 'ST ']);
    expect(result.stop).toBeNull();
    expect(result.flushed).toBe('##');
    expect(result.text).toBe('The end ST ##');
  });

  it('between overlapping stop strings, ends at the one that completes first', () => {
    // 'bc' completes in the second delta while 'abcd' is still incomplete: generation must end now.
    expect(run(['abcd', 'bc'], ['ab', 'c', 'd'])).toMatchObject({ stop: 'bc', text: 'a' });
    // Both complete in the same delta: the one starting first wins.
    expect(run(['b', 'ab'], ['xab'])).toMatchObject({ stop: 'ab', text: 'x' });
    // Same start: the one listed first.
    expect(run(['abc', 'ab'], ['zabc'])).toMatchObject({ stop: 'abc', text: 'z' });
    expect(run(['ab', 'abc'], ['zabc'])).toMatchObject({ stop: 'ab', text: 'z' });
  });

  it('matches non-ASCII stop strings split between deltas', () => {
    expect(run(['你好'], ['说', '你', '好吗'])).toMatchObject({ released: ['说', '', ''], stop: '你好', text: '说' });
    expect(run(['🛑'], ['go ', '🛑'])).toMatchObject({ stop: '🛑', text: 'go ' });
  });

  it('ignores empty stop strings and reports the match once stopped', () => {
    const matcher = new StopStringMatcher(['', 'x']);
    expect(matcher.push('abc')).toEqual({ text: 'abc', stop: null });
    expect(matcher.push('1x2')).toEqual({ text: '1', stop: 'x' });
    expect(matcher.matched).toBe('x');
    expect(matcher.push('more')).toEqual({ text: '', stop: 'x' });
    expect(matcher.flush()).toBe('');
  });

  it('agrees with a reference on random texts, stop strings and delta boundaries', () => {
    const random = seededRandom(11);
    const word = (length: number): string => Array.from({ length }, () => 'abc'[randomInt(random, 3)]).join('');
    for (let n = 0; n < 2000; n++) {
      const text = word(1 + randomInt(random, 30));
      const stops = Array.from({ length: 1 + randomInt(random, 3) }, () => word(1 + randomInt(random, 4)));
      const deltas: string[] = [];
      for (let i = 0; i < text.length; ) {
        const size = 1 + randomInt(random, 5);
        deltas.push(text.slice(i, i + size));
        i += size;
      }
      const { stop, text: emitted } = run(stops, deltas);
      const context = JSON.stringify({ text, stops, deltas });
      // Never emits a stop string, and emitted text is exactly what precedes the reported stop.
      for (const s of stops) expect(emitted.includes(s), context).toBe(false);
      if (stop === null) {
        expect(emitted, context).toBe(text);
      } else {
        expect(stops, context).toContain(stop);
        expect(text.startsWith(emitted + stop), context).toBe(true);
        // It ended at the delta where the first stop string completed, not later.
        const firstCompletion = Math.min(...stops.filter((s) => text.includes(s)).map((s) => text.indexOf(s) + s.length));
        let deltaEnd = 0;
        for (const delta of deltas) {
          deltaEnd += delta.length;
          if (deltaEnd >= firstCompletion) break;
        }
        expect(emitted.length + stop.length, context).toBeLessThanOrEqual(deltaEnd);
      }
    }
  });
});
