/**
 * ORIGINAL in general formats, per track (README "Codec policy"), one row per upstream kind: upstreams generated with
 * lavfi by the chosen ffmpeg, relayed as (looped) file upstreams, each started twice at once — with ORIGINAL alone and
 * with a tier (ORIGINAL + 550, or 550 alone) — and every output decoded: FLV (codecs, size, per-track timestamps that
 * never go back or jump, across the file's loop) and HLS (each listed segment probed: codecs, size, its video's
 * duration against EXTINF). ORIGINAL is always H.264 at the displayed (upright) size; audio AAC, or the upstream's
 * MP3 where every output takes it; the channel view says per track whether it is copied or converted. An upstream
 * without video is refused with 40000004 on every path. An ingest member's codecs are planned from its registration.
 * A row whose encoder the ffmpeg lacks is skipped, saying why.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeCapabilities } from '../../src/media/ffmpeg/capabilities.js';
import { decode } from '../helpers/media.js';
import { flvTimeline, playlistFaults, probeHls, timelineFaults } from '../helpers/outputs.js';
import { FFMPEG, fixture, startStack, type Stack } from '../helpers/stack.js';

const encoders = (await probeCapabilities(FFMPEG))?.encoders ?? new Map<string, string>();

type RateType = 0 | 10 | 20;
interface Row {
  name: string;
  file: string;
  /** Encoders the ffmpeg needs to make the upstream. */
  needs: string[];
  /** Output options after the lavfi inputs (0: video unless `audioOnly`, then audio). */
  make: string[];
  size: string;
  /** Frame rate and length (s) of the generated upstream; 25 and 4 unless said. */
  rate?: number;
  seconds?: number;
  audioOnly?: boolean;
  videoOnly?: boolean;
  /** Display rotation written into the file afterwards (ffmpeg 5.1's mov muxer takes it on a stream copy only). */
  rotate?: number;
  /** The run beside ORIGINAL alone; [0, 10] unless said. */
  tier?: RateType[];
  /** Refused at start with this code on every path. */
  refused?: number;
  /** Decoded size of ORIGINAL (FLV, HLS) as displayed. */
  out?: [number, number];
  /** ORIGINAL's audio codec out (a tier's is always AAC); aac unless said. */
  outAudio?: string;
  /** Longest HLS segment of ORIGINAL, s (the upstream's GOP when copied); 2 unless said. */
  originalSegment?: number;
  video?: { codec: string; mode: string };
  audio?: { codec: string; mode: string };
}

