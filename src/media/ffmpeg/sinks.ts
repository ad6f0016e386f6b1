/**
 * Where a relay ffmpeg's tiers go (sinks: RTMP into the media server, the live HLS window, recordings) and the muxer
 * options of each, as a plain ffmpeg output or as a tee slave.
 */
import path from 'node:path';

/** A live HLS window. */
export interface HlsSink {
  kind: 'hls';
  dir: string;
  segmentSeconds: number;
  listSize: number;
  /**
   * Continue the playlist already in `dir` (a resumed channel, a restarted ffmpeg): numbering goes on and the join is
   * marked with EXT-X-DISCONTINUITY (ffmpeg's append_list). Only when one exists: on a fresh playlist ffmpeg would
   * mark a spurious leading discontinuity.
   */
  append?: boolean;
}
/** RTMP publish into the media server. */
export interface RtmpSink {
  kind: 'rtmp';
  url: string;
}
/** Recording into files of at most `maxSeconds`, named by the strftime `pattern` (a path without extension). */
export interface RecordFileSink {
  kind: 'record';
  format: 'mp4' | 'flv';
  pattern: string;
  maxSeconds: number;
}
/** Recording as an HLS playlist that keeps every segment (ENDLIST is added on stop). */
export interface RecordHlsSink {
  kind: 'record-hls';
  dir: string;
  segmentSeconds: number;
  /** Continue the recording's playlist in `dir` (see HlsSink.append). */
  append?: boolean;
}
/** Where one tier's stream goes. */
export type Sink = RtmpSink | HlsSink | RecordFileSink | RecordHlsSink;

// flush_packets: ffmpeg ≥ 5's segment muxer otherwise keeps a file's header and fragments in memory until the file
// ends, so a killed worker would leave a bare `ftyp` instead of a file playable up to its last keyframe.
const FRAG_MP4 = 'movflags=+frag_keyframe+empty_moov+default_base_moof:flush_packets=1';
// program_date_time: EXT-X-PROGRAM-DATE-TIME on every segment (RFC 8216 4.3.2.6), the wall clock of its first frame.
const hlsFlags = (base: string, append?: boolean) => `${base}+program_date_time${append ? '+append_list' : ''}`;

/** Muxer options of a sink as `[key, value]` pairs, shared by the plain output form and the tee slave form. */
function sinkMuxer(s: Sink): { format: string; options: [string, string][]; target: string } {
  switch (s.kind) {
    case 'rtmp':
      return { format: 'flv', options: [], target: s.url };
    case 'hls':
      // omit_endlist leaves ENDLIST to an explicit stop; temp_file lists a segment only once it is whole.
      return {
        format: 'hls',
        options: [
          ['hls_time', String(s.segmentSeconds)],
          ['hls_list_size', String(s.listSize)],
          ['hls_flags', hlsFlags('delete_segments+omit_endlist+temp_file', s.append)],
          ['hls_segment_filename', path.join(s.dir, 'seg_%06d.ts')],
        ],
        target: path.join(s.dir, 'index.m3u8'),
      };
    case 'record-hls':
      return {
        format: 'hls',
        options: [
          ['hls_time', String(s.segmentSeconds)],
          ['hls_list_size', '0'],
          ['hls_flags', hlsFlags('omit_endlist', s.append)],
          ['hls_segment_filename', path.join(s.dir, 'rec_%06d.ts')],
        ],
        target: path.join(s.dir, 'index.m3u8'),
      };
    case 'record':
      // Fragmented MP4 stays playable up to the last fragment even if the worker is killed mid-file.
      return {
        format: 'segment',
        options: [
          ['segment_time', String(s.maxSeconds)],
          ['segment_format', s.format],
          ...(s.format === 'mp4' ? [['segment_format_options', FRAG_MP4] as [string, string]] : []),
          ['reset_timestamps', '1'],
          ['strftime', '1'],
        ],
        target: `${s.pattern}.${s.format}`,
      };
  }
}

/** A sink as a plain ffmpeg output (after the stream maps and codec options). */
export function sinkOutputArgs(s: Sink): readonly string[] {
  const m = sinkMuxer(s);
  return ['-f', m.format, ...m.options.flatMap(([k, v]) => [`-${k}`, v]), m.target];
}

/** A sink as one slave of a tee muxer; a `:` inside an option's value is escaped for both of tee's parsing passes. */
export function teeSlave(s: Sink): string {
  const m = sinkMuxer(s);
  const options = m.options.map(([k, v]) => `${k}=${v.replaceAll(':', '\\\\:')}`);
  return `[${[`f=${m.format}`, ...options].join(':')}]${m.target}`;
}
