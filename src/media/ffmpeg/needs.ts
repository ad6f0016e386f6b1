/**
 * What the relay asks of its ffmpeg, what each thing enables, and what an upstream URL needs: so a build that lacks
 * something is said at start-up (one line each) and an upstream it cannot read is refused when it is registered.
 */
import { describeCapability, has, type Capability, type FfmpegCapabilities } from './capabilities.js';
import { MIN_SYSTEM_MAJOR, type FfmpegChoice } from './locate.js';

/** A capability the relay uses and what goes without it; `required`: the relay cannot relay anything without it. */
export interface RelayNeed extends Capability {
  enables: string;
  required?: boolean;
}

const p = (name: string, enables: string, required = false): RelayNeed => ({
  kind: 'protocol',
  name,
  enables,
  required,
});
const dmx = (name: string, enables: string): RelayNeed => ({ kind: 'demuxer', name, enables });
const mux = (name: string, enables: string, required = false): RelayNeed => ({
  kind: 'muxer',
  name,
  enables,
  required,
});
const dec = (name: string, enables: string, required = false): RelayNeed => ({
  kind: 'decoder',
  name,
  enables,
  required,
});
const flt = (name: string, enables: string): RelayNeed => ({ kind: 'filter', name, enables });

const TIERS = 'rate tiers 550/900 and watermarks';

/** Everything the relay's command lines use, in the order the start-up warnings list what is missing. */
export const RELAY_NEEDS: readonly RelayNeed[] = [
  p('rtmp', 'reading the ingest and publishing every channel into the media server', true),
  mux('flv', 'publishing every channel into the media server (RTMP)', true),
  mux('hls', 'HLS output', true),
  mux('tee', 'encoded tiers with more than one output', true),
  dec('h264', 'decoding H.264 upstreams for tiers and watermarks', true),
  mux('segment', 'MP4 and FLV recordings'),
  mux('mp4', 'MP4 recordings'),
  { kind: 'encoder', name: 'libx264', enables: `${TIERS}, and converting video that is not H.264` },
  { kind: 'encoder', name: 'aac', enables: `the audio of ${TIERS}, and converting audio that is not AAC` },
  flt('scale', TIERS),
  flt('split', 'several encoded tiers from one decode'),
  flt('setsar', TIERS),
  flt('format', TIERS),
  flt('overlay', 'watermarks'),
  dmx('lavfi', 'a silent audio track for video-only upstreams'),
  flt('anullsrc', 'a silent audio track for video-only upstreams'),
  flt('scale2ref', 'watermarks'),
  p('srt', 'srt:// upstreams'),
  p('rtmps', 'rtmps:// upstreams'),
  p('https', 'https:// upstreams'),
  dmx('rtsp', 'rtsp:// and rtsps:// upstreams'),
  dmx('hls', 'HLS (.m3u8) upstreams'),
  dmx('sdp', '.sdp (RTP from an SFU) upstreams'),
  dec('opus', 'Opus audio upstreams (WebRTC)'),
  dec('vp8', 'VP8 upstreams (WebRTC)'),
  dec('vp9', 'VP9 upstreams'),
  dec('hevc', 'HEVC (H.265) upstreams'),
  dec('av1', 'AV1 upstreams'),
  { kind: 'bsf', name: 'aac_adtstoasc', enables: 'copying ADTS AAC (MPEG-TS, HLS, SRT upstreams) into FLV and MP4' },
  { kind: 'bsf', name: 'setts', enables: "rewriting an upstream's timestamps without re-encoding" },
];

/** The relay's needs this build lacks, in RELAY_NEEDS order. */
export function lackingNeeds(caps: FfmpegCapabilities): RelayNeed[] {
  return RELAY_NEEDS.filter((n) => !has(caps, n));
}

/**
 * What ffmpeg must have to read an upstream URL (as registered; a file is a path): its scheme's protocol or demuxer,
 * the hls demuxer for a `.m3u8`/`.m3u` path, the sdp demuxer and rtp protocol for an `.sdp` file.
 */
export function upstreamNeeds(url: string): Capability[] {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  const needs: Capability[] = [];
  if (scheme === 'rtsp' || scheme === 'rtsps') needs.push({ kind: 'demuxer', name: 'rtsp' });
  if (scheme === 'rtsps') needs.push({ kind: 'protocol', name: 'tls' });
  else if (scheme && scheme !== 'file' && scheme !== 'rtsp') needs.push({ kind: 'protocol', name: scheme });
  let pathname = url;
  try {
    if (scheme) pathname = new URL(url).pathname;
  } catch {
    /* not a URL: the path as given */
  }
  if (scheme?.startsWith('http') && /\.m3u8?$/i.test(pathname)) needs.push({ kind: 'demuxer', name: 'hls' });
  if ((!scheme || scheme === 'file') && /\.sdp$/i.test(pathname))
    needs.push({ kind: 'demuxer', name: 'sdp' }, { kind: 'protocol', name: 'rtp' });
  return needs;
}

/** The first thing this build lacks to read `url`, or null when it has all. */
export function missingForUpstream(caps: FfmpegCapabilities, url: string): Capability | null {
  return upstreamNeeds(url).find((c) => !has(caps, c)) ?? null;
}

/** "ffmpeg 5.1 (5.1.9-0+deb12u1, system) at /usr/bin/ffmpeg". */
export function ffmpegLabel(choice: Pick<FfmpegChoice, 'path' | 'source' | 'version'>): string {
  const v = choice.version;
  const version = v ? `${v.major}.${v.minor} (${v.text}, ${choice.source})` : `of unknown version (${choice.source})`;
  return `ffmpeg ${version} at ${choice.path}`;
}

/** The start-up lines about the chosen ffmpeg: one summary, and one warning per missing capability. */
export function startupReport(
  choice: FfmpegChoice,
  caps: FfmpegCapabilities | null,
): { summary: string; warnings: string[] } {
  const probe = choice.ffprobePath ? `, ffprobe at ${choice.ffprobePath}` : ', no ffprobe beside it';
  const passed = choice.passedOver.length ? ` (passed over: ${choice.passedOver.join('; ')})` : '';
  const summary = `using ${ffmpegLabel(choice)}${probe}${passed}`;
  if (!caps) return { summary, warnings: [`${choice.path} could not be run: no channel can start`] };
  const warnings = lackingNeeds(caps).map((n) => {
    const refused = !n.required && (n.kind === 'protocol' || n.kind === 'demuxer') ? ' (refused with 50008)' : '';
    const effect = n.required ? 'the relay cannot work: no' : 'disabled:';
    return `ffmpeg lacks ${describeCapability(n)} → ${effect} ${n.enables}${refused}`;
  });
  const v = choice.version;
  const bundled = choice.source === 'bundled';
  if (v && v.major < MIN_SYSTEM_MAJOR)
    warnings.push(
      `ffmpeg ${v.major}.${v.minor} is older than ${MIN_SYSTEM_MAJOR}${bundled ? ' (the bundled 2018 build)' : ''}: ` +
        'install a current one with `apt-get install -y ffmpeg` (or set FFMPEG_PATH)',
    );
  return { summary, warnings };
}
