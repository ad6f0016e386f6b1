import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FfmpegProcess } from '../../src/media/ffmpeg/process.js';
import { decode, fetchText, readFlv } from '../helpers/media.js';
import { eventually, ffmpegsMentioning, fixture, sleep, startStack, type Stack } from '../helpers/stack.js';

let stack: Stack;
const RETENTION_MS = 14000;

beforeAll(async () => {
  stack = await startStack({
    env: {
      RELAY_RETENTION_MS: String(RETENTION_MS),
      RELAY_STALL_MS: '3000',
      RELAY_MAX_RESTARTS: '2',
      RELAY_START_RATE_LIMIT_MS: '0',
    },
  });
});

afterAll(async () => {
  await stack?.close();
});

type Url = { type: number; playUrl: string };
const channel = async (id: string) => (await stack.request('GET', `/v1/push/${id}`)).body.channel;
const waitState = (id: string, state: string, ms = 15000) =>
  eventually(async () => ((await channel(id)).state === state ? channel(id) : null), ms);
const urlOf = (urls: Url[], type: number) => urls.find((u) => u.type === type)!.playUrl;
const start = (userId: string, option: Record<string, unknown> = { encode: 3 }) =>
  stack.request('POST', '/v1/push/start', { roomId: 2001, userId, srcType: 0, option });
const lastSegmentOf = (playlist: string) =>
  Math.max(-1, ...[...playlist.matchAll(/seg_(\d+)\.ts/g)].map((m) => Number(m[1])));

async function member(userId: string): Promise<FfmpegProcess> {
  return stack.publish({ roomId: 2001, userId, srcType: 0 }, fixture('alice-camera.mp4'));
}