const x264 = ['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-g', '50'];
const AV1 = ['libaom-av1', 'libsvtav1', 'librav1e'].find((e) => encoders.has(e));
const AV1_ARGS: Record<string, string[]> = {
  'libaom-av1': ['-cpu-used', '8', '-row-mt', '1', '-usage', 'realtime', '-b:v', '300k'],
  libsvtav1: ['-preset', '12', '-b:v', '300k'],
  librav1e: ['-speed', '10', '-b:v', '300k'],
};
const copied = { codec: 'h264', mode: 'copied' };
const ROWS: Row[] = [
  {
    name: 'H.264 + AAC (MP4): both copied',
    file: 'h264-aac.mp4',
    needs: ['libx264', 'aac'],
    make: [...x264, '-c:a', 'aac'],
    size: '320x240',
    out: [320, 240],
    video: copied,
    audio: { codec: 'aac', mode: 'copied' },
  },
  {
    name: 'H.264 + Opus (MKV): video copied, audio converted',
    file: 'h264-opus.mkv',
    needs: ['libx264', 'libopus'],
    make: [...x264, '-c:a', 'libopus', '-b:a', '64k'],
    size: '320x240',
    out: [320, 240],
    video: copied,
    audio: { codec: 'opus', mode: 'converted' },
  },
  {
    name: 'VP8 + Opus (WebM, odd size 319x239): both converted',
    file: 'vp8-opus.webm',
    needs: ['libvpx', 'libopus'],
    make: ['-c:v', 'libvpx', '-deadline', 'realtime', '-b:v', '500k', '-g', '50', '-c:a', 'libopus', '-b:a', '64k'],
    size: '319x239',
    out: [318, 238],
    video: { codec: 'vp8', mode: 'converted' },
    audio: { codec: 'opus', mode: 'converted' },
  },
  {
    name: 'HEVC + AAC (MP4): video converted, audio encoded with it',
    file: 'hevc-aac.mp4',
    needs: ['libx265', 'aac'],
    make: ['-c:v', 'libx265', '-preset', 'ultrafast', '-x265-params', 'keyint=50:log-level=error', '-c:a', 'aac'],
    size: '320x240',
    out: [320, 240],
    video: { codec: 'hevc', mode: 'converted' },
    audio: { codec: 'aac', mode: 'converted' },
  },
  {
    name: 'AV1 + Opus (WebM): both converted',
    file: 'av1-opus.webm',
    needs: [AV1 ?? 'an AV1 (libaom-av1, libsvtav1 or librav1e)', 'libopus'],
    make: ['-c:v', AV1 ?? '', ...(AV1_ARGS[AV1 ?? ''] ?? []), '-g', '50', '-c:a', 'libopus', '-b:a', '64k'],
    size: '320x240',
    out: [320, 240],
    video: { codec: 'av1', mode: 'converted' },
    audio: { codec: 'opus', mode: 'converted' },
  },
  {
    name: 'H.264 + MP3 44.1 kHz (FLV): both copied',
    file: 'h264-mp3.flv',
    needs: ['libx264', 'libmp3lame'],
    make: [...x264, '-c:a', 'libmp3lame', '-ar', '44100', '-b:a', '128k'],
    size: '320x240',
    out: [320, 240],
    outAudio: 'mp3',
    video: copied,
    audio: { codec: 'mp3', mode: 'copied' },
  },
  {
    name: 'H.264 + MP3 48 kHz (MKV): both copied',
    file: 'h264-mp3-48k.mkv',
    needs: ['libx264', 'libmp3lame'],
    make: [...x264, '-c:a', 'libmp3lame', '-ar', '48000', '-b:a', '128k'],
    size: '320x240',
    out: [320, 240],
    outAudio: 'mp3',
    video: copied,
    audio: { codec: 'mp3', mode: 'copied' },
  },
  {
    name: 'H.264 + MP3 32 kHz (MKV): video copied, audio converted (FLV has no 32 kHz MP3)',
    file: 'h264-mp3-32k.mkv',
    needs: ['libx264', 'libmp3lame'],
    make: [...x264, '-c:a', 'libmp3lame', '-ar', '32000', '-b:a', '96k'],
    size: '320x240',
    out: [320, 240],
    video: copied,
    audio: { codec: 'mp3', mode: 'converted' },
  },
  {
    name: 'H.264 High 10 (MKV): converted to 8-bit 4:2:0 (players decode no High 10)',
    file: 'h264-high10.mkv',
    needs: ['libx264'],
    make: ['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p10le', '-g', '50', '-c:a', 'aac'],
    size: '320x240',
    out: [320, 240],
    video: { codec: 'h264', mode: 'converted' },
    audio: { codec: 'aac', mode: 'converted' },
  },
  {
    name: 'H.264 4:4:4 (MKV): converted to 4:2:0',
    file: 'h264-444.mkv',
    needs: ['libx264'],
    make: ['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv444p', '-g', '50', '-c:a', 'aac'],
    size: '320x240',
    out: [320, 240],
    video: { codec: 'h264', mode: 'converted' },
    audio: { codec: 'aac', mode: 'converted' },
  },
  {
    name: 'VP9 + Opus at an odd size below the tier (321x241): tiers keep an even height',
    file: 'vp9-odd.webm',
    needs: ['libvpx-vp9', 'libopus'],
    make: [
      '-c:v',
      'libvpx-vp9',
      '-deadline',
      'realtime',
      '-cpu-used',
      '8',
      '-b:v',
      '300k',
      '-g',
      '50',
      '-c:a',
      'libopus',
    ],
    size: '321x241',
    out: [320, 240],
    video: { codec: 'vp9', mode: 'converted' },
    audio: { codec: 'opus', mode: 'converted' },
  },
  {
    name: 'H.264 with B-frames (x264 -bf 3) + AAC: both copied',
    file: 'h264-bframes.mp4',
    needs: ['libx264', 'aac'],
    make: ['-c:v', 'libx264', '-preset', 'veryfast', '-bf', '3', '-pix_fmt', 'yuv420p', '-g', '50', '-c:a', 'aac'],
    size: '320x240',
    out: [320, 240],
    video: copied,
    audio: { codec: 'aac', mode: 'copied' },
  },
  {
    name: 'H.264 with a 10 s GOP (-g 300 at 30 fps) + AAC: copied, 10 s ORIGINAL segments',
    file: 'h264-gop10.mp4',
    needs: ['libx264', 'aac'],
    make: [...x264.slice(0, -2), '-g', '300', '-keyint_min', '300', '-sc_threshold', '0', '-c:a', 'aac'],
    size: '320x240',
    rate: 30,
    seconds: 10,
    originalSegment: 10,
    out: [320, 240],
    video: copied,
    audio: { codec: 'aac', mode: 'copied' },
  },
  {
    name: 'portrait 360x640 (H.264 + AAC): copied, portrait everywhere',
    file: 'h264-portrait.mp4',
    needs: ['libx264', 'aac'],
    make: [...x264, '-c:a', 'aac'],
    size: '360x640',
    out: [360, 640],
    video: copied,
    audio: { codec: 'aac', mode: 'copied' },
  },
  {
    name: 'rotated 90° (H.264 + AAC): video converted upright',
    file: 'h264-rotated.mp4',
    needs: ['libx264', 'aac'],
    make: [...x264, '-c:a', 'aac'],
    rotate: 90,
    size: '320x240',
    out: [240, 320],
    video: { codec: 'h264', mode: 'converted' },
    audio: { codec: 'aac', mode: 'converted' },
  },
  {
    name: 'VFR (H.264 + AAC, frames 33 to 100 ms apart): both copied',
    file: 'h264-vfr.mp4',
    needs: ['libx264', 'aac'],
    make: [
      ...['-vf', "select='not(mod(n\\,3))+not(mod(n\\,5))'", '-vsync', 'vfr'],
      ...[...x264.slice(0, -2), '-force_key_frames', 'expr:gte(t,n_forced*2)', '-c:a', 'aac'],
    ],
    size: '320x240',
    rate: 30,
    out: [320, 240],
    video: copied,
    audio: { codec: 'aac', mode: 'copied' },
  },
  {
    name: 'video only (H.264): video copied, a silent AAC track added',
    file: 'h264-only.mp4',
    needs: ['libx264'],
    make: [...x264],
    videoOnly: true,
    size: '320x240',
    tier: [10],
    out: [320, 240],
    video: copied,
    audio: { codec: 'none', mode: 'silent' },
  },
  {
    name: 'audio only (AAC): refused with 40000004',
    file: 'aac-only.m4a',
    needs: ['aac'],
    make: ['-c:a', 'aac'],
    audioOnly: true,
    size: '320x240',
    tier: [10],
    refused: 40000004,
  },
];

