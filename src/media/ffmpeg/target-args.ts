/**
 * The ffmpeg of one push target (issue 14): it reads one tier of a channel back from the relay's own media server over
 * RTMP and copies it (video and audio, no re-encode) to an external destination — FLV for rtmp(s), MPEG-TS for srt.
 * One small process per target, so a destination that refuses, stalls or dies never touches the channel's own ffmpeg
 * or the other targets.
 */

/** What one push target ffmpeg reads and where it writes. */
export interface TargetArgsSpec {
  /** The channel's tier on the media server, with a single-use read token (rtmp://…/live/<stream>?…). */
  input: string;
  /** The destination (its stream key is a secret: log it only through `redact`). */
  output: string;
  format: 'flv' | 'mpegts';
  /** The only protocols ffmpeg may open for the output (`rtmp,tcp`, `rtmps,rtmp,tcp,tls`, `srt,udp`). */
  outputProtocols: string;
  /** Bound of one network read or write, µs: a silent input or a destination that stops reading ends ffmpeg. */
  rwTimeoutUs: number;
  /**
   * The TCP send buffer of an rtmp(s) output, bytes (the kernel doubles it). Without it Linux grows it to 4 MiB and a
   * destination that stops reading is noticed only once that is full: measured on loopback at 1.6 Mbit/s, 17 s of
   * writes still succeeded, against 2 s with 64 KiB.
   */
  sendBufferBytes: number;
}

/** The argument list (without the ffmpeg path) of a push target's ffmpeg. */
export function buildTargetArgs(s: TargetArgsSpec): string[] {
  return [
    '-hide_banner',
    '-nostdin',
    '-loglevel',
    'warning',
    '-nostats',
    '-progress',
    'pipe:1',
    '-rw_timeout',
    String(s.rwTimeoutUs),
    '-protocol_whitelist',
    'rtmp,tcp',
    '-i',
    s.input,
    // the tier's first video and audio track; audio is required (services such as YouTube refuse video-only): a tier
    // always carries one, silent AAC when the upstream has none (RelayPlan.silentAudio)
    '-map',
    '0:v:0',
    '-map',
    '0:a:0',
    '-c',
    'copy',
    ...(s.format === 'flv'
      ? ['-flvflags', 'no_duration_filesize', '-send_buffer_size', String(s.sendBufferBytes)]
      : ['-mpegts_flags', 'resend_headers']),
    '-rw_timeout',
    String(s.rwTimeoutUs),
    '-protocol_whitelist',
    s.outputProtocols,
    '-f',
    s.format,
    s.output,
  ];
}
