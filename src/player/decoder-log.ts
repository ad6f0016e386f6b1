/**
 * What the decoding ffmpeg tells on stderr (`-loglevel level+info`), read line by line: each decoded video frame
 * (showinfo: PTS, size, keyframe), its mean luma (a second showinfo on a 32×18 grey copy), each 10 ms of decoded audio
 * (ametadata: PTS and RMS level from astats), and errors. The labels are those of `decoderArgs` (args.ts).
 */

/** One fact of the decoder's log. */
export type DecoderEvent =
  | { kind: 'video'; ptsMs: number; width: number; height: number; key: boolean }
  | { kind: 'luma'; ptsMs: number; mean: number }
  | { kind: 'audio'; ptsMs: number }
  | { kind: 'level'; rmsDb: number }
  | { kind: 'error'; line: string };

const SHOWINFO =
  /^\[Parsed_showinfo_(\d+) @ [^\]]+\] \[info\] n:\s*\d+ pts:\s*-?\d+\s+pts_time:(-?[\d.e+-]+)\s.*?s:(\d+)x(\d+)/;
const ISKEY = /iskey:1/;
const MEAN = /mean:\[(\d+)/;
const AMETA = /^\[Parsed_ametadata_\d+ @ [^\]]+\] \[info\] frame:\s*\d+\s+pts:\s*-?\d+\s+pts_time:(-?[\d.e+-]+)/;
const LEVEL = /^\[Parsed_ametadata_\d+ @ [^\]]+\] \[info\] lavfi\.astats\.Overall\.RMS_level=(-?[\d.]+|-inf|inf|nan)/;
const ERROR = /\[(error|fatal|panic)\]/;
/** The instance number of the full-size showinfo in decoderArgs' graph (the grey copy's comes later). */
export const FULL_SHOWINFO = 0;

/** Reads one stderr line; null when it is none of the facts above. */
export function parseDecoderLine(line: string): DecoderEvent | null {
  const v = SHOWINFO.exec(line);
  if (v) {
    const ptsMs = Number(v[2]) * 1000;
    if (Number(v[1]) === FULL_SHOWINFO)
      return { kind: 'video', ptsMs, width: Number(v[3]), height: Number(v[4]), key: ISKEY.test(line) };
    const mean = MEAN.exec(line);
    return mean ? { kind: 'luma', ptsMs, mean: Number(mean[1]) } : null;
  }
  const a = AMETA.exec(line);
  if (a) return { kind: 'audio', ptsMs: Number(a[1]) * 1000 };
  const l = LEVEL.exec(line);
  if (l) return { kind: 'level', rmsDb: l[1] === '-inf' || l[1] === 'nan' ? -Infinity : Number(l[1]) };
  if (ERROR.test(line)) return { kind: 'error', line };
  return null;
}

/**
 * Whether an error line is about the stream's data (a decode error a viewer would see as a glitch) rather than the
 * connection ending: ffmpeg says "error while decoding", "concealing", "Invalid NAL", "corrupt", "non-existing PPS"…
 */
export function isDecodeError(line: string): boolean {
  return /decod|conceal|corrupt|invalid|non-existing|missing|illegal|overread|out of range|error in|no frame|mmco|reference|slice|Packet mismatch|channel element/i.test(
    line,
  );
}
