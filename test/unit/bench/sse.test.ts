import { describe, expect, it } from 'vitest';
import { SseReader } from '../../../bench/serve/sse.ts';

function read(chunks: string[]): string[] {
  const events: string[] = [];
  const reader = new SseReader((data) => events.push(data));
  for (const chunk of chunks) reader.feed(chunk);
  reader.end();
  return events;
}

describe('SSE reader', () => {
  it('dispatches each event on its blank line', () => {
    expect(read(['data: {"a":1}\n\ndata: [DONE]\n\n'])).toEqual(['{"a":1}', '[DONE]']);
  });

  it('handles events split anywhere, including inside \\r\\n', () => {
    const text = 'data: one\r\n\r\ndata:two\r\n\r\n: comment\r\nevent: x\r\ndata: three\r\n\r\n';
    const expected = ['one', 'two', 'three'];
    for (let cut = 1; cut < text.length; cut++) expect(read([text.slice(0, cut), text.slice(cut)])).toEqual(expected);
    expect(read(text.split(''))).toEqual(expected);
  });

  it('accepts \\r line endings, joins multi-line data, ignores comments and other fields, drops an unterminated event', () => {
    expect(read(['data: a\rdata: b\r\r'])).toEqual(['a\nb']);
    expect(read([':ping\n\nid: 3\nretry: 10\n\ndata: x\n\n'])).toEqual(['x']);
    expect(read(['data: half'])).toEqual([]);
  });
});
