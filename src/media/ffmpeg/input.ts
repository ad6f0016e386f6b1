import { execFile } from 'node:child_process';

/** One source: where ffmpeg reads one member's upstream. */
export interface SourceSpec {
  /** Whose upstream it is, for logs and layouts: `<userId>/<camera|screen>`. */
  member: string;
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
  /**
   * An http(s) input's egress gateway (`http://127.0.0.1:<port>`) as ffmpeg's `-http_proxy`: any plain-HTTP request
   * ffmpeg makes of a URL it did not get in gateway form goes to the gateway too (the runner also sets the `http_proxy`
   * environment variable, which every HTTP request of ffmpeg reads).
   */
  httpProxy?: string;
  /**
   * An RTSP input, read over TCP (`-rtsp_transport tcp`: RTP interleaved on the RTSP connection, no UDP). Its reads
   * are bounded by the rtsp demuxer's socket timeout (it has no -rw_timeout), whose name depends on the ffmpeg (see
   * rtspTimeoutOption); none when this ffmpeg has neither.
   */
  rtsp?: { timeoutOption?: RtspTimeoutOption };
  /** The input is read as HLS (`-f hls`) with these segment extension rules (options the ffmpeg has; see below). */
  hls?: HlsRules;
  /**
   * The input's clock is not trusted (an external upstream; the ingest's is rebased by the media server): ffmpeg
   * rebases its jumps and restarts (see `clockFaultArgs`), and an FLV input (RTMP, a `.flv` URL) is read as `live_flv`,
   * the flv demuxer that declares discontinuous timestamps (the plain one makes ffmpeg trust them).
   */
  untrustedClock?: boolean;
  /**
   * A raw input written by the worker (a mix's composed canvas): yuv420p video on stdin (`pipe:0`) or s16le stereo
   * 48 kHz audio on fd 3 (`pipe:3`). `url` and the other fields are then unused.
   */
  raw?: { kind: 'video'; width: number; height: number; fps: number } | { kind: 'audio' };
}

/**
 * The input clock step (s) beyond which ffmpeg rebases an input of a format with discontinuous timestamps (FLV read
 * as `live_flv`, MPEG-TS over SRT/UDP/files, HLS): a forward step of more than this, or any step back of more than
 * 0.1 s, continues one frame after the previous packet, the same shift for every stream of the input (A/V sync kept).
 * ffmpeg's default is 10 s: a jump of 5 s made a 6 s HLS segment and a 5 s hole in FLV.
 */
export const CLOCK_FAULT_SECONDS = 1;

/** Global ffmpeg options of a relay reading `sources`: the clock fault threshold when any input is untrusted. */
export function clockFaultArgs(sources: readonly SourceSpec[]): readonly string[] {
  return sources.some((s) => s.untrustedClock) ? ['-dts_delta_threshold', String(CLOCK_FAULT_SECONDS)] : [];
}

