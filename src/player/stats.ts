/**
 * What `probePlayback` reports each second and at the end, how a run's outcome maps to the `play` command's exit
 * code, and the one-line and JSON forms the CLI prints.
 */

/** The protocols `probePlayback` plays. */
export type PlayProtocol = 'rtmp' | 'http-flv' | 'ws-flv' | 'hls';

/** Where the latency figure comes from. */
export type LatencySource =
  /** EXT-X-PROGRAM-DATE-TIME of the segments (RFC 8216 4.3.2.6): the server's wall clock at each segment's start. */
  | 'program-date-time'
  /** The relay's channel clock: the timestamp its media server is sending now (its `/status/{channelId}`). */
  | 'relay-clock'
  /** The freshest arrival: the frame that arrived earliest for its timestamp is taken as live (any other server). */
  | 'arrival';

/** The state of a playback in one second. */
export type PlayState = 'connecting' | 'playing' | 'stalled' | 'ended';

/** One second of playback. */
export interface PlaybackStats {
  /** Seconds since the probe started. */
  t: number;
  state: PlayState;
  protocol: PlayProtocol;
  /** The decoded picture size of the frame on screen. */
  width: number | null;
  height: number | null;
  /** Frames shown in the last second. */
  fps: number;
  /** Bit rates of the media shown in the last second (its coded frames: no FLV, PES or TS framing), kbit/s. */
  videoKbps: number;
  audioKbps: number;
  /**
   * A/V sync drift, ms (positive: the sound is late): from flash/beep onsets in the content when there are
   * (`avDriftSource` 'marks'), else between the audio and video clocks (`avClockMs`).
   */
  avDriftMs: number | null;
  avDriftSource: 'marks' | 'clocks' | null;
  /**
   * The audio clock minus the video clock, ms: the PTS of the last decoded audio minus that of each decoded video
   * frame (median over the second). What a player presenting each track as it is decoded would be out of step by.
   */
  avClockMs: number | null;
  /** How far behind live the frame on screen is, ms, and how that is known. */
  latencyMs: number | null;
  latencySource: LatencySource | null;
  /** Stalls since the start (a freeze longer than two frame intervals), a stall going on included. */
  stalls: number;
  stallMs: number;
  /** Decode errors since the start (ffmpeg's error lines about the stream's data). */
  decodeErrors: number;
  /** HLS: the variant playing (its index in the master playlist, bandwidth, resolution) and the last segment. */
  hls?: {
    variant: { index: number; bandwidth: number | null; resolution: string | null; uri: string } | null;
    mediaSequence: number | null;
    /** Time to fetch the last segment, ms, and its size in bytes. */
    fetchMs: number | null;
    segmentBytes: number | null;
  };
}

/** How a playback ended. */
export type PlayOutcome =
  /** It played the whole time without a stall. */
  | 'played'
  /** No frame was decoded (the server could not be reached, or sent no media in time). */
  | 'never-started'
  /** It played, with one stall or more. */
  | 'stalled'
  /** The server ended the stream before the time asked for. */
  | 'ended'
  /** The server refused to play it (HTTP 401/403/404, an RTMP refusal). */
  | 'refused';

/** Exit codes of `play` (README "Watching a channel from the terminal"). */
export const PLAY_EXIT: Record<PlayOutcome, number> = {
  played: 0,
  refused: 1,
  'never-started': 5,
  stalled: 6,
  ended: 7,
};

/** A playback's end: figures over the whole run. */
export interface PlaybackSummary {
  summary: true;
  url: string;
  protocol: PlayProtocol;
  outcome: PlayOutcome;
  exitCode: number;
  /** Why: the server's refusal (status, code, message, hint), or what ended it. */
  reason: string | null;
  status?: number;
  /** Seconds played (from the first frame) and seconds in all. */
  playedSeconds: number;
  seconds: number;
  /** Time to the first decoded frame, ms. */
  firstFrameMs: number | null;
  width: number | null;
  height: number | null;
  frames: number;
  fps: number | null;
  videoKbps: number | null;
  audioKbps: number | null;
  avDriftMs: number | null;
  avDriftSource: 'marks' | 'clocks' | null;
  latencyMs: number | null;
  latencySource: LatencySource | null;
  stalls: number;
  stallMs: number;
  decodeErrors: number;
  /** Up to three of the decode error lines (ffmpeg's words, without addresses). */
  decodeErrorSamples: string[];
  /** HLS: the variant that played (null for a media playlist). */
  variant?: { index: number; bandwidth: number | null; resolution: string | null; uri: string } | null;
  snapshot?: string | null;
}

