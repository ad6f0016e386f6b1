import path from 'node:path';

/** Where ffmpeg reads the upstream. */
export interface InputSpec {
  url: string;
  /** Protocols ffmpeg may open for this input (ffmpeg -protocol_whitelist). */
  protocolWhitelist: string;
  /** A file replayed in a loop at its native rate (fixtures, tests). */
  loopFile?: boolean;
  /** Bound on one network read, in ms: a dead upstream ends ffmpeg instead of hanging it. */
  readTimeoutMs?: number;
  /**
   * The input is the relay's own ingest, which hands a reader the codec headers and its GOP cache at once: a short
   * probe is enough (saves ~350 ms per start). Other inputs (RTSP, SRT…) keep a 1 s probe.
   */
  fastProbe?: boolean;
}

/** HLS output of a channel. */
export interface HlsSpec {
  dir: string;
  segmentSeconds: number;
  listSize: number;
}

/** Everything one relay ffmpeg does. */
export interface RelayPlan {
  input: InputSpec;
  /** RTMP URL of the media server to publish to. */
  rtmpUrl?: string;
  hls?: HlsSpec;
}

/** The one video and (optional) audio track a channel relays: video is mandatory, so a missing one fails the map. */
export const TRACK_MAPS: readonly string[] = ['-map', '0:v:0', '-map', '0:a:0?'];

/** Input options: short probing (the ingest hands over its GOP cache at once), bounded reads, whitelisted protocols. */
export function inputArgs(i: InputSpec): readonly string[] {
  const args = ['-protocol_whitelist', i.protocolWhitelist];
  if (i.loopFile) args.push('-re', '-stream_loop', '-1');
  else args.push('-rw_timeout', String((i.readTimeoutMs ?? 5000) * 1000));
  args.push('-analyzeduration', i.fastProbe ? '200000' : '1000000', '-probesize', i.fastProbe ? '500000' : '1000000', '-i', i.url);
  return args;
}

/** RTMP output into the media server, copying both tracks. */
export function rtmpOutputArgs(url: string): readonly string[] {
  return [...TRACK_MAPS, '-c', 'copy', '-f', 'flv', url];
}

/**
 * HLS output, copying both tracks: a sliding window whose old segments are deleted. append_list continues the
 * numbering when a channel resumes; omit_endlist leaves ENDLIST to an explicit stop, so a worker handoff never
 * ends playback.
 */
export function hlsOutputArgs(h: HlsSpec): readonly string[] {
  return [
    ...TRACK_MAPS, '-c', 'copy', '-f', 'hls',
    '-hls_time', String(h.segmentSeconds),
    '-hls_list_size', String(h.listSize),
    '-hls_flags', 'delete_segments+append_list+omit_endlist+temp_file',
    '-hls_segment_filename', path.join(h.dir, 'seg_%06d.ts'),
    path.join(h.dir, 'index.m3u8'),
  ];
}

/** The whole command line of a relay ffmpeg; progress is written to stdout as key=value blocks. */
export function buildRelayArgs(plan: RelayPlan): readonly string[] {
  if (!plan.rtmpUrl && !plan.hls) throw new Error('a relay needs at least one output');
  return [
    '-hide_banner', '-nostdin', '-loglevel', 'warning', '-progress', 'pipe:1',
    ...inputArgs(plan.input),
    ...(plan.rtmpUrl ? rtmpOutputArgs(plan.rtmpUrl) : []),
    ...(plan.hls ? hlsOutputArgs(plan.hls) : []),
  ];
}

/** A member's stand-in: a media file replayed in a loop at native rate and published, as is, to an RTMP URL. */
export function loopPublishArgs(file: string, rtmpUrl: string): readonly string[] {
  return ['-hide_banner', '-nostdin', '-loglevel', 'error', '-progress', 'pipe:1', '-re', '-stream_loop', '-1', '-i', file, '-c', 'copy', '-f', 'flv', rtmpUrl];
}
