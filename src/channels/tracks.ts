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
 * The per-track plan of ORIGINAL for an upstream: video copied when H.264 and upright, else converted to H.264;
 * audio copied when AAC or MP3 beside copied video, else converted to AAC; a silent AAC track when the upstream has none. An unknown codec is
 * copied (ffmpeg's start then says whether it fits; the runner plans again with what ffmpeg reported).
 */
export function planTracks(codecs: UpstreamCodecs): ChannelTracks {
  const v = normalizeCodec('video', codecs.video);
  let video: TrackPlan;
  if (v === null) video = { codec: null, mode: 'copied' };
  else if (!FITTING_VIDEO.has(v)) video = { codec: v, mode: 'converted', to: 'h264', why: `${v} ${NOT_FIT}` };
  else if (!upright(codecs.rotation))
    video = { codec: v, mode: 'converted', to: 'h264', why: `rotated ${codecs.rotation}°: copying cannot rotate` };
  else video = { codec: v, mode: 'copied' };
  const a = codecs.audio === 'none' ? 'none' : normalizeCodec('audio', codecs.audio);
  let audio: TrackPlan | null;
  if (a === 'none') audio = { codec: 'none', mode: 'silent', to: 'aac', why: SILENT };
  else if (a === null) audio = { codec: null, mode: 'copied' };
  else if (!FITTING_AUDIO.has(a)) audio = { codec: a, mode: 'converted', to: 'aac', why: `${a} ${NOT_FIT}` };
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
