/**
 * The codec policy of ORIGINAL (README "Codec policy"): per track, copy when the upstream's codec fits every output
 * the relay writes (FLV for RTMP/HTTP-FLV, MPEG-TS for HLS, MP4/FLV/TS recordings), otherwise convert just that track:
 * video to H.264 (libx264, the upstream's size, about its bitrate), audio to AAC. Pure: no ffmpeg, no I/O.
 */

import type { ChannelInput } from './types.js';

/** What is known of an upstream's tracks. `null` codec: not known yet (copied until ffmpeg says otherwise). */
export interface UpstreamCodecs {
  /** ffmpeg's codec name (`h264`, `vp8`, `hevc`, `av1` …), or null when not known. */
  video: string | null;
  /** ffmpeg's codec name (`aac`, `opus`, `mp3`, `pcm_s16le` …); `none` when the upstream has no audio; null: unknown. */
  audio: string | null;
  /** Display rotation of the video in degrees (0, 90, 180, 270); copying cannot rotate. */
  rotation?: number;
  /** The video's profile as ffmpeg names it (`High`, `High 10` …); null or absent: not known. */
  videoProfile?: string | null;
  /** The video's pixel format (`yuv420p`, `yuv420p10le` …); null or absent: not known. */
  pixFmt?: string | null;
  /** The audio's sample rate, Hz; null or absent: not known. */
  audioRate?: number | null;
  /** The video's bit rate, kbit/s (ffmpeg's report of a file); null or absent: not known. */
  videoKbps?: number | null;
}

/** What ORIGINAL does with one track, as the channel view and metrics show it. */
export interface TrackPlan {
  /** The upstream's codec (ffmpeg's name), or null when not known (then it is copied). */
  codec: string | null;
  /** `silent`: the upstream has no audio, and a silent AAC track is added (FLV players and CDNs expect audio). */
  mode: 'copied' | 'converted' | 'silent';
  /** The codec it is converted to. */
  to?: 'h264' | 'aac';
  /** Why it is converted, e.g. `vp8 does not fit FLV, MPEG-TS and MP4`. */
  why?: string;
  /** The upstream video's bit rate, kbit/s, when ffmpeg reported it: a converted video is encoded at about it. */
  kbps?: number;
}

/** Per-track decisions of a channel's ORIGINAL tier; `audio` null only in records older than the silent track. */
export interface ChannelTracks {
  video: TrackPlan;
  audio: TrackPlan | null;
}

/** The codecs every relay output (FLV, MPEG-TS, MP4) carries and every common player plays. */
export const FITTING_VIDEO: ReadonlySet<string> = new Set(['h264']);
/** AAC everywhere; MP3 is carried by FLV, MPEG-TS and MP4 alike, the only outputs the relay writes. */
export const FITTING_AUDIO: ReadonlySet<string> = new Set(['aac', 'mp3']);
/**
 * H.264 profiles every player decodes (browsers through MSE, Safari, phones' hardware): 8-bit 4:2:0 (ITU-T H.264
 * A.2.1–A.2.4). High 10, High 4:2:2 and High 4:4:4 play almost nowhere, so they are converted.
 */
const PLAYABLE_H264_PROFILES: ReadonlySet<string> = new Set([
  'baseline',
  'constrained baseline',
  'main',
  'extended',
  'high',
  'progressive high',
  'constrained high',
]);
const PLAYABLE_PIX_FMTS: ReadonlySet<string> = new Set(['yuv420p', 'yuvj420p']);
/** FLV's SoundRate field has 5.5, 11, 22 and 44 kHz; ffmpeg's FLV muxer also writes 48 kHz MP3 (flagged as 44). */
const FLV_MP3_RATES: ReadonlySet<number> = new Set([11025, 22050, 44100, 48000]);

/** Why H.264 of this profile / pixel format cannot be copied, or null when it can (or nothing is known). */
function unplayableH264(c: UpstreamCodecs): string | null {
  const profile = c.videoProfile?.toLowerCase();
  if (profile && !PLAYABLE_H264_PROFILES.has(profile))
    return `h264 ${c.videoProfile}${c.pixFmt ? ` (${c.pixFmt})` : ''}: players decode 8-bit 4:2:0 H.264 only`;
  if (c.pixFmt && !PLAYABLE_PIX_FMTS.has(c.pixFmt)) return `h264 in ${c.pixFmt}: players decode 8-bit 4:2:0 H.264 only`;
  return null;
}

