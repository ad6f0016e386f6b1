/**
 * The upstream's tracks as ffmpeg reports them when it opens its input (stderr, before `Output #0` / `Stream mapping`),
 * worded for ffmpeg 4.1 to 7.x.
 */

/** Codecs of input 0 (ffmpeg's names): audio `none` when it has no audio track; rotation in degrees (0: upright). */
export interface ReportedCodecs {
  video: string | null;
  audio: string | null;
  rotation: number;
}

const STREAM = /^\s*Stream #0:\d+.*?: (Video|Audio): (\w+)/;
// 5.1+: side data "displaymatrix: rotation of -90.00 degrees"; 4.1: stream metadata "rotate : 90"
const ROTATION = /displaymatrix: rotation of (-?[\d.]+) degrees|^\s*rotate\s*:\s*(-?\d+)/;

/**
 * Reads the first video track's codec and rotation and the first audio track's codec from the input report lines of
 * ffmpeg (input 0 only; the lines after `Output #` or `Stream mapping:` are not read). Null when no video line is in.
 */
export function parseReportedCodecs(lines: readonly string[]): ReportedCodecs | null {
  let video: string | null = null;
  let audio: string | null = null;
  let rotation = 0;
  let inVideo = false;
  for (const line of lines) {
    if (/^(?:Output #|Stream mapping:)/.test(line)) break;
    if (/^Input #[1-9]/.test(line)) break;
    const s = STREAM.exec(line);
    if (s) {
      inVideo = s[1] === 'Video' && video === null;
      if (inVideo) video = s[2]!;
      else if (s[1] === 'Audio' && audio === null) audio = s[2]!;
      continue;
    }
    const r = inVideo ? ROTATION.exec(line) : null;
    if (r) rotation = Math.round(Number(r[1] ?? r[2]));
  }
  return video === null ? null : { video, audio: audio ?? 'none', rotation };
}
