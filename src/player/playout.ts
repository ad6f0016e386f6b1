/**
 * The playback a viewer would get from the frames as they are decoded: each video frame is shown at its PTS on one
 * clock that starts with the first frame, and when a frame is not there in time the picture freezes and the clock
 * waits (a rebuffer). A *stall* is a freeze longer than two frame intervals (the frame interval is the stream's usual
 * PTS step); its time counts from when the next frame was due. Frames decoded ahead (an HLS segment at once, a GOP
 * cache burst) wait for their time, as in any player's buffer. A PTS that goes back, or forward by more than 5 s, is a
 * discontinuity: the clock restarts there without a stall of its own.
 *
 * Pure: times are milliseconds of any monotonic clock, given by the caller.
 */

/** A video frame as the playout shows it. */
export interface ShownFrame {
  ptsMs: number;
  /** When it is (or was) on screen. */
  shownAt: number;
  width: number;
  height: number;
}

const DISCONTINUITY_MS = 5_000;
const FIRST_INTERVAL_MS = 40;

export class Playout {
  /** PTS and wall time of the clock's origin. */
  private anchor: { pts: number; wall: number } | null = null;
  private lastPts: number | null = null;
  /** When the last decoded frame is shown. */
  private lastShownAt = 0;
  private readonly steps: number[] = [];
  private stalls = 0;
  private stallMs = 0;
  private readonly shown: ShownFrame[] = [];
  /** The last frame decoded (kept when `shown` forgets it: a long stall still has a frame on screen). */
  private last: ShownFrame | null = null;
  private forgotten = 0;

  /** The stream's usual frame interval (median PTS step of the last 30 frames), ms. */
  get intervalMs(): number {
    if (this.steps.length === 0) return FIRST_INTERVAL_MS;
    const s = [...this.steps].sort((a, b) => a - b);
    return s[s.length >> 1]!;
  }

  get started(): boolean {
    return this.anchor !== null;
  }

  /** A frame decoded at `now`; returns when it is shown. */
  frame(ptsMs: number, now: number, width: number, height: number): ShownFrame {
    let shownAt: number;
    if (!this.anchor || this.lastPts === null) {
      this.anchor = { pts: ptsMs, wall: now };
      shownAt = now;
    } else {
      const step = ptsMs - this.lastPts;
      if (step <= 0 || step > DISCONTINUITY_MS) {
        this.anchor = { pts: ptsMs, wall: Math.max(now, this.lastShownAt + this.intervalMs) };
      } else {
        this.steps.push(step);
        if (this.steps.length > 30) this.steps.shift();
      }
      const due = this.anchor.wall + (ptsMs - this.anchor.pts);
      shownAt = Math.max(due, now);
      if (shownAt > due) this.anchor.wall += shownAt - due;
      const freeze = shownAt - this.lastShownAt;
      if (freeze > 2 * this.intervalMs) {
        this.stalls++;
        this.stallMs += freeze - this.intervalMs;
      }
    }
    this.lastPts = ptsMs;
    this.lastShownAt = shownAt;
    const f = { ptsMs, shownAt, width, height };
    this.shown.push(f);
    this.last = f;
    return f;
  }

  /** A stall going on at `now` (nothing left to show for more than two frame intervals): its length so far, or 0. */
  ongoingStallMs(now: number): number {
    if (!this.anchor) return 0;
    const freeze = now - this.lastShownAt;
    return freeze > 2 * this.intervalMs ? freeze - this.intervalMs : 0;
  }

  /** Stalls so far (count, total ms), a stall going on at `now` included. */
  stallsAt(now: number): { count: number; totalMs: number } {
    const ongoing = this.ongoingStallMs(now);
    return { count: this.stalls + (ongoing > 0 ? 1 : 0), totalMs: Math.round(this.stallMs + ongoing) };
  }

  /** Frames shown in (from, to], oldest first; frames shown before `from` - 10 s are forgotten. */
  shownBetween(from: number, to: number): ShownFrame[] {
    while (this.shown.length > 0 && this.shown[0]!.shownAt < from - 10_000) {
      this.shown.shift();
      this.forgotten++;
    }
    return this.shown.filter((f) => f.shownAt > from && f.shownAt <= to);
  }

