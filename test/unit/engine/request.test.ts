import { describe, expect, it } from 'vitest';
import { RequestStatus, finishReasonOf, isFinished } from '../../../src/engine/request.ts';
import { req } from './helpers.ts';

describe('Request', () => {
  it('keeps prompt and outputs in one append-only buffer with zero-copy views', () => {
    const r = req('a', [5, 6, 7], { maxTokens: 2 });
    expect(r.numTokens).toBe(3);
    expect([...r.promptTokenIds]).toEqual([5, 6, 7]);
    const view = r.tokenIds(1, 3);
    for (let i = 0; i < 100; i++) r.appendOutputToken(100 + i); // forces the buffer to grow
    expect(r.numTokens).toBe(103);
    expect(r.numOutputTokens).toBe(100);
    expect(r.outputTokenIds.slice(0, 3)).toEqual([100, 101, 102]);
    expect([...r.allTokenIds.subarray(0, 5)]).toEqual([5, 6, 7, 100, 101]);
    expect([...view]).toEqual([6, 7]); // old views stay correct after growth
    expect(r.allTokenIds.at(-1)).toBe(199);
    expect(() => r.tokenIds(0, 104)).toThrow(RangeError);
  });

  it('orders arrivals and maps statuses to finish reasons', () => {
    const a = req('a', 1);
    const b = req('b', 1);
    expect(b.arrivalSeq).toBeGreaterThan(a.arrivalSeq);
    expect(a.status).toBe(RequestStatus.WAITING);
    expect(finishReasonOf(RequestStatus.FINISHED_LENGTH)).toBe('length');
    expect(finishReasonOf(RequestStatus.FINISHED_STOPPED)).toBe('stop');
    expect(finishReasonOf(RequestStatus.FINISHED_ABORTED)).toBe('abort');
    expect(finishReasonOf(RequestStatus.PREEMPTED)).toBeNull();
    expect(isFinished(RequestStatus.RUNNING)).toBe(false);
  });
});