const lacking = (r: Row) => r.needs.filter((e) => !encoders.has(e));
for (const r of ROWS)
  if (lacking(r).length) console.log(`SKIP "${r.name}": ${FFMPEG} lacks the ${lacking(r).join(', ')} encoder`);

/** A tier's size from ORIGINAL's: `maxHeight` lines at most (never up), the width keeping the aspect, both even. */
function tierSize([w, h]: [number, number], maxHeight: number): [number, number] {
  const height = Math.min(maxHeight, h);
  return [Math.round((w * height) / h / 2) * 2, height];
}

type Url = { type: number; playUrl: string; rateType: number | null };

/** Decodes one output of a row's channel and checks it: codecs, size, continuous timestamps, HLS durations. */
async function checkOutput(r: Row, u: Url): Promise<void> {
  const original = u.rateType === 0;
  const [w, h] = original ? r.out! : tierSize(r.out!, 360);
  const audio = original ? (r.outAudio ?? 'aac') : 'aac';
  const where = `${u.playUrl} (rateType ${u.rateType})`;
  if (u.type === 2) {
    const got = await decode(u.playUrl, { frames: 10, timeoutMs: 20_000 });
    expect(got, where).toMatchObject({ videoCodec: 'h264', audioCodec: audio, width: w, height: h });
    // past the file's loop (a GOP cache burst, then live), both tracks continuous
    const seconds = (r.seconds ?? 4) + 1;
    const t = await flvTimeline(u.playUrl, seconds);
    expect(timelineFaults(t, { audio: true }), where).toEqual([]);
    expect([t.videoCodecId, t.soundFormat], where).toEqual([7, audio === 'mp3' ? 2 : 10]);
  } else {
    const longest = original ? (r.originalSegment ?? 2) : 2;
    // 3 segments of 2 s cross the 4 s file's loop; a 10 s GOP makes 10 s segments (one is enough)
    const list = await probeHls(u.playUrl, longest > 2 ? 1 : 3, longest * 1000 + 25_000);
    for (const s of list.segments)
      expect(s, `${where} ${s.uri}`).toMatchObject({
        videoCodec: 'h264',
        audioCodec: audio,
        pixFmt: 'yuv420p', // 8-bit 4:2:0: what every player decodes
        width: w,
        height: h,
      });
    expect(playlistFaults(list, { maxSeconds: longest }), where).toEqual([]);
  }
}

