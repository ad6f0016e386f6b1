/**
 * The argument list of the one ffmpeg that decodes a playback (pure). Video and audio are both decoded, not copied:
 * the video through `showinfo` (PTS, size, key frames) and a 32×18 grey copy's `showinfo` (its mean luma, for flash
 * onsets); the audio resampled to 8 kHz in 10 ms frames through `astats` and `ametadata` (PTS and RMS level). All of
 * it is logged on stderr at info level (`-loglevel level+info`, read by decoder-log.ts); frames go to the null muxer.
 * `-copyts` keeps the stream's own timestamps, so decoded PTS compare with FLV tag and TS PES timestamps.
 */
import { tierOutputArgs } from '../media/ffmpeg/args.js';

/** Where the decoder reads: a URL ffmpeg opens itself (RTMP), or bytes the probe writes to its stdin. */
export type DecoderInput = { kind: 'url'; url: string } | { kind: 'pipe'; format: 'flv' | 'mpegts' };

export interface DecoderArgsOptions {
  input: DecoderInput;
  /** Also copy the input's tracks as FLV to fd 3 (the byte accounting of an input ffmpeg reads itself). */
  copyFlvToFd3?: boolean;
  /** Seconds without data before a URL input fails (AVIO rw_timeout). */
  readTimeoutS?: number;
}

export const VIDEO_GRAPH = 'showinfo=checksum=0,scale=32:18:flags=area,format=gray,showinfo';
/** The rate the audio is measured at (10 ms = 80 samples): also the audio chain's time base (1/8000). */
export const AUDIO_SAMPLE_RATE = 8000;
export const AUDIO_GRAPH =
  `aresample=${AUDIO_SAMPLE_RATE},asetnsamples=n=80:p=0,astats=metadata=1:reset=1:measure_perchannel=none:measure_overall=RMS_level,` +
  'ametadata=mode=print:key=lavfi.astats.Overall.RMS_level';
/** How much input the decoder probes before decoding (µs). */
export const PROBE_US = 1_000_000;
/** The frame written by --snapshot (0-based): far enough in that a player would have shown it. */
export const SNAPSHOT_FRAME = 25;

/**
 * The ffmpeg that writes `--snapshot`: it decodes the first bytes the player received (FLV or MPEG-TS on stdin) and
 * keeps frame SNAPSHOT_FRAME, or the last one when there are fewer, as PNG. (A second output on the playback's own
 * ffmpeg would do it in one pass, but ffmpeg 5.1 then starves the audio graph of a live input: the A/V figures lie.)
 */
export function snapshotArgs(format: 'flv' | 'mpegts', file: string): string[] {
  return [
    '-hide_banner',
    '-loglevel',
    'error',
    '-f',
    format,
    '-i',
    'pipe:0',
    '-map',
    '0:v:0',
    '-vf',
    `select=lte(n\\,${SNAPSHOT_FRAME})`,
    '-vsync',
    'passthrough',
    '-update',
    '1',
    '-y',
    file,
  ];
}
export function decoderArgs(o: DecoderArgsOptions): string[] {
  const input =
    o.input.kind === 'url'
      ? ['-rw_timeout', String((o.readTimeoutS ?? 10) * 1_000_000), '-i', o.input.url]
      : ['-f', o.input.format, '-i', 'pipe:0'];
  // probing at most 1 s of input, not ffmpeg's 5 s, and no frame rate estimate: a live HLS start has a segment or
  // two (2 s each) and ffmpeg held the first frame until a third came (4.1 s instead of 0.1 s); FLV and RTMP waited
  // for a second of media past a short GOP cache (0.3-1.3 s instead of 0.1-0.3 s)
  const probe = ['-analyzeduration', String(PROBE_US), '-fpsprobesize', '0'];
  const args = ['-hide_banner', '-nostats', '-loglevel', 'level+info', '-copyts', ...probe, ...input];
  args.push('-map', '0:v:0', '-vf', VIDEO_GRAPH, '-map', '0:a:0?', '-af', AUDIO_GRAPH, '-f', 'null', '-');
  // the tracks as a copied tier sends them (media/ffmpeg/args.ts), to fd 3 as FLV
  if (o.copyFlvToFd3) args.push(...tierOutputArgs({ sinks: [{ kind: 'rtmp', url: 'pipe:3' }] }, null));
  return args;
}
