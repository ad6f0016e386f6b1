/**
 * What an HLS media segment (MPEG-2 TS, ISO/IEC 13818-1) carries, read from its bytes: the H.264 sequence parameter
 * set of its video (profile, constraint flags, level, coded size after cropping; ITU-T H.264 7.3.2.1.1) and its audio
 * codec (AAC object type from the first ADTS header, ISO/IEC 14496-3 1.A.2; or MPEG audio). The master playlist's
 * CODECS and RESOLUTION (RFC 8216 4.3.4.2) are written from it, so they say what the streams are, not a guess.
 */

/** The codecs of one segment, as RFC 6381 codec strings, and the coded picture size. */
export interface SegmentCodecs {
  /** `avc1.PPCCLL` (profile_idc, constraint flags, level_idc in hex), or null when no H.264 SPS was found. */
  video: string | null;
  width?: number;
  height?: number;
  /** `mp4a.40.2` (AAC-LC), `mp4a.40.5` (HE-AAC), `mp4a.40.N` (other AAC object types), `mp4a.40.34` (MP3) or null. */
  audio: string | null;
}

const PACKET = 188;
const STREAM_H264 = 0x1b;
const STREAM_AAC = 0x0f;
const STREAM_MPEG_AUDIO = [0x03, 0x04];

/** Reads the codecs of a TS segment. Never throws: what cannot be read is null. */
export function probeSegment(ts: Buffer): SegmentCodecs {
  const streams = programStreams(ts);
  const payload = (pid: number | undefined, max: number): Buffer =>
    pid === undefined ? Buffer.alloc(0) : pesBytes(ts, pid, max);
  const sps = findSps(payload(streams.video, 64 * 1024));
  let audio: string | null = null;
  if (streams.audioType !== undefined && STREAM_MPEG_AUDIO.includes(streams.audioType)) audio = 'mp4a.40.34';
  else if (streams.audioType === STREAM_AAC) {
    const aot = adtsObjectType(payload(streams.audio, 4096));
    audio = aot === null ? null : `mp4a.40.${aot}`;
  }
  if (!sps) return { video: null, audio };
  const hex = (n: number) => n.toString(16).padStart(2, '0');
  const size = spsSize(sps);
  return { video: `avc1.${hex(sps[1]!)}${hex(sps[2]!)}${hex(sps[3]!)}`, ...(size ?? {}), audio };
}

/** The PIDs of the first H.264 and the first audio stream, from the PAT and the first PMT. */
function programStreams(ts: Buffer): { video?: number; audio?: number; audioType?: number } {
  let pmtPid: number | undefined;
  for (let off = 0; off + PACKET <= ts.length; off += PACKET) {
    const p = packetPayload(ts, off);
    if (!p || !p.start) continue;
    const section = p.data.subarray(1 + p.data[0]!); // pointer_field
    if (p.pid === 0 && pmtPid === undefined) pmtPid = patPmtPid(section);
    else if (pmtPid !== undefined && p.pid === pmtPid && section.length >= 16) {
      const out: { video?: number; audio?: number; audioType?: number } = {};
      for (const { type, pid } of pmtStreams(section)) {
        if (type === STREAM_H264 && out.video === undefined) out.video = pid;
        if ((type === STREAM_AAC || STREAM_MPEG_AUDIO.includes(type)) && out.audio === undefined) {
          out.audio = pid;
          out.audioType = type;
        }
      }
      return out;
    }
  }
  return {};
}

/** The PMT PID of the first program of a PAT section (after its pointer field), or undefined. */
export function patPmtPid(section: Buffer): number | undefined {
  if (section.length < 12) return undefined;
  // program entries after the 8-byte header, up to the CRC
  const end = Math.min(section.length - 4, 3 + (((section[1]! & 0x0f) << 8) | section[2]!) - 4);
  for (let i = 8; i + 4 <= end; i += 4) {
    const program = (section[i]! << 8) | section[i + 1]!;
    if (program !== 0) return ((section[i + 2]! & 0x1f) << 8) | section[i + 3]!;
  }
  return undefined;
}

/** The elementary streams a PMT section (after its pointer field) lists: stream type and PID, in order. */
export function pmtStreams(section: Buffer): { type: number; pid: number }[] {
  if (section.length < 12) return [];
  const end = Math.min(section.length - 4, 3 + (((section[1]! & 0x0f) << 8) | section[2]!) - 4);
  const out: { type: number; pid: number }[] = [];
  let i = 12 + (((section[10]! & 0x0f) << 8) | section[11]!); // after program_info
  for (; i + 5 <= end; i += 5 + (((section[i + 3]! & 0x0f) << 8) | section[i + 4]!))
    out.push({ type: section[i]!, pid: ((section[i + 1]! & 0x1f) << 8) | section[i + 2]! });
  return out;
}

function packetPayload(ts: Buffer, off: number): { pid: number; start: boolean; data: Buffer } | null {
  if (ts[off] !== 0x47) return null;
  const pid = ((ts[off + 1]! & 0x1f) << 8) | ts[off + 2]!;
  const start = (ts[off + 1]! & 0x40) !== 0;
  const control = (ts[off + 3]! >> 4) & 0x3;
  if (!(control & 1)) return null;
  const begin = off + 4 + (control & 2 ? 1 + ts[off + 4]! : 0);
  if (begin >= off + PACKET) return null;
  return { pid, start, data: ts.subarray(begin, off + PACKET) };
}

