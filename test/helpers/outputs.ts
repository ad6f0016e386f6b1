/**
 * Checks of a channel's outputs that the codec rows repeat: an FLV stream's per-track timestamps (continuous), and an
 * HLS playlist's segments probed one by one (codecs, size, duration against EXTINF).
 */
import { execFile } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import { mediaSegments } from '../../src/media/hls-master.js';
import { flvTags } from './media.js';
import { FFMPEG, sleep } from './stack.js';

const run = promisify(execFile);
export const FFPROBE = path.join(path.dirname(FFMPEG), path.basename(FFMPEG).replace('ffmpeg', 'ffprobe'));

/** The media tags of a stretch of an FLV stream: timestamps (ms) per track, codec ids, keyframe times. */
export interface FlvTimeline {
  video: number[];
  audio: number[];
  keyframes: number[];
  /** FLV CodecID of the video tags (7: AVC). */
  videoCodecId: number | null;
  /** FLV SoundFormat of the audio tags (10: AAC, 2: MP3). */
  soundFormat: number | null;
}

/**
 * Reads an HTTP-FLV stream until its video has `seconds` of stream time (from the first media tag: the GOP cache's
 * burst included), leaving out sequence headers and metadata.
 */
export function flvTimeline(url: string, seconds: number, timeoutMs = seconds * 1000 + 20000): Promise<FlvTimeline> {
  return new Promise((resolve, reject) => {
    const t: FlvTimeline = { video: [], audio: [], keyframes: [], videoCodecId: null, soundFormat: null };
    const parse = flvTags(({ type, ts, body }) => {
      if (type === 9) {
        if ((body[0]! & 15) === 7 && body[1] === 0) return false; // AVC sequence header
        t.videoCodecId = body[0]! & 15;
        t.video.push(ts);
        if (body[0]! >> 4 === 1) t.keyframes.push(ts);
      } else if (type === 8) {
        if (body[0]! >> 4 === 10 && body[1] === 0) return false; // AAC sequence header
        t.soundFormat = body[0]! >> 4;
        t.audio.push(ts);
      } else return false;
      if (t.video.length < 2 || t.video.at(-1)! - t.video[0]! < seconds * 1000) return false;
      clearTimeout(timer);
      req.destroy();
      resolve(t);
      return true;
    });
    const req = http.get(url, (res) => res.on('data', parse));
    req.on('error', reject);
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`FLV ${url}: not ${seconds} s of video in time (${t.video.length} video tags)`));
    }, timeoutMs);
  });
}

/**
 * What is wrong with a timeline's continuity, worded (empty when nothing): a track whose timestamps go back, a gap
 * larger than `maxGapMs` in a track, tracks that end more than `maxGapMs` apart, a track with no tags.
 */
export function timelineFaults(t: FlvTimeline, opts: { audio: boolean; maxGapMs?: number }): string[] {
  const maxGap = opts.maxGapMs ?? 1000;
  const faults: string[] = [];
  const tracks: [string, number[]][] = [['video', t.video]];
  if (opts.audio) tracks.push(['audio', t.audio]);
  else if (t.audio.length) faults.push(`${t.audio.length} audio tags where none were expected`);
  for (const [name, ts] of tracks) {
    if (!ts.length) {
      faults.push(`no ${name} tags`);
      continue;
    }
    for (let i = 1; i < ts.length; i++) {
      if (ts[i]! < ts[i - 1]!) faults.push(`${name} goes back ${ts[i - 1]} → ${ts[i]} ms (tag ${i})`);
      else if (ts[i]! - ts[i - 1]! > maxGap) faults.push(`${name} jumps ${ts[i - 1]} → ${ts[i]} ms (tag ${i})`);
    }
  }
  if (opts.audio && t.audio.length && t.video.length) {
    const apart = Math.abs(t.audio.at(-1)! - t.video.at(-1)!);
    if (apart > maxGap) faults.push(`audio ends at ${t.audio.at(-1)} ms, video at ${t.video.at(-1)} ms`);
  }
  return faults.slice(0, 8);
}

/** One probed segment of an HLS media playlist. */
export interface ProbedSegment {
  uri: string;
  extinf: number;
  /** Duration ffprobe finds (the container's: first to last packet end of any stream). */
  seconds: number;
  /** Duration of the video stream alone. */
  videoSeconds: number;
  /** First video timestamp, s. */
  videoStart: number;
  videoCodec: string | null;
  audioCodec: string | null;
  /** The video's pixel format (`yuv420p` is what every player decodes). */
  pixFmt: string | null;
  width: number;
  height: number;
}

