/** FLV and RTMP timestamps are unsigned 32-bit milliseconds. */
export const TIMESTAMP_RANGE = 2 ** 32;
/** Gap put between the last timestamp of a timeline and the first after a publisher change. */
const STEP_MS = 1;
/** The step a track is assumed to take until it has shown its own (about one video frame). */
const FIRST_STEP_MS = 40;
/** Steps longer than this never count towards a track's usual step (a frame rate below 0.5 fps is not a cadence). */
const CADENCE_CAP_MS = 2_000;
/** How long (wall clock) a rebase of one track waits for the other tracks to make the same jump. */
const FOLLOW_MS = 5_000;

/** What the timeline knows of one track (audio, video) of the current publisher. */
interface Track {
  /** Offset added to this track's input timestamps. */
  offset: number;
  lastIn: number;
  lastOut: number;
  /** Its usual step between packets, a moving average (ms). */
  step: number;
}

/** A rebase one track made, which the others follow when they make the same jump. */
interface Rebase {
  track: number;
  /** The input step that was rebased. */
  jump: number;
  /** What it added to the track's offset. */
  shift: number;
  atMs: number;
}

/**
 * The timestamps one stream path sends its viewers, whoever publishes it: each track's output moves forward without
 * steps longer than its cadence, inside the 32-bit range, whatever the publisher's clock does.
 * - The first publisher's timestamps pass unchanged; a publisher that takes over (a restarted encoder, a resume)
 *   continues just after the last timestamp sent.
 * - A *clock fault* is rebased: a track whose timestamp goes backwards by any amount (a restart at 0, a step back), or
 *   a packet that lands more than `jumpMs` (default 1 s, or three times the track's usual step when that is longer:
 *   a slow camera) after everything sent so far (a jump forward, a gap in the media). The packet then comes one usual
 *   step after its track's previous one, and the other tracks, when they make the same jump (within `jumpMs`, in the
 *   next 5 s), get the same shift: audio and video stay in sync, as the publisher had them.
 * - A track that pauses while another one goes on (a screen share that sends a frame only when the screen changes)
 *   is no fault: its next packet is compared with what the other tracks sent meanwhile.
 * - A burst after a network stall is no fault either: its timestamps come at their usual steps, however fast.
 * Past 2^32 ms (49.7 days) the timeline wraps, as RTMP's does.
 */
export class Timeline {
  private tracks = new Map<number, Track>();
  private last: number | null = null;
  /** Offset a track of the current publisher starts with. */
  private base = 0;
  private source: string | null = null;
  private rebase: Rebase | null = null;

  constructor(
    private readonly jumpMs = 1_000,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * The output timestamp of a packet of `source` at `dts`; `media` false for sequence headers and metadata; `track`
   * tells the publisher's tracks apart (its codec type: 8 audio, 9 video).
   */
  next(source: string, media: boolean, dts: number, track = 0): number {
    if (!Number.isFinite(dts)) dts = 0;
    if (!media) return Math.min(Math.max(0, Math.floor(this.last ?? dts)), TIMESTAMP_RANGE - 1);
    if (source !== this.source) {
      if (this.last !== null) this.base = this.last + STEP_MS - dts;
      this.tracks.clear();
      this.rebase = null;
      this.source = source;
    }
    let t = this.tracks.get(track);
    if (!t) {
      // a publisher's tracks share its clock: a track starts with the offset the others have
      this.tracks.set(track, (t = { offset: this.base, lastIn: dts, lastOut: dts + this.base, step: FIRST_STEP_MS }));
    } else {
      const step = dts - t.lastIn;
      const late = dts + t.offset - (this.last ?? 0) > Math.max(this.jumpMs, 3 * t.step);
      if (step < 0 || late) this.shift(track, t, dts, step);
      if (step > 0) t.step += (Math.min(step, CADENCE_CAP_MS) - t.step) / 8;
    }
    t.lastIn = dts;
    let out = dts + t.offset;
    if (out < 0) {
      t.offset -= out;
      out = 0;
    }
    if (out >= TIMESTAMP_RANGE) {
      for (const other of this.tracks.values()) other.offset -= TIMESTAMP_RANGE;
      this.base -= TIMESTAMP_RANGE;
      out -= TIMESTAMP_RANGE;
      for (const other of this.tracks.values()) other.lastOut = Math.min(other.lastOut, out);
      this.last = out;
    }
    t.lastOut = out;
    this.last = this.last === null ? out : Math.max(this.last, out);
    return out;
  }

  /** Rebases track `id` whose input stepped by `step` to `dts`: following another track's same jump, or alone. */
  private shift(id: number, t: Track, dts: number, step: number): void {
    const r = this.rebase;
    const at = this.now();
    if (r && r.track !== id && at - r.atMs <= FOLLOW_MS && Math.abs(step - r.jump) <= this.jumpMs) {
      const out = dts + t.offset + r.shift;
      if (out >= t.lastOut && out - (this.last ?? 0) <= this.jumpMs) {
        t.offset += r.shift;
        this.rebase = null;
        return;
      }
    }
    const shift = t.lastOut + Math.max(1, Math.round(t.step)) - dts - t.offset;
    t.offset += shift;
    this.base += shift;
    this.rebase = { track: id, jump: step, shift, atMs: at };
  }
}
