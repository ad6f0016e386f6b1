/**
 * FLV tags (Adobe Flash Video File Format Specification 10.1, E.4) as a player's byte accounting reads them: the
 * stream is fed chunk by chunk and each complete tag is handed on with its type, timestamp (DTS, ms) and body.
 */

/** One FLV tag: its type (8 audio, 9 video, 18 script data), timestamp (ms, the DTS) and body. */
export interface FlvTag {
  type: number;
  ts: number;
  body: Buffer;
}

/**
 * Feeds an FLV byte stream, chunk by chunk, and calls `onTag` for each complete tag; `onTag` returning true stops the
 * parsing. Only the unparsed tail is kept, so long watches by many viewers stay cheap.
 */
export function flvTags(onTag: (tag: FlvTag) => boolean | void): (chunk: Buffer) => void {
  let buf: Buffer = Buffer.alloc(0);
  let off = 13; // FLV header + first PreviousTagSize
  let stopped = false;
  return (chunk) => {
    if (stopped) return;
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    while (off + 11 <= buf.length) {
      const size = buf.readUIntBE(off + 1, 3);
      if (off + 11 + size + 4 > buf.length) break;
      const tag = {
        type: buf[off]! & 0x1f,
        ts: (buf.readUIntBE(off + 4, 3) | (buf[off + 7]! << 24)) >>> 0,
        body: buf.subarray(off + 11, off + 11 + size),
      };
      off += 11 + size + 4;
      if (onTag(tag) === true) {
        stopped = true;
        return;
      }
    }
    if (off <= buf.length) {
      buf = buf.subarray(off);
      off = 0;
    }
  };
}

/** A video keyframe (AVC NALU, not the sequence header). */
export const isKeyframe = (t: FlvTag): boolean => t.type === 9 && t.body[0]! >> 4 === 1 && t.body[1] === 1;

/** One coded audio or video frame of a stream, as the byte accounting counts it. */
export interface MediaUnit {
  track: 'audio' | 'video';
  /** Presentation timestamp (ms). */
  ptsMs: number;
  /** Bytes of the coded frame (the elementary stream: no FLV tag, AVC/AAC packet, PES or TS headers). */
  bytes: number;
}

/**
 * The media unit of an FLV tag, null for script data and sequence headers. Video PTS adds the AVC/HEVC composition
 * time (a signed 24-bit ms offset, E.4.3.1) for codecs 7 (AVC) and 12 (HEVC, as the common extension carries it).
 */
export function unitOfTag(t: FlvTag): MediaUnit | null {
  if (t.type === 8) {
    if (t.body.length < 2) return null;
    const aac = t.body[0]! >> 4 === 10;
    if (aac && t.body[1] === 0) return null; // AAC sequence header
    return { track: 'audio', ptsMs: t.ts, bytes: t.body.length - (aac ? 2 : 1) };
  }
  if (t.type !== 9 || t.body.length < 2) return null;
  const codec = t.body[0]! & 0x0f;
  if (codec === 7 || codec === 12) {
    if (t.body[1] !== 1 || t.body.length < 5) return null; // sequence header or end of sequence
    const cts = (t.body.readUIntBE(2, 3) << 8) >> 8;
    return { track: 'video', ptsMs: t.ts + cts, bytes: t.body.length - 5 };
  }
  return { track: 'video', ptsMs: t.ts, bytes: t.body.length - 1 };
}