/** Whether ffmpeg reads `url` with its flv demuxer: RTMP, or a path ending in `.flv`. */
export function isFlvUrl(url: string): boolean {
  if (/^rtmp[st]?e?:\/\//i.test(url)) return true;
  return /\.flv$/i.test(url.split(/[?#]/)[0]!);
}

/** Extension rules of an HLS input, each only where the installed ffmpeg's hls demuxer has the option. */
export interface HlsRules {
  /** `-allowed_extensions` (ffmpeg ≤ 7.0: checked on file:// URLs only, which the protocol whitelist refuses anyway). */
  allowedExtensions?: string;
  /** `-allowed_segment_extensions` (ffmpeg ≥ 7.1: checked on every segment URL, with `-extension_picky 1`). */
  allowedSegmentExtensions?: string;
}

/** Input options: short probing for the ingest, bounded reads, whitelisted protocols, the egress, HLS rules. */
export function inputArgs(i: SourceSpec): readonly string[] {
  if (i.raw?.kind === 'video') {
    const { width, height, fps } = i.raw;
    return [
      '-f',
      'rawvideo',
      '-pix_fmt',
      'yuv420p',
      '-video_size',
      `${width}x${height}`,
      '-framerate',
      String(fps),
    ].concat(['-thread_queue_size', '64', '-i', 'pipe:0']);
  }
  if (i.raw) return ['-thread_queue_size', '256', '-f', 's16le', '-ar', '48000', '-ac', '2', '-i', 'pipe:3'];
  const args = ['-protocol_whitelist', i.protocolWhitelist];
  const timeoutUs = String((i.readTimeoutMs ?? 5000) * 1000);
  if (i.loopFile) args.push('-re', '-stream_loop', '-1');
  else if (i.rtsp) {
    args.push('-rtsp_transport', 'tcp');
    if (i.rtsp.timeoutOption) args.push(`-${i.rtsp.timeoutOption}`, timeoutUs);
  } else args.push('-rw_timeout', timeoutUs);
  if (i.httpProxy) args.push('-http_proxy', i.httpProxy);
  if (i.untrustedClock && !i.hls && isFlvUrl(i.url)) args.push('-f', 'live_flv');
  if (i.hls) {
    args.push('-f', 'hls');
    if (i.hls.allowedExtensions) args.push('-allowed_extensions', i.hls.allowedExtensions);
    if (i.hls.allowedSegmentExtensions)
      args.push('-allowed_segment_extensions', i.hls.allowedSegmentExtensions, '-extension_picky', '1');
  }
  args.push(
    '-analyzeduration',
    i.fastProbe ? '200000' : '1000000',
    '-probesize',
    i.fastProbe ? '500000' : '1000000',
    '-i',
    i.url,
  );
  return args;
}

/** Media files an HLS input may name as segments (and, for ffmpeg ≤ 7.0, playlists). */
export const HLS_SEGMENT_EXTENSIONS = 'ts,m4s,mp4,m4a,m4v,aac,mp3,ac3,ec3,cmfv,cmfa';

const asked = new Map<string, Promise<ReadonlySet<string>>>();

/**
 * The options of a demuxer (`hls`, `rtsp`) of the ffmpeg at `ffmpegPath` (`ffmpeg -h demuxer=<name>`), asked once per
 * path and demuxer; an empty set when it cannot be asked.
 */
export function demuxerOptions(ffmpegPath: string, demuxer: 'hls' | 'rtsp'): Promise<ReadonlySet<string>> {
  const key = `${ffmpegPath}\0${demuxer}`;
  let known = asked.get(key);
  if (!known) {
    known = new Promise((resolve) => {
      execFile(ffmpegPath, ['-hide_banner', '-h', `demuxer=${demuxer}`], { timeout: 10_000 }, (err, stdout) =>
        resolve(new Set(err ? [] : [...stdout.matchAll(/^\s+-(\w+)\s/gm)].map((m) => m[1]!))),
      );
    });
    asked.set(key, known);
  }
  return known;
}

/** The options of the hls demuxer of the ffmpeg at `ffmpegPath`. */
export const hlsDemuxerOptions = (ffmpegPath: string) => demuxerOptions(ffmpegPath, 'hls');

/** The name of the rtsp demuxer's socket I/O timeout (µs). */
export type RtspTimeoutOption = 'stimeout' | 'timeout';

/**
 * Which option bounds an RTSP input's socket reads, for an ffmpeg whose rtsp demuxer has `options`: `stimeout` up to
 * 4.x (where `timeout` means the listen timeout, and would turn the input into a server), `timeout` from 5.0 on.
 */
export function rtspTimeoutOption(options: ReadonlySet<string>): RtspTimeoutOption | undefined {
  if (options.has('stimeout')) return 'stimeout';
  return options.has('timeout') ? 'timeout' : undefined;
}

/** The extension rules an HLS input gets from an ffmpeg whose hls demuxer has `options`. */
export function hlsRules(options: ReadonlySet<string>): HlsRules {
  return {
    ...(options.has('allowed_extensions') ? { allowedExtensions: `${HLS_SEGMENT_EXTENSIONS},m3u8` } : {}),
    ...(options.has('allowed_segment_extensions') ? { allowedSegmentExtensions: HLS_SEGMENT_EXTENSIONS } : {}),
  };
}
