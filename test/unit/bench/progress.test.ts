import { describe, expect, it } from 'vitest';
import { ProgressBar } from '../../../bench/serve/progress.ts';

function sink(isTTY: boolean) {
  const writes: string[] = [];
  return { writes, stream: { isTTY, write: (text: string) => writes.push(text) } };
}

describe('progress bar', () => {
  it('into a log: one plain line per quarter', () => {
    const { writes, stream } = sink(false);
    const bar = new ProgressBar(8, { stream });
    for (let i = 0; i < 8; i++) bar.tick(i === 3);
    bar.close();
    expect(writes).toHaveLength(4);
    expect(writes.every((w) => w.endsWith('\n') && !w.includes('\r'))).toBe(true);
    expect(writes[3]).toMatch(/^100%\|█+\| 8\/8 \[.*req\/s\] \(1 failed\)\n$/);
  });

  it('on a terminal: redraws one line, ends it on close', () => {
    const { writes, stream } = sink(true);
    const bar = new ProgressBar(3, { stream });
    bar.tick();
    bar.tick();
    bar.tick();
    bar.close();
    expect(writes[0]!.startsWith('\r')).toBe(true);
    expect(writes.at(-2)).toContain('3/3');
    expect(writes.at(-1)).toBe('\n');
  });

  it('prints nothing when disabled', () => {
    const { writes, stream } = sink(true);
    const bar = new ProgressBar(2, { stream, enabled: false });
    bar.tick();
    bar.tick();
    bar.close();
    expect(writes).toEqual([]);
  });
});
