import { describe, expect, it } from 'vitest';
import { byteFallbackTokenByte, byteLevelTokenBytes, bytesToDisplayText } from '../../../src/tokenizer/token-bytes.ts';
import { strftime } from '../../../src/tokenizer/strftime.ts';

describe('token bytes', () => {
  it("reads byte-level BPE spellings (GPT-2's byte-to-unicode table)", () => {
    expect([...byteLevelTokenBytes('Ġtime')!]).toEqual([0x20, ...new TextEncoder().encode('time')]);
    expect([...byteLevelTokenBytes('Ċ')!]).toEqual([0x0a]);
    expect([...byteLevelTokenBytes('ðŁĺ')!]).toEqual([0xf0, 0x9f, 0x98]);
    expect([...byteLevelTokenBytes('Ā')!]).toEqual([0x00]);
    expect([...byteLevelTokenBytes('ÿ')!]).toEqual([0xff]);
    expect(byteLevelTokenBytes('<|eot_id|>')).not.toBeNull(); // printable ASCII is its own spelling
    expect(byteLevelTokenBytes('你')).toBeNull(); // not a byte-level spelling
  });

  it('reads SentencePiece byte-fallback tokens', () => {
    expect(byteFallbackTokenByte('<0xE2>')).toBe(0xe2);
    expect(byteFallbackTokenByte('<0x0A>')).toBe(0x0a);
    expect(byteFallbackTokenByte('▁<0x0A>')).toBeNull();
    expect(byteFallbackTokenByte('<0xZZ>')).toBeNull();
  });

  it('shows valid UTF-8 as text and escapes the bytes of partial characters', () => {
    const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);
    expect(bytesToDisplayText(new TextEncoder().encode(' 你好 😀'))).toBe(' 你好 😀');
    expect(bytesToDisplayText(bytes(0xf0, 0x9f, 0x98))).toBe('\\xf0\\x9f\\x98');
    expect(bytesToDisplayText(bytes(0x61, 0xe4, 0xbd))).toBe('a\\xe4\\xbd');
    expect(bytesToDisplayText(bytes(0x80, 0xc3, 0xa9))).toBe('\\x80é');
    expect(bytesToDisplayText(bytes(0xef, 0xbb, 0xbf))).toBe('\uFEFF'); // a BOM is a character here, not stripped
    expect(bytesToDisplayText(bytes())).toBe('');
  });
});

describe('strftime', () => {
  it('formats like Python in the C locale', () => {
    const date = new Date(2024, 6, 26, 9, 5, 3);
    expect(strftime(date, '%d %b %Y')).toBe('26 Jul 2024');
    expect(strftime(date, '%A, %B %e %y %H:%M:%S %I%p %j %m/%d %a %F %T %w %%')).toBe(
      'Friday, July 26 24 09:05:03 09AM 208 07/26 Fri 2024-07-26 09:05:03 5 %',
    );
    expect(strftime(new Date(2025, 0, 1, 0, 0, 0), '%I %p %e %j')).toBe('12 AM  1 001');
    expect(strftime(date, '%Q %')).toBe('%Q %');
  });
});