  /** Frames shown by `now` since the start (frames decoded ahead and not yet due are not). */
  shownCount(now: number): number {
    let due = 0;
    for (let i = this.shown.length - 1; i >= 0 && this.shown[i]!.shownAt > now; i--) due++;
    return this.forgotten + this.shown.length - due;
  }

  /** The frame on screen at `now` (the last one shown by then), or null. */
  onScreen(now: number): ShownFrame | null {
    for (let i = this.shown.length - 1; i >= 0; i--) if (this.shown[i]!.shownAt <= now) return this.shown[i]!;
    return this.last && this.last.shownAt <= now ? this.last : null;
  }
}

/**
 * A/V sync from the picture and the sound themselves: onsets in both (a flash: the mean luma jumps by ≥ 40 of 255
 * from one frame to the next; a beep: the level rises by ≥ 20 dB within 10 ms to above -40 dBFS). Each sound onset is
 * paired with the nearest picture onset on either side, once the picture has been decoded a window past it, within
 * the window: 1 s, or half the picture onsets' usual spacing when that is shorter (an offset of half the period or
 * more cannot be told from the neighbouring mark's). The offset is audio PTS minus video PTS (positive: the sound is
 * late), the median of the last 10 pairs. This is the flash-and-beep measure of a sync test signal; a stream without
 * such onsets has no figure here.
 */
export class SyncMarks {
  private prevLuma: number | null = null;
  private prevLevel = -Infinity;
  private readonly video: number[] = [];
  private readonly pending: number[] = [];
  private lastAudio: number | null = null;
  private videoSeen = -Infinity;
  private readonly offsets: number[] = [];

  luma(ptsMs: number, mean: number): void {
    if (this.prevLuma !== null && mean - this.prevLuma >= 40) {
      const last = this.video.at(-1);
      if (last === undefined || ptsMs <= last || ptsMs - last >= 300) {
        this.video.push(ptsMs);
        if (this.video.length > 20) this.video.shift();
      }
    }
    this.prevLuma = mean;
    this.videoSeen = ptsMs;
    this.settle();
  }

  level(ptsMs: number, rmsDb: number): void {
    if (rmsDb > -40 && rmsDb - this.prevLevel >= 20) {
      if (this.lastAudio === null || ptsMs <= this.lastAudio || ptsMs - this.lastAudio >= 300) {
        this.pending.push(ptsMs);
        if (this.pending.length > 20) this.pending.shift();
      }
      this.lastAudio = ptsMs;
    }
    this.prevLevel = rmsDb;
    this.settle();
  }

  /** Audio minus video onset time (ms), the median of the recent pairs; null before two pairs. */
  get offsetMs(): number | null {
    if (this.offsets.length < 2) return null;
    const s = [...this.offsets].sort((a, b) => a - b);
    return Math.round(s[s.length >> 1]!);
  }

  /** The pairing window: 1 s, or half the usual spacing of the picture onsets when that is shorter. */
  private get windowMs(): number {
    const gaps = this.video
      .slice(1)
      .map((v, i) => v - this.video[i]!)
      .filter((g) => g > 0);
    if (gaps.length < 2) return 1000;
    const sorted = gaps.sort((a, b) => a - b);
    return Math.min(1000, sorted[sorted.length >> 1]! / 2);
  }

  /** Pairs each sound onset once the picture is decoded a window past it (its nearer mark may come after it). */
  private settle(): void {
    const w = this.windowMs;
    while (this.pending.length > 0 && this.videoSeen >= this.pending[0]! + w) {
      const a = this.pending.shift()!;
      let best: number | null = null;
      for (const v of this.video)
        if (Math.abs(a - v) < w && (best === null || Math.abs(a - v) < Math.abs(a - best))) best = v;
      if (best === null) continue;
      this.offsets.push(a - best);
      if (this.offsets.length > 10) this.offsets.shift();
    }
  }
}
