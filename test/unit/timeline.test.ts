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
    t.next('a', true, 4960);
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
      expect(last).toBeLessThan(1000);
    }
  });

  it('rebases a jump backwards and keeps the output moving forward', () => {
    const t = new Timeline();
    t.next('a', true, 60_000);
    expect(t.next('a', true, 10)).toBe(60_040);
    expect(t.next('a', true, 50)).toBe(60_080);
    // another track a little behind (audio/video interleaving) is left alone
    expect(t.next('a', true, 30, 8)).toBe(60_060);
  });

  it('never leaves the 32-bit range', () => {
    const t = new Timeline(Infinity);
    const outs = [0xfffffff0, 0xffffffff].map((d) => t.next('a', true, d));
    expect(outs).toEqual([0xfffffff0, 0xffffffff]);
    const next = t.next('b', true, 0xffffffff);
    expect(next).toBeGreaterThanOrEqual(0);
    expect(next).toBeLessThan(TIMESTAMP_RANGE);
    for (let i = 0; i < 100; i++) expect(t.next(`c${i}`, true, 0xffffffff)).toBeLessThan(TIMESTAMP_RANGE);
  });

  /** A publisher's A/V packets in arrival order (video 25 fps, audio 21.33 ms), `clock` mapping media time to dts. */
  function feed(t: Timeline, ms: number, clock: (ms: number) => number, from = 0, src = 'a') {
    const out: { track: number; in: number; out: number }[] = [];
    let v = from;
    let a = from;
    while (v < from + ms || a < from + ms) {
      const track = a <= v ? 8 : 9;
      const at = track === 8 ? a : v;
      const dts = Math.round(clock(at));
      out.push({ track, in: at, out: t.next(src, true, dts, track) });
      if (track === 8) a += 1024 / 48;
      else v += 40;
    }
    return out;
  }
  /** The largest step and whether each track moved forward; the A/V offset at the end (output minus media time). */
  function shape(packets: { track: number; in: number; out: number }[]) {
    let maxStep = 0;
    let monotonic = true;
    const last = new Map<number, number>();
    for (const p of packets) {
      const prev = last.get(p.track);
      if (prev !== undefined) {
        maxStep = Math.max(maxStep, p.out - prev);
        if (p.out < prev) monotonic = false;
      }
      last.set(p.track, p.out);
    }
    const lastOf = (track: number) => [...packets].reverse().find((p) => p.track === track)!;
    const skew = lastOf(9).out - lastOf(9).in - (lastOf(8).out - lastOf(8).in);
    return { maxStep, monotonic, skew, end: Math.max(...packets.map((p) => p.out)) };
  }

  const faults: [string, (ms: number) => number][] = [
    ['a jump forward of 60 s', (ms) => (ms >= 5000 ? ms + 60_000 : ms)],
    ['a jump forward of 1.5 s', (ms) => (ms >= 5000 ? ms + 1_500 : ms)],
    ['a jump forward of 5 h', (ms) => (ms >= 5000 ? ms + 18_000_000 : ms)],
    ['a step back of 3 s', (ms) => (ms >= 5000 ? ms - 3_000 : ms)],
    ['a step back of 300 ms', (ms) => (ms >= 5000 ? ms - 300 : ms)],
    ['a restart at 0', (ms) => (ms >= 5000 ? ms - 5_000 : ms)],
    ['a restart at 0 of a clock that started at 1 000 000', (ms) => (ms >= 5000 ? ms - 5_000 : ms + 1_000_000)],
    ['a wrap of the 31-bit FLV clock', (ms) => (ms >= 5000 ? ms + 2 ** 31 - 5_000 : ms) % 2 ** 31],
    ['two jumps, forward then back', (ms) => (ms >= 7000 ? ms - 4_000 : ms >= 3000 ? ms + 30_000 : ms)],
  ];
  it.each(faults)('%s: each track moves forward by its usual steps and audio stays with video', (_, clock) => {
    const t = new Timeline();
    const s = shape(feed(t, 10_000, clock));
    expect(s.monotonic).toBe(true);
    expect(s.maxStep).toBeLessThanOrEqual(50);
    expect(Math.abs(s.skew)).toBeLessThanOrEqual(45);
    expect(s.end - clock(0)).toBeGreaterThan(9_900);
    expect(s.end - clock(0)).toBeLessThan(10_100);
  });

  it('a gap in the media (no packets for 3 s, then the clock 3 s on) is closed', () => {
    const t = new Timeline();
    const first = feed(t, 5000, (ms) => ms);
    const second = feed(t, 5000, (ms) => ms, 8000);
    const s = shape([...first, ...second]);
    expect(s.monotonic).toBe(true);
    expect(s.maxStep).toBeLessThanOrEqual(60);
    expect(Math.abs(s.skew)).toBeLessThanOrEqual(45);
    expect(s.end).toBeLessThan(10_100);
  });

  it('video pausing while audio goes on (a screen share) keeps its timestamps', () => {
    const t = new Timeline();
    t.next('a', true, 0, 9);
    for (let a = 0; a <= 5000; a += 20) t.next('a', true, a, 8);
    expect(t.next('a', true, 4000, 9)).toBe(4000);
    expect(t.next('a', true, 5020, 8)).toBe(5020);
  });

  it('a slow camera (a frame every 2 s, no audio) keeps its cadence after a few frames', () => {
    const t = new Timeline();
    const outs = Array.from({ length: 10 }, (_, i) => t.next('a', true, i * 2000, 9));
    const steps = outs.slice(1).map((o, i) => o - outs[i]!);
    expect(steps.slice(-5)).toEqual([2000, 2000, 2000, 2000, 2000]);
  });

  it('a burst after a stall (packets late, timestamps in order) passes unchanged', () => {
    const t = new Timeline();
    expect([0, 40, 80, 120, 160, 200].map((d) => t.next('a', true, d, 9))).toEqual([0, 40, 80, 120, 160, 200]);
  });

  it('a track that jumps alone is rebased alone; a later jump of the other track is its own', () => {
    let now = 0;
    const t = new Timeline(1000, () => now);
    t.next('a', true, 0, 9);
    t.next('a', true, 0, 8);
    expect(t.next('a', true, 40_000, 9)).toBe(40);
    now = 60_000;
    expect(t.next('a', true, 20, 8)).toBe(20);
    expect(t.next('a', true, 90_000, 8)).toBe(58);
  });
});
