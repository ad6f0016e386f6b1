/**
 * ORIGINAL in general formats, per track (README "Codec policy"): upstreams generated with lavfi by the chosen ffmpeg
 * (H.264 + Opus in MKV, VP8 + Opus in WebM at an odd size, HEVC + AAC, video only, rotated 90°), relayed as file
 * upstreams, and their FLV and HLS outputs decoded: always H.264 + AAC, at the displayed (upright) size; the channel
 * view says per track whether it is copied or converted. An ingest member's codecs are planned from its registration. A row whose encoder the ffmpeg lacks is skipped, saying why.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeCapabilities } from '../../src/media/ffmpeg/capabilities.js';
import { decode } from '../helpers/media.js';
import { FFMPEG, fixture, startStack, type Stack } from '../helpers/stack.js';

const encoders = (await probeCapabilities(FFMPEG))?.encoders ?? new Map<string, string>();

interface Row {
  name: string;
  file: string;
  /** Encoders the ffmpeg needs to make the upstream. */
  needs: string[];
  /** Output options after the lavfi inputs (0: video, 1: audio). */
  make: string[];
  size: string;
  rateTypes: (0 | 10 | 20)[];
  /** Display rotation written into the file afterwards (ffmpeg 5.1's mov muxer takes it on a stream copy only). */
  rotate?: number;
  /** Decoded size of ORIGINAL (FLV, HLS). */
  out: [number, number];
  video: { codec: string; mode: string };
  audio: { codec: string; mode: string };
}

const x264 = ['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-g', '50'];
const ROWS: Row[] = [
  {
    name: 'H.264 + Opus (MKV): video copied, audio converted',
    file: 'h264-opus.mkv',
    needs: ['libx264', 'libopus'],
    make: [...x264, '-c:a', 'libopus', '-b:a', '64k'],
    size: '320x240',
    rateTypes: [0],
    out: [320, 240],
    video: { codec: 'h264', mode: 'copied' },
    audio: { codec: 'opus', mode: 'converted' },
  },
  {
    name: 'VP8 + Opus (WebM, odd size 319x239): both converted',
    file: 'vp8-opus.webm',
    needs: ['libvpx', 'libopus'],
    make: ['-c:v', 'libvpx', '-deadline', 'realtime', '-b:v', '500k', '-g', '50', '-c:a', 'libopus', '-b:a', '64k'],
    size: '319x239',
    rateTypes: [0],
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
    rateTypes: [0],
    out: [320, 240],
    video: { codec: 'hevc', mode: 'converted' },
    audio: { codec: 'aac', mode: 'converted' },
  },
  {
    name: 'video only (H.264): video copied, a silent AAC track added',
    file: 'h264-only.mp4',
    needs: ['libx264'],
    make: [...x264, '-an'],
    size: '320x240',
    rateTypes: [0],
    out: [320, 240],
    video: { codec: 'h264', mode: 'copied' },
    audio: { codec: 'none', mode: 'silent' },
  },
  {
    name: 'rotated 90° (H.264 + AAC): video converted upright',
    file: 'h264-rotated.mp4',
    needs: ['libx264', 'aac'],
    make: [...x264, '-c:a', 'aac'],
    rotate: 90,
    size: '320x240',
    rateTypes: [0],
    out: [240, 320],
    video: { codec: 'h264', mode: 'converted' },
    audio: { codec: 'aac', mode: 'converted' },
  },
  {
    name: 'VP8 + Opus with a tier (ORIGINAL + 550)',
    file: 'vp8-opus.webm',
    needs: ['libvpx', 'libopus'],
    make: [],
    size: '319x239',
    rateTypes: [0, 10],
    out: [318, 238],
    video: { codec: 'vp8', mode: 'converted' },
    audio: { codec: 'opus', mode: 'converted' },
  },
];

const lacking = (r: Row) => r.needs.filter((e) => !encoders.has(e));
for (const r of ROWS)
  if (lacking(r).length) console.log(`SKIP "${r.name}": ${FFMPEG} lacks the ${lacking(r).join(', ')} encoder`);

describe('ORIGINAL relays every upstream kind as H.264 + AAC, per track', () => {
  let stack: Stack;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-codecs-'));
  beforeAll(async () => {
    for (const r of ROWS) {
      if (lacking(r).length || !r.make.length) continue;
      const withAudio = !r.make.includes('-an');
      execFileSync(FFMPEG, [
        ...['-hide_banner', '-loglevel', 'error', '-y'],
        ...['-f', 'lavfi', '-i', `testsrc2=size=${r.size}:rate=25:duration=4`],
        ...(withAudio ? ['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000:duration=4'] : []),
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

  ROWS.forEach((r, i) =>
    it.skipIf(lacking(r).length > 0)(
      r.name,
      async () => {
        const roomId = 9100 + i;
        const reg = await stack.request('PUT', `/v1/rooms/${roomId}/upstreams`, {
          userId: 'up',
          srcType: 0,
          url: r.file,
        });
        expect(reg.body.code, JSON.stringify(reg.body)).toBe(0);
        const start = await stack.request('POST', '/v1/push/start', {
          roomId,
          userId: 'up',
          srcType: 0,
          option: { encode: 3, rateTypes: r.rateTypes },
        });
        expect(start.body.code, JSON.stringify(start.body)).toBe(0);
        const { channelId, urls } = start.body as {
          channelId: string;
          urls: { type: number; playUrl: string; rateType: number | null }[];
        };
        try {
          const view = (await stack.request('GET', `/v1/push/${channelId}`)).body.channel;
          expect(view.tracks.video).toMatchObject(r.video);
          expect(view.tracks.audio).toMatchObject(r.audio);
          if (r.video.mode === 'converted') expect(view.tracks.video.to).toBe('h264');
          if (r.audio.mode !== 'copied') expect(view.tracks.audio.to).toBe('aac');
          expect(view.restarts).toBe(0);
          for (const u of urls.filter((u) => u.rateType !== null)) {
            const got = await decode(u.playUrl, { frames: 10, timeoutMs: 20_000 });
            expect(got, `${u.playUrl}`).toMatchObject({ videoCodec: 'h264', audioCodec: 'aac' });
            if (u.rateType === 0) expect([got.width, got.height], u.playUrl).toEqual(r.out);
            else expect(got.height, u.playUrl).toBeLessThanOrEqual(360);
          }
        } finally {
          await stack.request('POST', '/v1/push/stop', { channelIds: [channelId] });
        }
      },
      90_000,
    ),
  );
});
