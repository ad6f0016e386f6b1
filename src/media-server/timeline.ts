/** FLV and RTMP timestamps are unsigned 32-bit milliseconds. */
export const TIMESTAMP_RANGE = 2 ** 32;
/** Gap put between the last timestamp of a timeline and the first after a rebase. */
const STEP_MS = 1;

/**
 * The timestamps one stream path sends its viewers, whoever publishes it: the output of each media packet stays
 * inside the 32-bit range and moves forward. The first publisher's timestamps pass unchanged; a publisher that takes
 * over (a restarted encoder, a resume) continues where the previous one stopped; a jump backwards by more than
 * `backMs` or forwards by more than `jumpMs` (an encoder's end-of-sequence tag at 0x7FFFFFFF, a hostile publisher) is
 * rebased to just after the last timestamp; past 2^32 ms (49.7 days) the timeline wraps, as RTMP's does.
 */
export class Timeline {
  private last: number | null = null;
  private offset = 0;
  private source: string | null = null;

  constructor(
    private readonly jumpMs = 10_000,
    private readonly backMs = 2_000,
  ) {}

  /** The output timestamp of a packet of `source` at `dts`; `media` false for sequence headers and metadata. */
  next(source: string, media: boolean, dts: number): number {
    if (!Number.isFinite(dts)) dts = 0;
    if (!media) return Math.min(Math.max(0, Math.floor(this.last ?? dts)), TIMESTAMP_RANGE - 1);
    if (this.last !== null && source !== this.source) this.offset = this.last + STEP_MS - dts;
    this.source = source;
    let out = dts + this.offset;
    if (this.last !== null && (out < this.last - this.backMs || out > this.last + this.jumpMs)) {
      this.offset = this.last + STEP_MS - dts;
      out = this.last + STEP_MS;
    }
    if (out < 0) {
      this.offset -= out;
      out = 0;
    }
    if (out >= TIMESTAMP_RANGE) {
      this.offset -= TIMESTAMP_RANGE;
      out -= TIMESTAMP_RANGE;
      this.last = out;
      return out;
    }
    this.last = this.last === null ? out : Math.max(this.last, out);
    return out;
  }
}
