/**
 * What the decoding ffmpeg tells on stderr (`-loglevel level+info`), read line by line: each decoded video frame
 * (showinfo: PTS, size, keyframe), its mean luma (a second showinfo on a 32×18 grey copy), each 10 ms of decoded audio
 * (ametadata: PTS and RMS level from astats), and errors. The labels are those of `decoderArgs` (args.ts).
 *
 * Times come from the integer `pts:` and the filter's time base: ffmpeg prints `pts_time` with 6 significant digits
 * (`%.6g`), so past 10 000 s (under 3 hours of a stream's clock, kept by -copyts) frames 33 ms apart print the same.
 * A showinfo tells its time base once (`config in time_base: 1/15360`); the audio chain runs at AUDIO_SAMPLE_RATE.
 */
import { AUDIO_SAMPLE_RATE } from './args.js';

/** One fact of the decoder's log. */
export type DecoderEvent =
  | { kind: 'video'; ptsMs: number; width: number; height: number; key: boolean }
  | { kind: 'luma'; ptsMs: number; mean: number }
  | { kind: 'audio'; ptsMs: number }
  | { kind: 'level'; rmsDb: number }
  | { kind: 'error'; line: string };

const SHOWINFO =
  /^\[Parsed_showinfo_(\d+) @ [^\]]+\] \[info\] n:\s*\d+ pts:\s*(-?\d+)\s+pts_time:(-?[\d.e+-]+)\s.*?s:(\d+)x(\d+)/;
const TIME_BASE = /^\[Parsed_showinfo_(\d+) @ [^\]]+\] \[info\] config in time_base: (\d+)\/(\d+)/;
const ISKEY = /iskey:1/;
const MEAN = /mean:\[(\d+)/;
const AMETA = /^\[Parsed_ametadata_\d+ @ [^\]]+\] \[info\] frame:\s*\d+\s+pts:\s*(-?\d+)\s+pts_time:(-?[\d.e+-]+)/;
const LEVEL = /^\[Parsed_ametadata_\d+ @ [^\]]+\] \[info\] lavfi\.astats\.Overall\.RMS_level=(-?[\d.]+|-inf|inf|nan)/;
const ERROR = /\[(error|fatal|panic)\]/;
/** The instance number of the full-size showinfo in decoderArgs' graph (the grey copy's comes later). */
export const FULL_SHOWINFO = 0;

/**
 * Reads one stderr line; null when it is none of the facts above. `timeBases` (showinfo instance → seconds per tick)
 * is filled from the config lines it reads; without one, `pts_time` is used.
 */
export function parseDecoderLine(line: string, timeBases: Map<number, number> = new Map()): DecoderEvent | null {
  const v = SHOWINFO.exec(line);
  if (v) {
    const instance = Number(v[1]);
    const tb = timeBases.get(instance);
    const ptsMs = tb !== undefined ? Number(v[2]) * tb * 1000 : Number(v[3]) * 1000;
    if (instance === FULL_SHOWINFO)
      return { kind: 'video', ptsMs, width: Number(v[4]), height: Number(v[5]), key: ISKEY.test(line) };
    const mean = MEAN.exec(line);
    return mean ? { kind: 'luma', ptsMs, mean: Number(mean[1]) } : null;
  }
  const c = TIME_BASE.exec(line);
  if (c) {
    if (Number(c[3]) > 0) timeBases.set(Number(c[1]), Number(c[2]) / Number(c[3]));
    return null;
  }
  const a = AMETA.exec(line);
  if (a) return { kind: 'audio', ptsMs: (Number(a[1]) * 1000) / AUDIO_SAMPLE_RATE };
  const l = LEVEL.exec(line);
  if (l) return { kind: 'level', rmsDb: /^(-inf|nan|inf)$/.test(l[1]!) ? -Infinity : Number(l[1]) };
  if (ERROR.test(line)) return { kind: 'error', line };
  return null;
}

/** A decoder's log read line by line, keeping the time bases its filters announce. */
export class DecoderLog {
  private readonly timeBases = new Map<number, number>();

  read(line: string): DecoderEvent | null {
    return parseDecoderLine(line, this.timeBases);
  }
}

/** Contexts whose errors are about the stream's data: decoders and the FLV/TS demuxers (not protocols, not I/O). */
const DATA_CONTEXT =
  /^\[(h26[34]|hevc|aac\w*|mp[123]\w*|opus|vorbis|vp[89]|av1|libdav1d|mpeg[124]\w*|ac3|eac3|mjpeg|flv|mpegts|h264_mp4toannexb) @/;

/**
 * Whether an error line is about the stream's data (a decode error a viewer would see as a glitch): a decoder's or
 * demuxer's error, or ffmpeg's "Error while decoding stream"; not the connection ending ("Invalid data found when
 * processing input" when a stream is cut, I/O errors of a protocol).
 */
export function isDecodeError(line: string): boolean {
  return DATA_CONTEXT.test(line) || /Error while decoding stream/.test(line);
}