describe('ORIGINAL relays every upstream kind as H.264 + AAC, per track', () => {
  let stack: Stack;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-codecs-'));
  beforeAll(async () => {
    for (const r of ROWS) {
      if (lacking(r).length) continue;
      const seconds = r.seconds ?? 4;
      const video = ['-f', 'lavfi', '-i', `testsrc2=size=${r.size}:rate=${r.rate ?? 25}:duration=${seconds}`];
      const audio = ['-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=48000:duration=${seconds}`];
      execFileSync(FFMPEG, [
        ...['-hide_banner', '-loglevel', 'error', '-y'],
        ...(r.audioOnly ? [] : video),
        ...(r.videoOnly ? [] : audio),
        ...r.make,
        path.join(dir, r.rotate ? `plain-${r.file}` : r.file),
      ]);
      if (r.rotate)
        execFileSync(FFMPEG, [
          ...['-hide_banner', '-loglevel', 'error', '-y', '-i', path.join(dir, `plain-${r.file}`), '-c', 'copy'],
          ...['-metadata:s:v:0', `rotate=${r.rotate}`, path.join(dir, r.file)],
        ]);
    }
    stack = await startStack({ env: { RELAY_FILE_UPSTREAM_DIR: dir } });
  }, 120_000);
  afterAll(async () => {
    await stack?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('an ingest member publishing video only: a silent AAC track planned from its registration', async () => {
    const feeder = await stack.publish({ roomId: 9200, userId: 'cam', srcType: 0 }, fixture('video-only.mp4'));
    try {
      const start = await stack.request('POST', '/v1/push/start', {
        roomId: 9200,
        userId: 'cam',
        srcType: 0,
        option: { encode: 2 },
      });
      expect(start.body.code, JSON.stringify(start.body)).toBe(0);
      const view = (await stack.request('GET', `/v1/push/${start.body.channelId}`)).body.channel;
      expect(view.tracks).toMatchObject({ video: { codec: 'h264', mode: 'copied' }, audio: { mode: 'silent' } });
      const got = await decode(start.body.urls[0].playUrl, { frames: 10, timeoutMs: 20_000 });
      expect(got).toMatchObject({ videoCodec: 'h264', audioCodec: 'aac' });
      await stack.request('POST', '/v1/push/stop', { channelIds: [start.body.channelId] });
    } finally {
      await feeder.close();
    }
  }, 60_000);

  /** One run of a row: its own room, started with `rateTypes`, every output checked, then stopped. */
  async function runRow(r: Row, roomId: number, rateTypes: RateType[]): Promise<void> {
    const reg = await stack.request('PUT', `/v1/rooms/${roomId}/upstreams`, { userId: 'up', srcType: 0, url: r.file });
    expect(reg.body.code, JSON.stringify(reg.body)).toBe(0);
    const start = await stack.request('POST', '/v1/push/start', {
      roomId,
      userId: 'up',
      srcType: 0,
      option: { encode: 3, rateTypes },
    });
    const what = `rateTypes ${JSON.stringify(rateTypes)}: ${JSON.stringify(start.body)}`;
    if (r.refused) {
      expect(start.body.code, what).toBe(r.refused);
      return;
    }
    expect(start.body.code, what).toBe(0);
    const { channelId, urls } = start.body as { channelId: string; urls: Url[] };
    try {
      const view = (await stack.request('GET', `/v1/push/${channelId}`)).body.channel;
      expect(view.restarts, what).toBe(0);
      if (rateTypes.includes(0)) {
        expect(view.tracks.video, what).toMatchObject(r.video!);
        expect(view.tracks.audio, what).toMatchObject(r.audio!);
        if (r.video!.mode === 'converted') expect(view.tracks.video.to).toBe('h264');
        if (r.audio!.mode !== 'copied') expect(view.tracks.audio.to).toBe('aac');
      }
      await Promise.all(urls.filter((u) => u.rateType !== null).map((u) => checkOutput(r, u)));
      const master = urls.find((u) => u.rateType === null);
      if (master) {
        const text = await (await fetch(master.playUrl)).text();
        for (const rt of rateTypes) {
          const [w, h] = rt === 0 ? r.out! : tierSize(r.out!, 360);
          expect(text, `master of ${what}`).toContain(`RESOLUTION=${w}x${h}`);
        }
      }
    } finally {
      await stack.request('POST', '/v1/push/stop', { channelIds: [channelId] });
    }
  }

  ROWS.forEach((r, i) =>
    it.skipIf(lacking(r).length > 0)(
      `${r.name} — ORIGINAL and ${JSON.stringify(r.tier ?? [0, 10])}`,
      async () => {
        // both runs at once, each in its own room (a member's start rate limit; a room's channel limit)
        await Promise.all([runRow(r, 9100 + 2 * i, [0]), runRow(r, 9101 + 2 * i, r.tier ?? [0, 10])]);
      },
      90_000,
    ),
  );
});
