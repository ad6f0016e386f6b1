import { describe, expect, it } from 'vitest';
import { Playout, SyncMarks } from '../../src/player/playout.js';

const FRAME = 1000 / 30;

/** Feeds `n` frames of a 30 fps stream, PTS from `pts0`, each decoded when it is due from `t0`; returns the last time. */
function steady(p: Playout, n: number, t0: number, pts0 = 0): number {
  let t = t0;
  for (let i = 0; i < n; i++) {
    t = t0 + i * FRAME;
    p.frame(pts0 + i * FRAME, t, 1280, 720);
  }
  return t;
}

describe('Playout', () => {
  it('plays a steady 30 fps stream without a stall, 30 frames a second', () => {
    const p = new Playout();
    expect(p.started).toBe(false);
    expect(p.stallsAt(500)).toEqual({ count: 0, totalMs: 0 });
    const last = steady(p, 150, 1000); // 5 s
    expect(p.started).toBe(true);
    expect(p.intervalMs).toBeCloseTo(FRAME, 6);
    expect(p.stallsAt(last)).toEqual({ count: 0, totalMs: 0 });
    expect(p.stallsAt(last + FRAME)).toEqual({ count: 0, totalMs: 0 });
    // A one-second window that does not sit on a frame boundary.
    const from = last - 1000 - FRAME / 2;
    expect(p.shownBetween(from, from + 1000)).toHaveLength(30);
    expect(p.shownCount(last)).toBe(150);
    expect(p.onScreen(last)).toMatchObject({ ptsMs: 149 * FRAME, width: 1280, height: 720 });
    expect(p.onScreen(999)).toBeNull();
  });

  it('shows each frame of a steady stream when it is decoded', () => {
    const p = new Playout();
    for (let i = 0; i < 10; i++) {
      const f = p.frame(5000 + i * FRAME, 200 + i * FRAME, 640, 360);
      expect(f.shownAt).toBeCloseTo(200 + i * FRAME, 6);
    }
  });

  it('shows a burst of frames decoded at once (an HLS segment) at their PTS spacing, without a stall', () => {
    const p = new Playout();
    // Segment 1 (2 s, 60 frames) is decoded within 30 ms at t = 1000; segment 2 at t = 2900, before the first runs out.
    const shown: number[] = [];
    for (let i = 0; i < 60; i++) shown.push(p.frame(10_000 + i * FRAME, 1000 + i * 0.5, 1280, 720).shownAt);
    for (let i = 60; i < 120; i++) shown.push(p.frame(10_000 + i * FRAME, 2900 + (i - 60) * 0.5, 1280, 720).shownAt);
    for (let i = 0; i < shown.length; i++) expect(shown[i]).toBeCloseTo(1000 + i * FRAME, 6);
    expect(p.stallsAt(1000 + 119 * FRAME)).toEqual({ count: 0, totalMs: 0 });
    // Frames decoded ahead are not on screen before their time.
    expect(p.shownCount(1000 + 15 * FRAME + 1)).toBe(16);
    expect(p.onScreen(1000 + 15 * FRAME + 1)?.ptsMs).toBeCloseTo(10_000 + 15 * FRAME, 6);
    // Nothing is stalled while frames are still buffered, though nothing has been decoded since t = 2930.
    expect(p.ongoingStallMs(3500)).toBe(0);
    const from = 1500 + FRAME / 2;
    expect(p.shownBetween(from, from + 1000)).toHaveLength(30);
  });

  it('counts a 500 ms gap in delivery as exactly one stall of 500 ms less one frame interval', () => {
    const p = new Playout();
    const last = steady(p, 60, 1000);
    // The next frame arrives 500 ms after the last one instead of one frame interval.
    expect(p.ongoingStallMs(last + 2 * FRAME - 1)).toBe(0);
    const late = p.frame(60 * FRAME, last + 500, 1280, 720);
    expect(late.shownAt).toBeCloseTo(last + 500, 6);
    expect(p.stallsAt(last + 500)).toEqual({ count: 1, totalMs: Math.round(500 - FRAME) });
    // The clock waited: later frames delivered steadily from there are on time, and no second stall comes.
    for (let i = 1; i <= 60; i++) {
      const f = p.frame((60 + i) * FRAME, last + 500 + i * FRAME, 1280, 720);
      expect(f.shownAt).toBeCloseTo(last + 500 + i * FRAME, 6);
    }
    expect(p.stallsAt(last + 500 + 60 * FRAME)).toEqual({ count: 1, totalMs: 467 });
  });

  it('does not count a freeze of two frame intervals or less as a stall', () => {
    const p = new Playout();
    const last = steady(p, 30, 0);
    p.frame(30 * FRAME, last + 1.9 * FRAME, 1280, 720);
    expect(p.stallsAt(last + 1.9 * FRAME)).toEqual({ count: 0, totalMs: 0 });
    expect(p.ongoingStallMs(last + 1.9 * FRAME + 1.9 * FRAME)).toBe(0);
  });

  it('reports a stall going on before the next frame comes', () => {
    const p = new Playout();
    const last = steady(p, 60, 1000);
    expect(p.ongoingStallMs(last + 50)).toBe(0);
    expect(p.ongoingStallMs(last + 100)).toBeCloseTo(100 - FRAME, 6);
    expect(p.stallsAt(last + 1000)).toEqual({ count: 1, totalMs: Math.round(1000 - FRAME) });
    // It is the same stall when the frame finally comes: counted once.
    p.frame(60 * FRAME, last + 1200, 1280, 720);
    expect(p.stallsAt(last + 1200)).toEqual({ count: 1, totalMs: Math.round(1200 - FRAME) });
  });

  it('restarts its clock without a stall when the PTS goes back', () => {
    const p = new Playout();
    const last = steady(p, 60, 1000, 50_000);
    // The stream restarts at PTS 0, delivered on time.
    const end = steady(p, 30, last + FRAME);
    expect(p.onScreen(last + FRAME + 0.01)?.ptsMs).toBe(0);
    expect(p.onScreen(last + FRAME + 0.01)?.shownAt).toBeCloseTo(last + FRAME, 6);
    expect(p.onScreen(end + 0.01)?.shownAt).toBeCloseTo(end, 6);
    expect(p.stallsAt(end)).toEqual({ count: 0, totalMs: 0 });
    expect(p.shownCount(end + 0.01)).toBe(90);
  });

  it('restarts its clock without a stall when the PTS jumps forward by more than 5 s', () => {
    const p = new Playout();
    const last = steady(p, 30, 0);
    const f = p.frame(29 * FRAME + 60_000, last + FRAME, 1280, 720);
    expect(f.shownAt).toBeCloseTo(last + FRAME, 6);
    expect(p.stallsAt(last + FRAME)).toEqual({ count: 0, totalMs: 0 });
  });

  it('queues frames after a discontinuity behind the frames still buffered', () => {
    const p = new Playout();
    for (let i = 0; i < 30; i++) p.frame(i * FRAME, 0, 1280, 720); // one second decoded at once
    const f = p.frame(0, 10, 1280, 720); // PTS back to 0 while 29 frames still wait
    expect(f.shownAt).toBeCloseTo(30 * FRAME, 6);
    expect(p.stallsAt(30 * FRAME)).toEqual({ count: 0, totalMs: 0 });
  });

  it('keeps counting frames it no longer keeps for shownBetween', () => {
    const p = new Playout();
    const last = steady(p, 30 * 20, 0); // 20 s
    const from = last - 1000 - FRAME / 2;
    expect(p.shownBetween(from, from + 1000)).toHaveLength(30);
    expect(p.shownCount(last)).toBe(600);
    expect(p.shownBetween(0, 5000)).toEqual([]); // forgotten: shown before from - 10 s
    expect(p.shownCount(last)).toBe(600);
  });
});

