import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decode, fetchText, readFlv } from '../helpers/media.js';
import { eventually, ffmpegsMentioning, fixture, sleep, startStack, type Stack } from '../helpers/stack.js';

let stack: Stack;

beforeAll(async () => {
  stack = await startStack();
  await stack.publish({ roomId: 1001, userId: 'alice', srcType: 0 }, fixture('alice-camera.mp4'));
  await stack.publish({ roomId: 1001, userId: 'bob', srcType: 0 }, fixture('bob-camera.mp4'));
});

afterAll(async () => {
  await stack?.close();
});

const urlOf = (urls: { type: number; playUrl: string }[], type: number): string => {
  const u = urls.find((x) => x.type === type);
  if (!u) throw new Error(`no URL of type ${type} in ${JSON.stringify(urls)}`);
  return u.playUrl;
};

async function segmentOf(playlistUrl: string): Promise<{ playlist: string; segmentUrl: string }> {
  const playlist = await eventually(async () => {
    const text = await fetchText(playlistUrl);
    return text && /#EXTINF/.test(text) ? text : null;
  }, 15000);
  const seg = playlist.split('\n').find((l) => l.endsWith('.ts'))!;
  return { playlist, segmentUrl: new URL(seg, playlistUrl).toString() };
}

describe('a bypass push from start to stop', () => {
  it('HLS_AND_FLV: FLV carries an AVC sequence header, a keyframe and AAC; HLS segments decode at the upstream size; stop ends both', async () => {
    const start = await stack.request('POST', '/v1/push/start', {
      roomId: 1001,
      userId: 'alice',
      srcType: 0,
      option: { encode: 3, channelName: 'e2e' },
    });
    expect(start.status).toBe(200);
    expect(start.body.code).toBe(0);
    const { channelId, urls } = start.body;
    expect(urls.map((u: { type: number }) => u.type).sort()).toEqual([1, 2]);
    expect(urls.every((u: { rateType: number }) => u.rateType === 0)).toBe(true);

    const flv = await readFlv(urlOf(urls, 2), { keepOpen: true });
    expect(flv.summary.status).toBe(200);
    expect(flv.summary.signature).toBe('FLV');
    expect(flv.summary.avcSequenceHeader).toBe(true);
    expect(flv.summary.keyframe).toBe(true);
    expect(flv.summary.aacSequenceHeader).toBe(true);

    const hlsUrl = urlOf(urls, 1);
    const { playlist, segmentUrl } = await segmentOf(hlsUrl);
    expect(playlist).toMatch(/#EXT-X-TARGETDURATION:2/);
    expect(playlist).not.toMatch(/#EXT-X-ENDLIST/);
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'seg-'));
    try {
      const file = path.join(tmp, 'seg.ts');
      fs.writeFileSync(file, Buffer.from(await (await fetch(segmentUrl)).arrayBuffer()));
      const seg = await decode(file);
      expect([seg.width, seg.height]).toEqual([1280, 720]);
      expect(seg.audioCodec).toBe('aac');
      expect(seg.seconds).toBeGreaterThan(1.5);
      expect(seg.seconds).toBeLessThan(2.6);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    const cors = await fetch(hlsUrl);
    expect(cors.headers.get('access-control-allow-origin')).toBe('*');
    expect(cors.headers.get('content-type')).toBe('application/vnd.apple.mpegurl');

    const status = await stack.request('GET', `/v1/push/${channelId}`);
    expect(status.body.channel.state).toBe('live');
    expect(status.body.channel.option.channelName).toBe('e2e');
    expect(status.body.channel.startedAt).toBeGreaterThan(0);
    const withStats = await eventually(async () => {
      const s = await stack.request('GET', `/v1/push/${channelId}`);
      return s.body.channel.stats?.frames > 0 && s.body.channel.stats.fps > 0 ? s.body.channel : null;
    });
    expect(withStats.stats.fps).toBeGreaterThan(0);

    const stop = await stack.request('POST', '/v1/push/stop', { channelIds: [channelId] });
    expect(stop.body).toMatchObject({ code: 0, results: [{ channelId, code: 0 }] });
    await eventually(async () => /#EXT-X-ENDLIST/.test((await fetchText(hlsUrl)) ?? ''), 10000);
    await Promise.race([
      flv.closed,
      new Promise((_, rej) => setTimeout(() => rej(new Error('FLV viewer not disconnected after stop')), 10000)),
    ]);

    const after = await stack.request('GET', `/v1/push/${channelId}`);
    expect(after.body.channel.state).toBe('stopped');
    expect(after.body.channel.stoppedAt).toBeGreaterThanOrEqual(after.body.channel.startedAt);
    expect(after.body.channel.history.map((h: { state: string }) => h.state)).toEqual([
      'starting',
      'live',
      'stopping',
      'stopped',
    ]);
    const late = await fetch(urlOf(urls, 2));
    expect(late.status).toBe(404);
    expect(ffmpegsMentioning(channelId)).toEqual([]);
  });

  it('HLS_AND_RTMP: the RTMP URL plays (frames decode at the upstream size) and HLS lists segments', async () => {
    const start = await stack.request('POST', '/v1/push/start', {
      roomId: 1001,
      userId: 'bob',
      srcType: 0,
      option: { encode: 6 },
    });
    expect(start.body.code).toBe(0);
    const { channelId, urls } = start.body;
    expect(urls.map((u: { type: number }) => u.type).sort()).toEqual([1, 5]);
    const rtmp = urlOf(urls, 5);
    expect(rtmp).toBe(`rtmp://127.0.0.1:${stack.rtmpPort}/live/${channelId}`);
    const pulled = await decode(rtmp, { frames: 30 });
    expect([pulled.width, pulled.height]).toEqual([640, 360]);
    expect(pulled.videoCodec).toBe('h264');
    expect(pulled.audioCodec).toBe('aac');
    expect(pulled.frames).toBeGreaterThanOrEqual(30);
    await segmentOf(urlOf(urls, 1));
    // an RTMP viewer that keeps playing is disconnected by the stop
    const viewer = decode(rtmp, { timeoutMs: 20000 });
    await sleep(1500);
    const stop = await stack.request('POST', '/v1/push/stop', { channelIds: [channelId] });
    expect(stop.body.results[0].code).toBe(0);
    const watched = await viewer;
    expect(watched.seconds).toBeGreaterThan(0.5);
    expect(ffmpegsMentioning(channelId)).toEqual([]);
  });

  it('a video-only upstream relays with a silent AAC track (audio is optional, video is not)', async () => {
    const reg = await stack.request('PUT', '/v1/rooms/1001/upstreams', {
      userId: 'carol',
      srcType: 0,
      url: fixture('video-only.mp4'),
    });
    expect(reg.body.code).toBe(0);
    const start = await stack.request('POST', '/v1/push/start', {
      roomId: 1001,
      userId: 'carol',
      srcType: 0,
      option: { encode: 2 },
    });
    expect(start.body.code).toBe(0);
    // an FLV header announces audio and video: players and CDNs wait for audio, so the relay adds silence
    const flv = await readFlv(start.body.urls[0].playUrl, { stopWhen: (s) => s.keyframe && s.aacFrames > 0 });
    expect(flv.summary).toMatchObject({ keyframe: true, aacSequenceHeader: true });
    expect(flv.summary.aacFrames).toBeGreaterThan(0);
    await stack.request('POST', '/v1/push/stop', { channelIds: [start.body.channelId] });
  });
});
