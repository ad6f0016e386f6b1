import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { decode, fetchText, readFlv } from '../helpers/media.js';
import { eventually, fixture, startStack, type Stack } from '../helpers/stack.js';

const PASSWORD = 'op3n-sesame';
let stack: Stack;
let channelId: string;
let urls: { type: number; playUrl: string; rateType: number | null }[];

beforeAll(async () => {
  stack = await startStack({ env: { RELAY_LOG_LEVEL: 'debug' } });
  await stack.publish({ roomId: 1001, userId: 'bob', srcType: 1 }, fixture('bob-screen.mp4'));
  const r = await stack.request('POST', '/v1/push/start', {
    roomId: 1001,
    userId: 'bob',
    srcType: 1,
    option: { encode: 3, channelPassword: PASSWORD, channelName: 'private', channelDesc: 'members only', sdkType: 2 },
  });
  expect(r.body.code, JSON.stringify(r.body)).toBe(0);
  ({ channelId, urls } = r.body);
});

afterAll(async () => {
  await stack?.close();
});

const hls = () => urls.find((u) => u.type === 1)!.playUrl;
const flv = () => urls.find((u) => u.type === 2)!.playUrl;
const rtmp = () => `rtmp://127.0.0.1:${stack.rtmpPort}/live/${channelId}`;
const ws = () => flv().replace('http://', 'ws://');

function wsStatus(url: string): Promise<string> {
  return new Promise((resolve) => {
    const c = new WebSocket(url);
    c.on('message', () => {
      c.close();
      resolve('data');
    });
    c.on('unexpected-response', (_req, res) => resolve(String(res.statusCode)));
    c.on('error', (e) => resolve(e.message));
    setTimeout(() => {
      c.terminate();
      resolve('timeout');
    }, 8000);
  });
}

describe('channel password', () => {
  it('HLS: the playlist and its segments need the password; the served playlist carries a play token to the segments', async () => {
    expect((await fetch(hls())).status).toBe(401);
    const wrong = await fetch(`${hls()}?pwd=nope`);
    expect(wrong.status).toBe(403);
    expect(await wrong.json()).toMatchObject({ code: 403 });
    const playlist = await eventually(async () => {
      const t = await fetchText(`${hls()}?pwd=${PASSWORD}`);
      return t && /#EXTINF/.test(t) ? t : null;
    }, 15000);
    const seg = playlist.split('\n').find((l) => /^seg_\d+\.ts\?token=[0-9a-f]{32}$/.test(l));
    expect(seg, playlist).toBeTruthy();
    const segUrl = new URL(seg!, hls()).toString();
    expect((await fetch(segUrl)).status).toBe(200);
    expect((await fetch(segUrl.replace(/\?.*$/, ''))).status).toBe(401);
    expect((await fetch(segUrl.replace(/token=[0-9a-f]+/, 'token=0123456789abcdef0123456789abcdef'))).status).toBe(403);
    expect((await decode(`${hls()}?pwd=${PASSWORD}`, { frames: 5 })).width).toBe(1280);
  });

  it('HTTP-FLV: refused with 401/403 and a JSON reason, plays with the password', async () => {
    const none = await fetch(flv());
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({ code: 401, message: expect.stringMatching(/password/) });
    expect((await fetch(`${flv()}?pwd=wrong`)).status).toBe(403);
    const ok = await readFlv(`${flv()}?pwd=${encodeURIComponent(PASSWORD)}`);
    expect(ok.summary.keyframe).toBe(true);
  });

  it('WS-FLV: the upgrade is refused without the right password and streams with it', async () => {
    expect(await wsStatus(ws())).toBe('401');
    expect(await wsStatus(`${ws()}?pwd=wrong`)).toBe('403');
    expect(await wsStatus(`${ws()}?pwd=${PASSWORD}`)).toBe('data');
  });

  it('RTMP: the connection is closed without the right password and plays with it', async () => {
    await expect(decode(rtmp(), { frames: 3, timeoutMs: 10000 })).rejects.toThrow();
    await expect(decode(`${rtmp()}?pwd=wrong`, { frames: 3, timeoutMs: 10000 })).rejects.toThrow();
    expect((await decode(`${rtmp()}?pwd=${PASSWORD}`, { frames: 3 })).width).toBe(1280);
  });

  it('the channel API returns the descriptive fields but never the password nor its hash, and no log line holds either', async () => {
    const ch = (await stack.request('GET', `/v1/push/${channelId}`)).body.channel;
    expect(ch.option).toMatchObject({
      channelName: 'private',
      channelDesc: 'members only',
      sdkType: 2,
      passwordProtected: true,
    });
    const text = JSON.stringify(ch);
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toMatch(/[0-9a-f]{64}/);
    const logs = stack.procs.flatMap((p) => p.output).join('\n');
    expect(logs).toMatch(/spawning ffmpeg/);
    expect(logs).not.toContain(PASSWORD);
    expect(logs).not.toMatch(/ph=[0-9a-f]/);
  });
});
