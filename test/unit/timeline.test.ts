import { describe, expect, it } from 'vitest';
import { Timeline, TIMESTAMP_RANGE } from '../../src/media-server/timeline.js';

describe('Timeline', () => {
  it('passes the first publisher through unchanged', () => {
    const t = new Timeline();
    expect([0, 33, 66, 100].map((d) => t.next('a', true, d))).toEqual([0, 33, 66, 100]);
    expect(t.next('a', false, 0)).toBe(100);
  });

  it('continues after the previous publisher when another takes over', () => {
    const t = new Timeline();
    t.next('a', true, 0);
    t.next('a', true, 5000);
    expect(t.next('b', true, 0)).toBe(5001);
    expect(t.next('b', true, 40)).toBe(5041);
  });

  it('rebases a jump to 0x7FFFFFFF, however often a publisher reconnects', () => {
    const t = new Timeline();
    let last = 0;
    for (let run = 0; run < 10; run++) {
      const src = `run${run}`;
      last = t.next(src, true, 0);
      last = t.next(src, true, 0x7fffffff);
      expect(last).toBeLessThan(100);
    }
  });

  it('rebases a jump backwards and keeps the output moving forward', () => {
    const t = new Timeline();
    t.next('a', true, 60_000);
    expect(t.next('a', true, 10)).toBe(60_001);
    expect(t.next('a', true, 50)).toBe(60_041);
    // audio/video interleaving a little behind is left alone
    expect(t.next('a', true, 30)).toBe(60_021);
  });

  it('never leaves the 32-bit range', () => {
    const t = new Timeline(Infinity, Infinity);
    const outs = [0xfffffff0, 0xffffffff].map((d) => t.next('a', true, d));
    expect(outs).toEqual([0xfffffff0, 0xffffffff]);
    const next = t.next('b', true, 0xffffffff);
    expect(next).toBeGreaterThanOrEqual(0);
    expect(next).toBeLessThan(TIMESTAMP_RANGE);
    for (let i = 0; i < 100; i++) expect(t.next(`c${i}`, true, 0xffffffff)).toBeLessThan(TIMESTAMP_RANGE);
  });
});