/** A stream of 30 fps luma and 10 ms audio levels, with flashes at `flashes` and 50 ms beeps at `beeps` (ms). */
function markStream(m: SyncMarks, durationMs: number, flashes: number[], beeps: number[]): void {
  let v = 0;
  let a = 0;
  for (;;) {
    const vPts = (v * 100) / 3;
    const aPts = a * 10;
    if (vPts > durationMs && aPts > durationMs) return;
    if (vPts <= aPts) {
      m.luma(vPts, flashes.some((f) => Math.abs(f - vPts) < 1) ? 235 : 20);
      v++;
    } else {
      m.level(aPts, beeps.some((b) => aPts >= b && aPts < b + 50) ? -12 : -70);
      a++;
    }
  }
}

describe('Playout after a long stall', () => {
  it('still has the last frame on screen (state stalled, not connecting) after its window forgot it', () => {
    const p = new Playout();
    for (let i = 0; i < 30; i++) p.frame(i * 33.3, i * 33.3, 640, 360);
    p.shownBetween(30_000, 31_000); // forgets frames older than 20 s
    expect(p.onScreen(31_000)).toMatchObject({ width: 640 });
    expect(p.ongoingStallMs(31_000)).toBeGreaterThan(29_000);
  });
});

describe('SyncMarks', () => {
  it('pairs each beep with its own flash at 1 Hz, whichever side it falls (not with the previous period)', () => {
    const flashes = Array.from({ length: 12 }, (_, i) => 1000 + i * 1000);
    for (const [offset, n] of [
      [200, 7],
      [200, 8],
      [-300, 7],
      [-300, 8],
    ] as const) {
      const m = new SyncMarks();
      markStream(
        m,
        1000 + n * 1000 + 1600,
        flashes.slice(0, n + 1),
        flashes.slice(0, n + 1).map((f) => f + offset),
      );
      expect(m.offsetMs, `${offset} with ${n} marks`).toBe(offset);
    }
  });

  const every2s = (offset: number) => [2000, 4000, 6000, 8000, 10_000, 12_000].map((t) => t + offset);

  it('reads +500 ms when each beep comes 500 ms after its flash', () => {
    const m = new SyncMarks();
    markStream(m, 13_000, every2s(0), every2s(500));
    expect(m.offsetMs).toBe(500);
  });

  it('reads -300 ms when each beep comes 300 ms before its flash', () => {
    const m = new SyncMarks();
    markStream(m, 13_000, every2s(0), every2s(-300));
    expect(m.offsetMs).toBe(-300);
  });

  it('reads the same when all the audio is fed before the video', () => {
    const m = new SyncMarks();
    for (let t = 0; t < 13_000; t += 10) m.level(t, every2s(500).some((b) => t >= b && t < b + 50) ? -12 : -70);
    for (let i = 0; i < 390; i++) {
      const pts = (i * 100) / 3;
      m.luma(pts, every2s(0).some((f) => Math.abs(f - pts) < 1) ? 235 : 20);
    }
    expect(m.offsetMs).toBe(500);
  });

  it('has no figure without onsets', () => {
    const m = new SyncMarks();
    markStream(m, 10_000, [], []);
    expect(m.offsetMs).toBeNull();
  });

  it('has no figure before two pairs', () => {
    const m = new SyncMarks();
    markStream(m, 3000, [2000], [2100]);
    expect(m.offsetMs).toBeNull();
    const m2 = new SyncMarks();
    // a sound onset is paired once the picture has been decoded a window (1 s) past it
    markStream(m2, 5000, [2000, 4000], [2100, 4100]);
    expect(m2.offsetMs).toBeNull();
    m2.luma(5200, 20);
    expect(m2.offsetMs).toBe(100);
  });

  it('does not pair onsets more than 1 s apart', () => {
    const m = new SyncMarks();
    markStream(m, 13_000, [3000, 6000, 9000, 12_000], [4500, 7500, 10_500]);
    expect(m.offsetMs).toBeNull();
  });

  it('ignores a luma rise under 40 and a sound that stays under -40 dBFS', () => {
    const m = new SyncMarks();
    for (const t of [1000, 3000, 5000]) {
      m.luma(t - 40, 100);
      m.luma(t, 139); // +39
      m.level(t + 90, -90);
      m.level(t + 100, -41); // +49 dB, but not above -40
    }
    expect(m.offsetMs).toBeNull();
    for (const t of [7000, 9000]) {
      m.luma(t - 40, 100);
      m.luma(t, 140);
      m.level(t + 90, -90);
      m.level(t + 100, -39);
    }
    m.luma(10_500, 100);
    expect(m.offsetMs).toBe(100);
  });

  it('needs a rise of 20 dB from one 10 ms frame to the next', () => {
    const m = new SyncMarks();
    for (const t of [1000, 3000, 5000]) {
      m.luma(t - 40, 20);
      m.luma(t, 235);
      m.level(t + 190, -50);
      m.level(t + 200, -31); // +19 dB
    }
    expect(m.offsetMs).toBeNull();
  });
});
