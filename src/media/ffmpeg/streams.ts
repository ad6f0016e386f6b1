/**
 * The upstream's tracks as ffmpeg reports them when it opens its input (stderr, before `Output #0` / `Stream mapping`),
 * worded for ffmpeg 4.1 to 7.x.
 */

/** Codecs of input 0 (ffmpeg's names): audio `none` when it has no audio track; rotation in degrees (0: upright). */
export interface ReportedCodecs {
  video: string | null;
  audio: string | null;
  rotation: number;
  /** The video's profile as ffmpeg names it (`High`, `High 10`, `High 4:4:4 Predictive` …), when it says. */
  videoProfile?: string | null;
  /** The video's pixel format (`yuv420p`, `yuv420p10le` …), when it says. */
  pixFmt?: string | null;
  /** The audio's sample rate, Hz, when it says. */
  audioRate?: number | null;
  /**
   * The video's bit rate, kbit/s: its stream's own figure when the container gives one (MP4), else the input's overall
   * bit rate less the audio's (MKV, WebM files); null for live inputs (`bitrate: N/A`).
   */
  videoKbps?: number | null;
}

const STREAM = /^\s*Stream #0:\d+.*?: (Video|Audio): (\w+)/;
// `h264 (High 10) (avc1 / 0x31637661), yuv420p10le(tv, progressive), …`: the profile, not the codec tag
const VIDEO_DETAIL = /: Video: \w+(?: \(([^)/]*)\))?(?: \([^)]*\))*, (\w+)/;
const AUDIO_RATE = /: Audio: .*?, (\d+) Hz/;
const STREAM_KBPS = /, (\d+) kb\/s/;
const INPUT_KBPS = /^\s*Duration: .*?, bitrate: (\d+) kb\/s/;
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
  let videoProfile: string | null = null;
  let pixFmt: string | null = null;
  let audioRate: number | null = null;
  let streamVideoKbps: number | null = null;
  let audioKbps = 0;
  let inputKbps: number | null = null;
  for (const line of lines) {
    if (/^(?:Output #|Stream mapping:)/.test(line)) break;
    if (/^Input #[1-9]/.test(line)) break;
    const total = INPUT_KBPS.exec(line);
    if (total && inputKbps === null) inputKbps = Number(total[1]);
    const s = STREAM.exec(line);
    if (s) {
      const kbps = STREAM_KBPS.exec(line);
      inVideo = s[1] === 'Video' && video === null;
      if (inVideo) {
        video = s[2]!;
        const d = VIDEO_DETAIL.exec(line);
        videoProfile = d?.[1]?.trim() || null;
        pixFmt = d?.[2] ?? null;
        if (kbps) streamVideoKbps = Number(kbps[1]);
      } else if (s[1] === 'Audio' && audio === null) {
        audio = s[2]!;
        const r = AUDIO_RATE.exec(line);
        audioRate = r ? Number(r[1]) : null;
        if (kbps) audioKbps = Number(kbps[1]);
      }
      continue;
    }
    const r = inVideo ? ROTATION.exec(line) : null;
    if (r) rotation = Math.round(Number(r[1] ?? r[2]));
  }
  const videoKbps = streamVideoKbps ?? (inputKbps !== null ? Math.max(0, inputKbps - audioKbps) || null : null);
  return video === null
    ? null
    : { video, audio: audio ?? 'none', rotation, videoProfile, pixFmt, audioRate, videoKbps };
}
