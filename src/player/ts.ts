/**
 * MPEG-2 transport stream byte accounting (ISO/IEC 13818-1): which PIDs carry the program's video and audio (PAT,
 * PMT), and one media unit per PES packet with its PTS (ms) and its elementary stream bytes (TS and PES headers left
 * out). Fed segment by segment
 * by the HLS reader; what cannot be read is skipped, never thrown.
 */
import { patPmtPid, pmtStreams } from '../media/ts-probe.js';
import type { MediaUnit } from './flv.js';

const PACKET = 188;
/** The PTS clock's range: 2^33 ticks of 90 kHz, in ms. */
const PTS_RANGE_MS = 2 ** 33 / 90;
const VIDEO_TYPES = new Set([0x01, 0x02, 0x10, 0x1b, 0x24]);
const AUDIO_TYPES = new Set([0x03, 0x04, 0x0f, 0x11, 0x81]);

interface Pending {
  track: 'audio' | 'video';
  ptsMs: number | null;
  bytes: number;
}

/** Reads TS packets (whole ones; a partial tail waits for the next chunk) and reports each finished PES packet. */
export class TsAccounting {
  private pmtPid: number | null = null;
  private readonly tracks = new Map<number, 'audio' | 'video'>();
  private readonly pending = new Map<number, Pending>();
  private rest = Buffer.alloc(0);
  /** Per PID: wraps of the 33-bit PTS seen so far, and the last PTS read (ms, unwrapped). */
  private readonly wraps = new Map<number, { count: number; last: number }>();

  constructor(private readonly onUnit: (u: MediaUnit) => void) {}

  push(chunk: Buffer): void {
    let buf = this.rest.length ? Buffer.concat([this.rest, chunk]) : chunk;
    let off = 0;
    while (off + PACKET <= buf.length) {
      if (buf[off] !== 0x47) {
        off++;
        continue;
      }
      this.packet(buf.subarray(off, off + PACKET));
      off += PACKET;
    }
    this.rest = Buffer.from(buf.subarray(off));
    buf = Buffer.alloc(0);
  }

  /** Reports the PES packets still open (the end of a segment before a discontinuity, or of the stream). */
  flush(): void {
    for (const [pid, p] of this.pending) {
      if (p.ptsMs !== null) this.onUnit({ track: p.track, ptsMs: p.ptsMs, bytes: p.bytes });
      this.pending.delete(pid);
    }
  }

  private packet(p: Buffer): void {
    const start = (p[1]! & 0x40) !== 0;
    const pid = ((p[1]! & 0x1f) << 8) | p[2]!;
    const afc = (p[3]! >> 4) & 3;
    let off = 4;
    if (afc === 2 || afc === 3) off += 1 + p[4]!;
    if (afc === 2 || off >= PACKET) return;
    const payload = p.subarray(off);
    if (pid === 0 && start) return this.readPat(payload);
    if (pid === this.pmtPid && start) return this.readPmt(payload);
    this.count(pid, start, payload);
  }

  /** Counts a packet's payload towards its PES packet (the elementary stream bytes, the PES header left out). */
  private count(pid: number, start: boolean, payload: Buffer): void {
    const track = this.tracks.get(pid);
    if (!track) return;
    if (start) {
      const done = this.pending.get(pid);
      if (done && done.ptsMs !== null) this.onUnit({ track, ptsMs: done.ptsMs, bytes: done.bytes });
      const header = payload.length >= 9 ? 9 + payload[8]! : payload.length;
      this.pending.set(pid, {
        track,
        ptsMs: this.unwrapped(pid, pesPtsMs(payload)),
        bytes: Math.max(0, payload.length - header),
      });
    } else {
      const p = this.pending.get(pid);
      if (p) p.bytes += payload.length;
    }
  }

  /**
   * A PTS past the 33-bit clock's wrap (26.5 h, or sooner for an encoder starting near it) continues upwards, as
   * ffmpeg's demuxer unwraps it under -copyts: a step back of more than half the range is a wrap.
   */
  private unwrapped(pid: number, ptsMs: number | null): number | null {
    if (ptsMs === null) return null;
    const w = this.wraps.get(pid) ?? { count: 0, last: ptsMs };
    let v = ptsMs + w.count * PTS_RANGE_MS;
    if (v < w.last - PTS_RANGE_MS / 2) {
      w.count++;
      v += PTS_RANGE_MS;
    }
    w.last = v;
    this.wraps.set(pid, w);
    return v;
  }

  private readPat(payload: Buffer): void {
    this.pmtPid = patPmtPid(payload.subarray(1 + payload[0]!)) ?? this.pmtPid;
  }

  private readPmt(payload: Buffer): void {
    let video = false;
    let audio = false;
    for (const { type, pid } of pmtStreams(payload.subarray(1 + payload[0]!))) {
      if (VIDEO_TYPES.has(type) && !video) {
        this.tracks.set(pid, 'video');
        video = true;
      } else if (AUDIO_TYPES.has(type) && !audio) {
        this.tracks.set(pid, 'audio');
        audio = true;
      }
    }
  }
}

/** The PTS of a PES packet header (ms), null when it has none. */
export function pesPtsMs(pes: Buffer): number | null {
  if (pes.length < 14 || pes[0] !== 0 || pes[1] !== 0 || pes[2] !== 1) return null;
  if ((pes[7]! & 0x80) === 0) return null;
  const b = pes;
  const pts =
    (b[9]! & 0x0e) * 536870912 + // bits 32..30, shifted left 29
    ((b[10]! << 22) | ((b[11]! & 0xfe) << 14) | (b[12]! << 7) | (b[13]! >> 1));
  return pts / 90;
}