describe('an upstream lost and back', () => {
  it('the channel is interrupted: HLS keeps its playlist without ENDLIST; FLV viewers wait before 7 s and are told the live ended after', async () => {
    const feeder = await member('ann');
    const r = await start('ann');
    expect(r.body.code).toBe(0);
    const hls = urlOf(r.body.urls, 1);
    const flv = urlOf(r.body.urls, 2);
    await eventually(async () => /#EXTINF/.test((await fetchText(hls)) ?? ''));
    await feeder.close();
    const lost = await waitState(r.body.channelId, 'interrupted', 10000);
    expect(lost.interruptedAt).toBeGreaterThan(0);
    expect(lost.retainUntil - lost.interruptedAt).toBe(RETENTION_MS);
    expect(await fetchText(hls)).not.toMatch(/#EXT-X-ENDLIST/);
    expect(ffmpegsMentioning(r.body.channelId)).toEqual([]);

    // within 7 s of the loss: accepted and waiting (headers, no media)
    const early = await fetch(flv);
    expect(early.status).toBe(200);
    await early.body?.cancel();
    await sleep(Math.max(0, lost.interruptedAt + 7200 - Date.now()));
    const late = await fetch(flv);
    expect(late.status).toBe(404);
    expect(await late.json()).toMatchObject({ message: expect.stringMatching(/live ended/) });
    await expect(
      decode(
        urlOf(r.body.urls, 1).replace(
          /^http:\/\/([^/]+)\/hls\/(ch_\w+)\/index\.m3u8$/,
          `rtmp://127.0.0.1:${stack.rtmpPort}/live/$2`,
        ),
        { frames: 1, timeoutMs: 8000 },
      ),
    ).rejects.toThrow();
    // the stream is still retained: a stop ends it at once, with ENDLIST
    const stop = await stack.request('POST', '/v1/push/stop', { channelIds: [r.body.channelId] });
    expect(stop.body.results[0]).toMatchObject({ code: 0 });
    expect(await fetchText(hls)).toMatch(/#EXT-X-ENDLIST/);
  });

  it('a start within the retention time returns the same channelId and URLs; HLS numbering goes on with a discontinuity', async () => {
    let feeder = await member('ben');
    const first = await start('ben');
    expect(first.body.code).toBe(0);
    const hls = urlOf(first.body.urls, 1);
    const before = await eventually(async () => {
      const t = await fetchText(hls);
      return t && (t.match(/#EXTINF/g) ?? []).length >= 2 ? t : null;
    });
    await feeder.close();
    await waitState(first.body.channelId, 'interrupted', 10000);
    feeder = await member('ben');
    const again = await start('ben');
    expect(again.body.code, JSON.stringify(again.body)).toBe(0);
    expect(again.body.channelId).toBe(first.body.channelId);
    expect(again.body.urls).toEqual(first.body.urls);
    const after = await eventually(async () => {
      const t = await fetchText(hls);
      // numbering continues after the last segment before the loss, across a discontinuity
      return t && lastSegmentOf(t) > lastSegmentOf(before) + 1 && /\.ts\n#EXT-X-DISCONTINUITY/.test(t) ? t : null;
    }, 20000);
    expect(after).not.toMatch(/#EXT-X-ENDLIST/);
    expect((await readFlv(urlOf(first.body.urls, 2))).summary.keyframe).toBe(true);
    const ch = await channel(first.body.channelId);
    expect(ch.history.map((h: { state: string }) => h.state)).toEqual([
      'starting',
      'live',
      'interrupted',
      'starting',
      'live',
    ]);
    await stack.request('POST', '/v1/push/stop', { channelIds: [first.body.channelId] });
    await feeder.close();
  });

  it('with autoResume the channel goes live again by itself when the member publishes again', async () => {
    let feeder = await member('cat');
    const r = await start('cat', { encode: 2, autoResume: true });
    expect(r.body.code).toBe(0);
    await feeder.close();
    await waitState(r.body.channelId, 'interrupted', 10000);
    feeder = await member('cat');
    const live = await waitState(r.body.channelId, 'live', 15000);
    expect(live.history.at(-2).reason).toMatch(/published again/);
    expect((await readFlv(urlOf(r.body.urls, 2))).summary.keyframe).toBe(true);
    await stack.request('POST', '/v1/push/stop', { channelIds: [r.body.channelId] });
    await feeder.close();
  });

  it('after the retention time the channel is recycled: its URLs answer 404, its files are gone, a new start gets new URLs', async () => {
    let feeder = await member('dan');
    const r = await start('dan');
    expect(r.body.code).toBe(0);
    const hls = urlOf(r.body.urls, 1);
    await eventually(async () => /#EXTINF/.test((await fetchText(hls)) ?? ''));
    await feeder.close();
    const lost = await waitState(r.body.channelId, 'interrupted', 10000);
    await sleep(Math.max(0, lost.retainUntil - Date.now()));
    await waitState(r.body.channelId, 'recycled', 10000);
    expect((await fetch(hls)).status).toBe(404);
    expect((await fetch(urlOf(r.body.urls, 2))).status).toBe(404);
    expect(fs.existsSync(path.join(stack.dataDir, 'hls', r.body.channelId))).toBe(false);
    feeder = await member('dan');
    const again = await start('dan');
    expect(again.body.code).toBe(0);
    expect(again.body.channelId).not.toBe(r.body.channelId);
    await stack.request('POST', '/v1/push/stop', { channelIds: [again.body.channelId] });
    await feeder.close();
  });
});

describe('ffmpeg failures', () => {
  it('a crashed or stalled ffmpeg is restarted and the channel stays live on its URLs; too many failures fail it and free its slot', async () => {
    const feeder = await member('eve');
    const r = await start('eve', { encode: 2 });
    expect(r.body.code).toBe(0);
    const id = r.body.channelId as string;
    const pidOf = async () => eventually(async () => ffmpegsMentioning(id)[0], 15000);

    process.kill(await pidOf(), 'SIGKILL');
    await eventually(async () => (await channel(id)).restarts === 1, 15000);
    expect((await channel(id)).state).toBe('live');
    expect((await readFlv(urlOf(r.body.urls, 2))).summary.keyframe).toBe(true);

    const stalled = await pidOf();
    process.kill(stalled, 'SIGSTOP');
    await eventually(async () => (await channel(id)).restarts === 2, 20000);
    expect(ffmpegsMentioning(id)).not.toContain(stalled);

    process.kill(await pidOf(), 'SIGKILL');
    const failed = await waitState(id, 'failed', 20000);
    expect(failed.error.message).toMatch(/failed 3 times/);
    expect(ffmpegsMentioning(id)).toEqual([]);
    const next = await start('eve', { encode: 2 });
    expect(next.body.code).toBe(0);
    expect(next.body.channelId).not.toBe(id);
    await stack.request('POST', '/v1/push/stop', { channelIds: [next.body.channelId] });
    await feeder.close();
  });
});