const ms = (v: number | null) => (v === null ? '-' : `${v >= 0 ? '+' : ''}${v}ms`);
const kbps = (v: number) => (v >= 1000 ? `${(v / 1000).toFixed(2)}M` : `${v}k`);

/** The live line of one second, e.g. `12s playing 1280x720 30.0fps v 1.48M a 96k A/V +12ms latency 1.21s ...`. */
export function statsLine(s: PlaybackStats): string {
  const parts = [
    `${String(s.t).padStart(3)}s`,
    s.state.padEnd(10),
    s.width ? `${s.width}x${s.height}` : '-',
    `${s.fps.toFixed(1)}fps`,
    `v ${kbps(s.videoKbps)}`,
    `a ${kbps(s.audioKbps)}`,
    `A/V ${ms(s.avDriftMs)}${s.avDriftSource === 'marks' ? ' (marks)' : ''}`,
    `latency ${s.latencyMs === null ? '-' : `${(s.latencyMs / 1000).toFixed(2)}s`}`,
    `stalls ${s.stalls} (${s.stallMs}ms)`,
    `errors ${s.decodeErrors}`,
  ];
  if (s.hls) {
    const v = s.hls.variant;
    if (v) parts.push(`variant #${v.index}${v.resolution ? ` ${v.resolution}` : ''}`);
    if (s.hls.mediaSequence !== null) parts.push(`seg ${s.hls.mediaSequence}`);
    if (s.hls.fetchMs !== null) parts.push(`fetch ${s.hls.fetchMs}ms`);
  }
  return parts.join('  ');
}

/** The summary as the CLI prints it without --json. */
export function summaryText(s: PlaybackSummary): string {
  const head = {
    played: 'played the whole time',
    'never-started': 'never started',
    stalled: 'played, with stalls',
    ended: 'ended by the server',
    refused: 'refused',
  }[s.outcome];
  const lines = [
    `${head}${s.reason ? `: ${s.reason}` : ''} (exit ${s.exitCode})`,
    `  ${s.protocol} ${s.width ? `${s.width}x${s.height}` : '-'}${s.variant ? ` (variant #${s.variant.index} ${s.variant.uri})` : ''}, ${s.frames} frames shown in ${s.playedSeconds}s` +
      (s.fps !== null ? ` (${s.fps} fps)` : '') +
      (s.firstFrameMs !== null ? `, first frame after ${s.firstFrameMs} ms` : ''),
    `  video ${s.videoKbps ?? '-'} kbit/s, audio ${s.audioKbps ?? '-'} kbit/s, A/V ${ms(s.avDriftMs)}` +
      `${s.avDriftSource ? ` (${s.avDriftSource})` : ''}, latency ${s.latencyMs === null ? '-' : `${s.latencyMs} ms (${s.latencySource})`}`,
    `  stalls ${s.stalls} (${s.stallMs} ms), decode errors ${s.decodeErrors}` +
      (s.snapshot !== undefined ? `, snapshot ${s.snapshot ?? 'not written'}` : ''),
    ...s.decodeErrorSamples.map((l) => `  decode error: ${l}`),
  ];
  return lines.join('\n');
}

/** The outcome of a run that was not refused. */
export function outcomeOf(r: { frames: number; endedByServer: boolean; stalls: number }): PlayOutcome {
  if (r.frames === 0) return 'never-started';
  if (r.endedByServer) return 'ended';
  return r.stalls > 0 ? 'stalled' : 'played';
}