/** The elementary stream bytes of `pid` (PES headers removed), up to `max` bytes. */
function pesBytes(ts: Buffer, pid: number, max: number): Buffer {
  const parts: Buffer[] = [];
  let total = 0;
  let started = false;
  for (let off = 0; off + PACKET <= ts.length && total < max; off += PACKET) {
    const p = packetPayload(ts, off);
    if (!p || p.pid !== pid) continue;
    let data = p.data;
    if (p.start) {
      if (data.length < 9 || data[0] !== 0 || data[1] !== 0 || data[2] !== 1) continue;
      data = data.subarray(9 + data[8]!);
      started = true;
    }
    if (!started) continue;
    parts.push(data);
    total += data.length;
  }
  return Buffer.concat(parts);
}

/** The first sequence parameter set NAL unit (nal_unit_type 7) of an Annex B byte stream, emulation prevention removed. */
function findSps(es: Buffer): Buffer | null {
  for (let i = 0; i + 4 < es.length; i++) {
    if (es[i] !== 0 || es[i + 1] !== 0 || es[i + 2] !== 1 || (es[i + 3]! & 0x1f) !== 7) continue;
    let end = i + 4;
    while (end + 2 < es.length && !(es[end] === 0 && es[end + 1] === 0 && es[end + 2]! <= 1)) end++;
    const raw = es.subarray(i + 3, end + 2 >= es.length ? es.length : end);
    const out: number[] = [];
    for (let j = 0; j < raw.length; j++) {
      if (j >= 2 && raw[j] === 3 && raw[j - 1] === 0 && raw[j - 2] === 0) continue;
      out.push(raw[j]!);
    }
    return out.length >= 4 ? Buffer.from(out) : null;
  }
  return null;
}

/** The AAC object type of the first ADTS frame (profile + 1), or null. */
function adtsObjectType(es: Buffer): number | null {
  for (let i = 0; i + 7 <= es.length; i++)
    if (es[i] === 0xff && (es[i + 1]! & 0xf6) === 0xf0) return ((es[i + 2]! >> 6) & 0x3) + 1;
  return null;
}

/** Reads Exp-Golomb coded fields (H.264 9.1) from an RBSP. */
class Bits {
  private pos = 0;
  constructor(private readonly buf: Buffer) {}
  bit(): number {
    if (this.pos >= this.buf.length * 8) throw new RangeError('SPS ended early');
    const b = (this.buf[this.pos >> 3]! >> (7 - (this.pos & 7))) & 1;
    this.pos++;
    return b;
  }
  bits(n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++) v = v * 2 + this.bit();
    return v;
  }
  ue(): number {
    let zeros = 0;
    while (this.bit() === 0) if (++zeros > 31) throw new RangeError('bad Exp-Golomb code');
    return 2 ** zeros - 1 + this.bits(zeros);
  }
  se(): number {
    const k = this.ue();
    return k % 2 ? (k + 1) / 2 : -k / 2;
  }
}

const HIGH_PROFILES = [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135];

/** The cropped picture size of an SPS (H.264 7.3.2.1.1, 7.4.2.1.1), or null when it cannot be read. */
export function spsSize(sps: Buffer): { width: number; height: number } | null {
  try {
    const r = new Bits(sps.subarray(4)); // after the NAL header, profile_idc, constraint flags, level_idc
    const profile = sps[1]!;
    r.ue(); // seq_parameter_set_id
    let chroma = 1;
    let separate = 0;
    if (HIGH_PROFILES.includes(profile)) {
      chroma = r.ue();
      if (chroma === 3) separate = r.bit();
      r.ue(); // bit_depth_luma_minus8
      r.ue(); // bit_depth_chroma_minus8
      r.bit(); // qpprime_y_zero_transform_bypass_flag
      if (r.bit()) for (let i = 0; i < (chroma === 3 ? 12 : 8); i++) if (r.bit()) skipScalingList(r, i < 6 ? 16 : 64);
    }
    r.ue(); // log2_max_frame_num_minus4
    const pocType = r.ue();
    if (pocType === 0) r.ue();
    else if (pocType === 1) {
      r.bit();
      r.se();
      r.se();
      for (let n = r.ue(), i = 0; i < n; i++) r.se();
    }
    r.ue(); // max_num_ref_frames
    r.bit(); // gaps_in_frame_num_value_allowed_flag
    const widthMbs = r.ue() + 1;
    const heightUnits = r.ue() + 1;
    const frameMbsOnly = r.bit();
    if (!frameMbsOnly) r.bit(); // mb_adaptive_frame_field_flag
    r.bit(); // direct_8x8_inference_flag
    let [left, right, top, bottom] = [0, 0, 0, 0];
    if (r.bit()) [left, right, top, bottom] = [r.ue(), r.ue(), r.ue(), r.ue()];
    const arrayType = separate ? 0 : chroma;
    const cropX = arrayType === 0 || arrayType === 3 ? 1 : 2;
    const cropY = (arrayType === 1 ? 2 : 1) * (2 - frameMbsOnly);
    return {
      width: widthMbs * 16 - cropX * (left + right),
      height: (2 - frameMbsOnly) * heightUnits * 16 - cropY * (top + bottom),
    };
  } catch {
    return null;
  }
}

function skipScalingList(r: Bits, size: number): void {
  let last = 8;
  let next = 8;
  for (let j = 0; j < size; j++) {
    if (next !== 0) next = (last + r.se() + 256) % 256;
    last = next === 0 ? last : next;
  }
}