// FLV SoundFormat ids and AVC/HEVC codec ids as node-media-server reports them for an ingest member.
const FLV_AUDIO: Record<string, string> = {
  '0': 'pcm_s16le',
  '1': 'adpcm_swf',
  '2': 'mp3',
  '3': 'pcm_s16le',
  '4': 'nellymoser',
  '5': 'nellymoser',
  '6': 'nellymoser',
  '7': 'pcm_alaw',
  '8': 'pcm_mulaw',
  '10': 'aac',
  '11': 'speex',
  '13': 'opus',
};
const FLV_VIDEO: Record<string, string> = { '7': 'h264', '12': 'hevc', '2': 'flv1', '4': 'vp6f', '5': 'vp6a' };

/** A codec name as ffmpeg spells it, from ffmpeg's own name or an FLV codec id (the ingest's); null stays null. */
export function normalizeCodec(kind: 'video' | 'audio', codec: string | null | undefined): string | null {
  if (codec === null || codec === undefined || codec === '') return null;
  const c = codec.toLowerCase();
  const ids = kind === 'video' ? FLV_VIDEO : FLV_AUDIO;
  if (ids[c]) return ids[c]!;
  if (c === 'avc' || c === 'h.264') return 'h264';
  if (c === 'h265' || c === 'h.265') return 'hevc';
  return c;
}

function upright(rotation: number | undefined): boolean {
  return !rotation || ((Math.round(rotation) % 360) + 360) % 360 === 0;
}

/**
 * The per-track plan of ORIGINAL for an upstream: video copied when H.264 of an 8-bit 4:2:0 profile and upright, else
 * converted to H.264; audio copied when AAC (or MP3 at a rate FLV carries) beside copied video, else converted to AAC; a silent AAC track when the upstream has none. An unknown codec is
 * copied (ffmpeg's start then says whether it fits; the runner plans again with what ffmpeg reported).
 */
export function planTracks(codecs: UpstreamCodecs): ChannelTracks {
  const v = normalizeCodec('video', codecs.video);
  let video: TrackPlan;
  if (v === null) video = { codec: null, mode: 'copied' };
  else if (!FITTING_VIDEO.has(v)) video = { codec: v, mode: 'converted', to: 'h264', why: `${v} ${NOT_FIT}` };
  else if (!upright(codecs.rotation))
    video = { codec: v, mode: 'converted', to: 'h264', why: `rotated ${codecs.rotation}°: copying cannot rotate` };
  else if (unplayableH264(codecs)) video = { codec: v, mode: 'converted', to: 'h264', why: unplayableH264(codecs)! };
  else video = { codec: v, mode: 'copied' };
  if (video.mode === 'converted' && codecs.videoKbps) video.kbps = codecs.videoKbps;
  const a = codecs.audio === 'none' ? 'none' : normalizeCodec('audio', codecs.audio);
  let audio: TrackPlan | null;
  if (a === 'none') audio = { codec: 'none', mode: 'silent', to: 'aac', why: SILENT };
  else if (a === null) audio = { codec: null, mode: 'copied' };
  else if (!FITTING_AUDIO.has(a)) audio = { codec: a, mode: 'converted', to: 'aac', why: `${a} ${NOT_FIT}` };
  else if (a === 'mp3' && codecs.audioRate && !FLV_MP3_RATES.has(codecs.audioRate))
    audio = {
      codec: a,
      mode: 'converted',
      to: 'aac',
      why: `mp3 at ${codecs.audioRate} Hz: FLV carries MP3 at 11, 22, 44 kHz`,
    };
  else if (video.mode === 'converted') audio = { codec: a, mode: 'converted', to: 'aac', why: WITH_VIDEO };
  else audio = { codec: a, mode: 'copied' };
  return { video, audio };
}

const NOT_FIT = 'does not fit FLV, MPEG-TS and MP4 alike';
// measured: AAC copied beside re-encoded video fails the FLV output at the upstream's first timestamp jump (a loop)
const WITH_VIDEO = 'encoded with the converted video: copied beside it, it breaks at timestamp jumps';
const SILENT = 'the upstream has no audio: a silent track, as FLV players and CDNs expect audio';

/** What a channel's input says of its codecs at start: the ingest's registration; nothing for an external URL. */
export function inputCodecs(input: ChannelInput): UpstreamCodecs {
  if (input.kind !== 'ingest') return { video: null, audio: null };
  return { video: input.videoCodec ?? null, audio: input.audioCodec ?? null };
}

/** Whether any track of a plan is converted. */
export function anyConverted(t: ChannelTracks): boolean {
  return t.video.mode === 'converted' || (!!t.audio && t.audio.mode !== 'copied');
}
