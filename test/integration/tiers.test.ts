import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decode, fetchText, measureFlv } from '../helpers/media.js';
import { eventually, ffmpegsMentioning, fixture, startStack, type Stack } from '../helpers/stack.js';

let stack: Stack;
let channelId: string;
let urls: { type: number; playUrl: string; rateType: number | null }[];

beforeAll(async () => {
  stack = await startStack();
  await stack.publish({ roomId: 1001, userId: 'alice', srcType: 0 }, fixture('alice-camera.mp4'));
  const r = await stack.request('POST', '/v1/push/start', {
    roomId: 1001,
    userId: 'alice',
    srcType: 0,
    option: { encode: 3, rateTypes: [0, 10, 20] },
  });
  expect(r.body.code, JSON.stringify(r.body)).toBe(0);
  ({ channelId, urls } = r.body);
});

afterAll(async () => {
  await stack?.close();
});

const url = (type: number, rateType: number | null) =>
  urls.find((u) => u.type === type && u.rateType === rateType)!.playUrl;

async function decodeSegment(playlistUrl: string) {
  const text = await eventually(async () => {
    const t = await fetchText(playlistUrl);
    return t && (t.match(/#EXTINF/g) ?? []).length >= 2 ? t : null;
  }, 20000);
  const seg = text.split('\n').filter((l) => l.endsWith('.ts'))[1]!;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tier-'));
  try {
    const file = path.join(tmp, 's.ts');
    fs.writeFileSync(file, Buffer.from(await (await fetch(new URL(seg, playlistUrl))).arrayBuffer()));
    return await decode(file);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

describe('rate tiers from one ffmpeg', () => {
  it('answers a URL per (encode × tier) plus the master playlist, and runs one ffmpeg for all tiers', () => {
    expect(urls.map((u) => [u.type, u.rateType])).toEqual([
      [1, null],
      [1, 0],
      [1, 10],
      [1, 20],
      [2, 0],
      [2, 10],
      [2, 20],
    ]);
    expect(ffmpegsMentioning(channelId)).toHaveLength(1);
  });

  it.each([
    [0, 1280, 720, null],
    [20, 960, 540, 900],
    [10, 640, 360, 550],
  ])(
    'tier %i decodes at %ix%i, at its bitrate (±25 %) with a keyframe every 2 s',
    async (rateType, width, height, kbps) => {
      const flv = url(2, rateType);
      const frames = await decode(flv, { frames: 10 });
      expect([frames.width, frames.height]).toEqual([width, height]);
      expect(frames.videoCodec).toBe('h264');
      expect(frames.audioCodec).toBe('aac');
      const w = await measureFlv(flv, 8);
      if (kbps) {
        expect(w.kbps).toBeGreaterThan(kbps * 0.75);
        expect(w.kbps).toBeLessThan(kbps * 1.25);
      } else {
        // ORIGINAL is the upstream copied: the fixture's 1.5 Mbit/s video + 96 kbit/s audio
        expect(w.kbps).toBeGreaterThan(1000);
      }
      const gaps = w.keyframes.slice(1).map((t, i) => t - w.keyframes[i]!);
      expect(gaps.length).toBeGreaterThanOrEqual(2);
      for (const g of gaps) expect(Math.abs(g - 2000)).toBeLessThanOrEqual(100);
    },
  );

  it('the master playlist lists every tier with BANDWIDTH, RESOLUTION and CODECS, and each variant decodes at its size', async () => {
    const master = await eventually(() => fetchText(url(1, null)), 10000);
    const inf = [
      ...master.matchAll(/#EXT-X-STREAM-INF:BANDWIDTH=(\d+),RESOLUTION=(\d+)x(\d+),CODECS="([^"]+)"\n(\S+)/g),
    ];
    expect(inf.map((m) => [m[2], m[3], m[5]])).toEqual([
      ['1280', '720', 'r0/index.m3u8'],
      ['960', '540', 'r20/index.m3u8'],
      ['640', '360', 'r10/index.m3u8'],
    ]);
    expect(inf.map((m) => Number(m[1]))).toEqual([...inf.map((m) => Number(m[1]))].sort((a, b) => b - a));
    for (const m of inf) expect(m[4]).toMatch(/^avc1\.[0-9a-f]{6},mp4a\.40\.2$/);
    for (const m of inf) {
      const seg = await decodeSegment(new URL(m[5]!, url(1, null)).toString());
      expect([seg.width, seg.height]).toEqual([Number(m[2]), Number(m[3])]);
      expect(seg.seconds).toBeGreaterThan(1.5);
    }
  });

  it('stop ends every tier: each variant playlist gets ENDLIST and the ffmpeg is gone', async () => {
    const stop = await stack.request('POST', '/v1/push/stop', { channelIds: [channelId] });
    expect(stop.body.results[0].code).toBe(0);
    for (const rt of [0, 10, 20]) expect(await fetchText(url(1, rt))).toMatch(/#EXT-X-ENDLIST/);
    expect(ffmpegsMentioning(channelId)).toEqual([]);
    expect((await fetch(url(2, 10))).status).toBe(404);
  });
});