/** An HLS media playlist's target duration and its segments, each probed. */
export interface ProbedPlaylist {
  targetDuration: number;
  segments: ProbedSegment[];
}

interface ProbeJson {
  format?: { duration?: string };
  streams?: {
    codec_type: string;
    codec_name: string;
    pix_fmt?: string;
    width?: number;
    height?: number;
    start_time?: string;
    duration?: string;
  }[];
}

/** Probes a media file or URL: container duration, and per type the first stream's codec, size and duration. */
export async function probe(input: string): Promise<Omit<ProbedSegment, 'uri' | 'extinf'>> {
  const out = await run(
    FFPROBE,
    [
      ...['-v', 'error', '-of', 'json'],
      ...[
        '-show_entries',
        'format=duration:stream=codec_type,codec_name,pix_fmt,width,height,start_time,duration',
        input,
      ],
    ],
    { timeout: 20000 },
  );
  const j = JSON.parse(out.stdout) as ProbeJson;
  const v = j.streams?.find((s) => s.codec_type === 'video');
  const a = j.streams?.find((s) => s.codec_type === 'audio');
  return {
    seconds: Number(j.format?.duration ?? NaN),
    videoSeconds: Number(v?.duration ?? NaN),
    videoStart: Number(v?.start_time ?? NaN),
    videoCodec: v?.codec_name ?? null,
    audioCodec: a?.codec_name ?? null,
    pixFmt: v?.pix_fmt ?? null,
    width: v?.width ?? 0,
    height: v?.height ?? 0,
  };
}

/** Waits until a media playlist lists `min` segments, then probes each segment it lists. */
export async function probeHls(url: string, min: number, timeoutMs = 30000): Promise<ProbedPlaylist> {
  const deadline = Date.now() + timeoutMs;
  let text = '';
  for (;;) {
    const res = await fetch(url).catch(() => null);
    text = res?.ok ? await res.text() : '';
    if ((text.match(/#EXTINF:/g) ?? []).length >= min) break;
    if (Date.now() > deadline) throw new Error(`${url}: fewer than ${min} segments in ${timeoutMs} ms:\n${text}`);
    await sleep(250);
  }
  const targetDuration = Number(/#EXT-X-TARGETDURATION:(\d+)/.exec(text)?.[1] ?? NaN);
  // each URI with its EXTINF, whatever tags stand between them (EXT-X-PROGRAM-DATE-TIME, EXT-X-DISCONTINUITY)
  const listed = mediaSegments(text).map((s) => ({ uri: new URL(s.uri, url).href, extinf: s.seconds }));
  const segments = await Promise.all(listed.map(async (s) => ({ ...s, ...(await probe(s.uri)) })));
  return { targetDuration, segments };
}

/**
 * What is wrong with a probed playlist, worded (empty when nothing): a segment whose video lasts other than its
 * EXTINF (beyond `toleranceS`), an EXTINF that rounds above the target duration, a segment longer than `maxSeconds`,
 * a segment whose video does not start where the one before it ended (a timestamp jump or overlap).
 */
export function playlistFaults(p: ProbedPlaylist, opts: { maxSeconds: number; toleranceS?: number }): string[] {
  const tol = opts.toleranceS ?? 0.15;
  const faults: string[] = [];
  for (const s of p.segments) {
    const name = path.basename(s.uri);
    const probed = Number.isFinite(s.videoSeconds) ? s.videoSeconds : s.seconds;
    if (Math.abs(probed - s.extinf) > tol) faults.push(`${name}: EXTINF ${s.extinf} s, video ${probed.toFixed(3)} s`);
    if (Math.round(s.extinf) > p.targetDuration)
      faults.push(`${name}: EXTINF ${s.extinf} > target ${p.targetDuration}`);
    if (s.extinf > opts.maxSeconds + tol) faults.push(`${name}: ${s.extinf} s, more than ${opts.maxSeconds} s`);
  }
  p.segments.slice(1).forEach((s, i) => {
    const before = p.segments[i]!;
    const ends = before.videoStart + before.extinf;
    if (!(Math.abs(s.videoStart - ends) <= tol))
      // NaN (no start time probed) is a fault too
      faults.push(`${path.basename(s.uri)} starts at ${s.videoStart} s, the one before ends at ${ends.toFixed(3)} s`);
  });
  return faults;
}
