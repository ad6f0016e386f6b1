/**
 * Whether an RTP payload starts a keyframe, for the codecs WHIP accepts. The session asks the publisher for a keyframe
 * (PLI) until one arrives: a bridge cannot start, nor a new reader decode, before it.
 */
export function startsKeyframe(codec: 'h264' | 'vp8', payload: Buffer): boolean {
  return codec === 'vp8' ? vp8Keyframe(payload) : h264Keyframe(payload);
}

/** VP8 (RFC 7741): the first packet of a frame (S=1, partition 0) whose VP8 header has the key frame bit (P) clear. */
export function vp8Keyframe(p: Buffer): boolean {
  if (p.length < 1) return false;
  const b0 = p[0]!;
  const start = (b0 & 0x10) !== 0 && (b0 & 0x07) === 0;
  if (!start) return false;
  let i = 1;
  if (b0 & 0x80) {
    if (p.length < 2) return false;
    const x = p[1]!;
    i = 2;
    if (x & 0x80) i += p.length > i && p[i]! & 0x80 ? 2 : 1; // PictureID, 7 or 15 bits
    if (x & 0x40) i += 1; // TL0PICIDX
    if (x & 0x30) i += 1; // TID / KEYIDX
  }
  return p.length > i && (p[i]! & 0x01) === 0;
}

const IDR = 5;
const SPS = 7;
const STAP_A = 24;
const FU_A = 28;

/** H.264 (RFC 6184): an IDR slice or an SPS, alone, aggregated (STAP-A) or as the first fragment (FU-A). */
export function h264Keyframe(p: Buffer): boolean {
  if (p.length < 2) return false;
  const type = p[0]! & 0x1f;
  if (type === IDR || type === SPS) return true;
  if (type === FU_A) return (p[1]! & 0x80) !== 0 && (p[1]! & 0x1f) === IDR;
  if (type !== STAP_A) return false;
  for (let i = 1; i + 2 < p.length;) {
    const size = p.readUInt16BE(i);
    const nal = p[i + 2]! & 0x1f;
    if (nal === IDR || nal === SPS) return true;
    i += 2 + size;
  }
  return false;
}
