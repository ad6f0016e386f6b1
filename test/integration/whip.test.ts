/**
 * WHIP ingest (RFC 9725) through the real stack: a Node publisher built on werift (the relay's own WebRTC library)
 * sends generated VP8 or H.264 with Opus; the member appears in its room with source `whip`, and a push of it with
 * ORIGINAL plays as H.264 + AAC. Refusals (tokens, a live key, no video, codecs), DELETE and a silent publisher.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useVP9 } from 'werift';
import { RelayClient } from '../../src/client/index.js';
import { decode, readFlv } from '../helpers/media.js';
import { createLogger } from '../../src/log.js';
import { FfmpegProcess } from '../../src/media/ffmpeg/process.js';
import { eventually, FFMPEG, ffmpegsMentioning, sleep, startStack, type Stack } from '../helpers/stack.js';
import { WhipClient } from '../helpers/whip-client.js';

const IDLE_MS = 3000;

/** UDP sockets a process holds (werift's ICE sockets, the session's forwarding socket). */
function udpSocketsOf(pid: number): number {
  const inodes = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`, { encoding: 'utf8' }) ?? '');
    if (m) inodes.add(m[1]!);
  }
  const table = fs.readFileSync('/proc/net/udp', 'utf8') + fs.readFileSync('/proc/net/udp6', 'utf8');
  return table.split('\n').filter((l) => inodes.has(l.trim().split(/\s+/)[9] ?? '')).length;
}

describe('WHIP ingest', () => {
  let stack: Stack;
  const clients: WhipClient[] = [];

  beforeAll(async () => {
    stack = await startStack({ env: { RELAY_INGEST_IDLE_MS: String(IDLE_MS), RELAY_START_RATE_LIMIT_MS: '0' } });
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await stack?.close();
  });

  const client = (opts: ConstructorParameters<typeof WhipClient>[0] = {}) => {
    const c = new WhipClient(opts);
    clients.push(c);
    return c;
  };
  async function endpoint(roomId: number, userId: string, srcType: 0 | 1 = 0) {
    const r = await stack.request('GET', `/v1/rooms/${roomId}/ingest?userId=${userId}&srcType=${srcType}`);
    expect(r.status).toBe(200);
    return r.body as { publishUrl: string; whipUrl: string; whipToken: string };
  }
  const member = async (roomId: number, userId: string) => {
    const r = await stack.request('GET', `/v1/rooms/${roomId}`);
    return (r.body.upstreams ?? []).find((u: { userId: string }) => u.userId === userId) ?? null;
  };

  it('the ingest answer names the WHIP endpoint and its token beside the RTMP URL', async () => {
    const e = await endpoint(3001, 'wanda');
    expect(e.whipUrl).toBe(`http://127.0.0.1:${stack.httpPort}/whip/${stack.sdkAppId}/3001/wanda/camera`);
    expect(e.publishUrl.endsWith(`?sig=${e.whipToken}`)).toBe(true);
    const client = new RelayClient({ baseUrl: stack.api, sdkAppId: stack.sdkAppId, secretKey: stack.secretKey });
    expect(await client.whipEndpoint(3001, 'wanda')).toEqual({ url: e.whipUrl, token: e.whipToken });
  });

  it.each(['vp8', 'h264'] as const)(
    'a %s + Opus publisher becomes a room member (source whip) whose ORIGINAL push decodes as H.264 + AAC',
    async (codec) => {
      const userId = `w${codec}`;
      const e = await endpoint(3001, userId);
      const c = client({ video: codec });
      const t0 = Date.now();
      const r = await c.publish(e.whipUrl, e.whipToken);
      expect(r.status, r.body).toBe(201);
      expect(r.headers.get('content-type')).toBe('application/sdp');
      expect(r.headers.get('location')).toMatch(/^\/whip\/session\/[0-9a-f]{32}$/);
      expect(r.headers.get('etag')).toBeTruthy();
      expect(r.body).toMatch(/^v=0/);
      const up = await eventually(() => member(3001, userId), 15000);
      const registeredMs = Date.now() - t0;
      expect(up.source).toBe('whip');
      await eventually(async () => (await member(3001, userId))?.stats?.videoCodec === 'h264' || null, 10000);
      const t1 = Date.now();
      const start = await stack.request('POST', '/v1/push/start', {
        roomId: 3001,
        userId,
        srcType: 0,
        option: { encode: 2 },
      });
      expect(start.body.code, JSON.stringify(start.body)).toBe(0);
      const startMs = Date.now() - t1;
      const flv = start.body.urls.find((u: { type: number }) => u.type === 2).playUrl;
      const first = await readFlv(flv, { stopWhen: (f) => f.keyframe });
      const keyframeMs = Date.now() - t1;
      first.destroy();
      const d = await decode(flv, { frames: 30 });
      expect(d).toMatchObject({ videoCodec: 'h264', audioCodec: 'aac', width: 640, height: 360 });
      const ch = await stack.request('GET', `/v1/push/${start.body.channelId}`);
      expect(ch.body.tracks.video.mode).toBe('copied');
      console.log(
        `WHIP ${codec}: POST → member registered ${registeredMs} ms; push start answered ${startMs} ms, ` +
          `first FLV keyframe at a viewer ${keyframeMs} ms after the start call`,
      );
      await stack.request('POST', '/v1/push/stop', { channelIds: [start.body.channelId] });
      expect(await c.delete()).toBe(200);
      await eventually(async () => ((await member(3001, userId)) === null ? true : null), 10000);
      // the session's bridge ffmpeg is gone with it
      await eventually(async () => ffmpegsMentioning(`${stack.dataDir}/whip/`).length === 0, 5000);
    },
    60000,
  );

  it('DELETE interrupts the channel; with autoResume a new WHIP publish brings it live again on the same URLs', async () => {
    const e = await endpoint(3007, 'again');
    const first = client();
    expect((await first.publish(e.whipUrl, e.whipToken)).status).toBe(201);
    await eventually(() => member(3007, 'again'), 15000);
    const r = await stack.request('POST', '/v1/push/start', {
      roomId: 3007,
      userId: 'again',
      srcType: 0,
      option: { encode: 2, autoResume: true },
    });
    expect(r.body.code, JSON.stringify(r.body)).toBe(0);
    const state = async (want: string) =>
      eventually(async () => (await stack.request('GET', `/v1/push/${r.body.channelId}`)).body.state === want, 15000);
    expect(await first.delete()).toBe(200);
    await state('interrupted');
    const second = client({ video: 'h264' });
    expect((await second.publish(e.whipUrl, e.whipToken)).status).toBe(201);
    await state('live');
    const flv = r.body.urls.find((u: { type: number }) => u.type === 2).playUrl;
    expect((await readFlv(flv)).summary.keyframe).toBe(true);
    await stack.request('POST', '/v1/push/stop', { channelIds: [r.body.channelId] });
    await second.delete();
  }, 60000);

  it('refuses a missing token with 401 and a wrong one with 403, with a JSON reason', async () => {
    const e = await endpoint(3002, 'mallory');
    const none = await client({ media: false }).publish(e.whipUrl, null);
    expect(none.status).toBe(401);
    expect(JSON.parse(none.body)).toMatchObject({ code: 1001, hint: expect.any(String) });
    const other = await endpoint(3002, 'someone');
    const wrong = await client({ media: false }).publish(e.whipUrl, other.whipToken);
    expect(wrong.status).toBe(403);
    expect(JSON.parse(wrong.body)).toMatchObject({ code: 1001, message: expect.stringMatching(/token/) });
  });

  it('refuses a second publisher on a live key with 409', async () => {
    const e = await endpoint(3003, 'twice');
    const first = client();
    expect((await first.publish(e.whipUrl, e.whipToken)).status).toBe(201);
    await eventually(() => member(3003, 'twice'), 15000);
    const second = await client({ media: false }).publish(e.whipUrl, e.whipToken);
    expect(second.status).toBe(409);
    expect(JSON.parse(second.body).hint).toMatch(/DELETE/);
    await first.delete();
  });

  it('refuses an offer without video with 40000004, and one without an accepted codec with 406', async () => {
    const e = await endpoint(3004, 'novideo');
    const audioOnly = await client({ video: 'none', media: false }).publish(e.whipUrl, e.whipToken);
    expect(audioOnly.status).toBe(400);
    expect(JSON.parse(audioOnly.body).code).toBe(40000004);
    const vp9 = await client({ onlyVideoCodec: useVP9(), media: false }).publish(e.whipUrl, e.whipToken);
    expect(vp9.status).toBe(406);
    expect(JSON.parse(vp9.body)).toMatchObject({ accepted: expect.arrayContaining(['VP8', 'opus']) });
  });

  it('refuses an offer that is no SDP with 400, and one sent as another type with 415', async () => {
    const e = await endpoint(3008, 'garbage');
    const post = (body: string, type: string) =>
      fetch(e.whipUrl, {
        method: 'POST',
        headers: { 'content-type': type, authorization: `Bearer ${e.whipToken}` },
        body,
      });
    const junk = await post(
      'v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\na=sendonly\r\n',
      'application/sdp',
    );
    expect(junk.status).toBe(400);
    expect(await junk.json()).toMatchObject({ code: 50002, message: expect.stringMatching(/no ICE credentials/) });
    const text = await post('hello', 'application/sdp');
    expect(text.status).toBe(400);
    expect(await text.json()).toMatchObject({ code: 50002, message: 'the body is not an SDP offer' });
    expect((await post('{}', 'application/json')).status).toBe(415);
    // a body over the limit: a JSON 413, not a reset connection
    const big = await post(`v=0\r\n${'a=x\r\n'.repeat(40_000)}`, 'application/sdp');
    expect(big.status).toBe(413);
    expect(await big.json()).toMatchObject({ code: 50002, message: expect.stringMatching(/over \d+ bytes/) });
  });

  it('an RTMP publish on a member publishing over WHIP is refused and leaves its entry alone (no ghost member)', async () => {
    const e = await endpoint(3009, 'ghost');
    const whip = client();
    expect((await whip.publish(e.whipUrl, e.whipToken)).status).toBe(201);
    await eventually(async () => ((await member(3009, 'ghost'))?.source === 'whip' ? true : null), 15000);
    const rtmp = new FfmpegProcess({
      ffmpegPath: FFMPEG,
      args: [
        ...['-v', 'error', '-re', '-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=15', '-t', '4'],
        ...['-c:v', 'libx264', '-preset', 'ultrafast', '-f', 'flv', e.publishUrl],
      ],
      logger: createLogger('silent', 'rtmp-second'),
      startTimeoutMs: 5000,
    });
    await rtmp.start().catch(() => undefined); // refused: it may never flow
    await rtmp.close();
    await sleep(1000);
    expect(await member(3009, 'ghost')).toMatchObject({ source: 'whip' });
    expect(await whip.delete()).toBe(200);
    await eventually(async () => ((await member(3009, 'ghost')) === null ? true : null), 10000);
  });

  it('answers OPTIONS with CORS, PATCH with 405 and Allow', async () => {
    const e = await endpoint(3005, 'cors');
    const opt = await fetch(e.whipUrl, { method: 'OPTIONS' });
    expect(opt.status).toBe(204);
    expect(opt.headers.get('access-control-allow-origin')).toBe('*');
    expect(opt.headers.get('access-control-expose-headers')).toMatch(/Location/);
    expect(opt.headers.get('access-control-allow-headers')).toMatch(/Authorization/);
    const patch = await fetch(e.whipUrl.replace(/\/whip\/.*/, `/whip/session/${'0'.repeat(32)}`), { method: 'PATCH' });
    expect(patch.status).toBe(405);
    expect(patch.headers.get('allow')).toBe('DELETE, OPTIONS');
  });

  it('drops a publisher that goes silent after RELAY_INGEST_IDLE_MS; the member leaves', async () => {
    const e = await endpoint(3006, 'quiet');
    const c = client();
    expect((await c.publish(e.whipUrl, e.whipToken)).status).toBe(201);
    await eventually(() => member(3006, 'quiet'), 15000);
    await c.mute();
    const t = Date.now();
    await eventually(async () => ((await member(3006, 'quiet')) === null ? true : null), IDLE_MS + 8000);
    expect(Date.now() - t).toBeGreaterThanOrEqual(IDLE_MS - 1000);
    // the session itself ended too (its idle watch, checked every ¼ of the timeout): nothing left to DELETE
    await sleep(Math.max(0, t + IDLE_MS + 1500 - Date.now()));
    expect(await c.delete()).toBe(404);
  }, 30000);

  it('leaves no bridge ffmpeg and no UDP socket behind once its sessions ended', async () => {
    await eventually(async () => ffmpegsMentioning(`${stack.dataDir}/whip/`).length === 0, 5000);
    const media = stack.procs.find((p) => p.name === 'media')!.child.pid!;
    await eventually(async () => udpSocketsOf(media) === 0, 5000);
  });
});

describe('RELAY_WHIP_MAX_SESSIONS', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ env: { RELAY_WHIP_MAX_SESSIONS: '1' } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('holds for offers arriving together: one session, the others 503', async () => {
    const clients = [0, 1, 2].map(() => new WhipClient({ media: false }));
    try {
      const answers = await Promise.all(
        clients.map(async (c, i) => {
          const r = await stack.request('GET', `/v1/rooms/3100/ingest?userId=cap${i}&srcType=0`);
          return (await c.publish(r.body.whipUrl, r.body.whipToken)).status;
        }),
      );
      expect(answers.sort()).toEqual([201, 503, 503]);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  });
});
