import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { FfmpegProcess } from '../../src/media/ffmpeg/process.js';
import { loopPublishArgs } from '../../src/media/ffmpeg/args.js';
import { createLogger } from '../../src/log.js';
import { decode } from '../helpers/media.js';
import { eventually, FFMPEG, fixture, startStack, type Stack } from '../helpers/stack.js';

let stack: Stack;
let channelId: string;

beforeAll(async () => {
  // debug level: ffmpeg command lines (with their signed URLs) are logged, so redaction is exercised
  stack = await startStack({ env: { RELAY_LOG_LEVEL: 'debug' } });
  await stack.publish({ roomId: 1001, userId: 'alice', srcType: 0 }, fixture('alice-camera.mp4'));
  const r = await stack.request('POST', '/v1/push/start', {
    roomId: 1001,
    userId: 'alice',
    srcType: 0,
    option: { encode: 2 },
  });
  channelId = r.body.channelId;
});

afterAll(async () => {
  await stack?.close();
});

/** Sends a raw HTTP request line (no client-side normalisation) and returns the status code, or 0 when the socket closed. */
function raw(path: string): Promise<number> {
  return new Promise((resolve) => {
    const s = net.connect(stack.httpPort, '127.0.0.1', () =>
      s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`),
    );
    let data = '';
    s.on('data', (d) => {
      data += d.toString('latin1');
    });
    s.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0)));
    s.on('error', () => resolve(0));
  });
}

/** Publishes a fixture to an RTMP URL; resolves true when media flowed, false when refused. */
async function tryPublish(url: string): Promise<boolean> {
  const ff = new FfmpegProcess({
    ffmpegPath: FFMPEG,
    logger: createLogger('silent', 't'),
    startTimeoutMs: 4000,
    args: [
      '-hide_banner',
      '-nostdin',
      '-loglevel',
      'error',
      '-progress',
      'pipe:1',
      '-re',
      '-i',
      fixture('video-only.mp4'),
      '-t',
      '3',
      '-c',
      'copy',
      '-f',
      'flv',
      url,
    ],
  });
  try {
    await ff.start();
    // refused publishes are closed by the server shortly after the handshake
    const died = await Promise.race([
      new Promise((r) => ff.once('exit', () => r(true))),
      new Promise((r) => setTimeout(() => r(false), 1500)),
    ]);
    return !died;
  } catch {
    return false;
  } finally {
    await ff.kill();
  }
}

describe('the media server guard', () => {
  it('hostile FLV, WS and HLS paths get 4xx answers and the server stays up', async () => {
    const paths = [
      '/live/a.b.flv',
      '/live/%00.flv',
      '/live/..%2f..%2fetc%2fpasswd.flv',
      `/live/${'x'.repeat(5000)}.flv`,
      '/live/%E2%98%83.flv',
      '/hls/../../etc/passwd',
      '/hls/%2e%2e/%2e%2e/etc/passwd',
      `/hls/${channelId}/../../../../etc/passwd`,
      '/hls/ch_x/index.m3u8',
      '/admin',
      '/api/v1/streams',
      '/live/.flv',
      '//live//x.flv',
      '/live/ch_00000000000000000000.flv',
    ];
    for (const p of paths) {
      const status = await raw(p);
      expect(status, p).toBeGreaterThanOrEqual(400);
      expect(status, p).toBeLessThan(500);
    }
    const ws = await new Promise<string>((resolve) => {
      const c = new WebSocket(`ws://127.0.0.1:${stack.httpPort}/live/a.b.flv`);
      c.on('open', () => resolve('open'));
      c.on('error', (e) => resolve(e.message));
    });
    expect(ws).toMatch(/404/);
    expect(await raw('/healthz')).toBe(200);
  });

  it('WS-FLV plays a live channel', async () => {
    const bytes = await new Promise<Buffer>((resolve, reject) => {
      const c = new WebSocket(`ws://127.0.0.1:${stack.httpPort}/live/${channelId}.flv`);
      let buf = Buffer.alloc(0);
      c.on('message', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length > 20000) {
          c.close();
          resolve(buf);
        }
      });
      c.on('error', reject);
      setTimeout(() => reject(new Error(`only ${buf.length} bytes`)), 10000);
    });
    expect(bytes.toString('latin1', 0, 3)).toBe('FLV');
  });

  it('HTTP-FLV and refusals carry CORS headers, so pages on other origins can play', async () => {
    const ctl = new AbortController();
    const res = await fetch(`http://127.0.0.1:${stack.httpPort}/live/${channelId}.flv`, {
      headers: { origin: 'https://player.example' },
      signal: ctl.signal,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    ctl.abort();
    const refused = await fetch(`http://127.0.0.1:${stack.httpPort}/live/ch_00000000000000000000.flv`, {
      headers: { origin: 'https://player.example' },
    });
    expect(refused.status).toBe(404);
    expect(refused.headers.get('access-control-allow-origin')).toBe('*');
  });

  it('HEAD on an FLV URL answers at once: 200 with the FLV headers and no body when live, 404 otherwise', async () => {
    const head = async (path: string) => {
      const res = await fetch(`http://127.0.0.1:${stack.httpPort}${path}`, {
        method: 'HEAD',
        headers: { origin: 'https://player.example' },
        signal: AbortSignal.timeout(3000),
      });
      return { res, body: await res.text() };
    };
    const live = await head(`/live/${channelId}.flv`);
    expect(live.res.status).toBe(200);
    expect(live.res.headers.get('content-type')).toBe('video/x-flv');
    expect(live.res.headers.get('access-control-allow-origin')).toBe('*');
    expect(live.body).toBe('');
    const unknown = await head('/live/ch_00000000000000000000.flv');
    expect(unknown.res.status).toBe(404);
    expect(unknown.res.headers.get('access-control-allow-origin')).toBe('*');
    expect((await head('/live/abc.flv')).res.status).toBe(404);
    // a GET still plays after the HEADs
    const ctl = new AbortController();
    const res = await fetch(`http://127.0.0.1:${stack.httpPort}/live/${channelId}.flv`, { signal: ctl.signal });
    const first = await res.body!.getReader().read();
    expect(Buffer.from(first.value!).toString('latin1', 0, 3)).toBe('FLV');
    ctl.abort();
  });

  it('only signed members publish to the ingest, only workers publish channels, and nobody plays the raw ingest', async () => {
    const base = `rtmp://127.0.0.1:${stack.rtmpPort}`;
    expect(await tryPublish(`${base}/ingest/1400000001_1001_eve_camera`)).toBe(false);
    expect(await tryPublish(`${base}/ingest/1400000001_1001_eve_camera?sig=00000000000000000000000000000000`)).toBe(
      false,
    );
    expect(await tryPublish(`${base}/live/${channelId}x`)).toBe(false);
    expect(await tryPublish(`${base}/other/stream`)).toBe(false);
    expect(await stack.redis.hexists(`${stack.prefix}:room:1400000001:1001`, 'eve:0')).toBe(0);
    await expect(
      decode(`${base}/ingest/1400000001_1001_alice_camera`, { frames: 1, timeoutMs: 8000 }),
    ).rejects.toThrow();
    // the channel itself still plays
    const ok = await decode(`${base}/live/${channelId}`, { frames: 5 });
    expect(ok.width).toBe(1280);
  });

  it('no secret reaches the logs of any relay process', async () => {
    const logs = stack.procs.flatMap((p) => p.output).join('\n');
    expect(logs).toMatch(/"cmd":"[^"]*token=\*\*\*[^"]*","msg":"spawning ffmpeg"/);
    expect(logs).not.toContain(stack.secretKey);
    expect(logs).not.toMatch(/(sig|token)=[0-9a-f]{8,}/);
    expect(logs).not.toMatch(/Basic [A-Za-z0-9+/=]{20,}/);
  });

  it('the signed ingest URL of the API registers the member while it publishes, and the member leaves when it stops', async () => {
    const r = await stack.request('GET', '/v1/rooms/4004/ingest?userId=erin&srcType=1');
    expect(r.body.publishUrl).toMatch(
      new RegExp(`^rtmp://127\\.0\\.0\\.1:${stack.rtmpPort}/ingest/1400000001_4004_erin_screen\\?sig=[0-9a-f]{32}$`),
    );
    const ff = new FfmpegProcess({
      ffmpegPath: FFMPEG,
      logger: createLogger('silent', 't'),
      startTimeoutMs: 8000,
      args: loopPublishArgs(fixture('bob-screen.mp4'), r.body.publishUrl),
    });
    await ff.start();
    const room = await eventually(async () => {
      const res = await stack.request('GET', '/v1/rooms/4004');
      return res.body.code === 0 ? res.body : null;
    });
    expect(room.upstreams).toEqual([expect.objectContaining({ userId: 'erin', srcType: 1, source: 'ingest' })]);
    expect((await stack.request('GET', '/v1/rooms')).body.rooms).toContain(4004);
    await ff.close();
    await eventually(async () => (await stack.request('GET', '/v1/rooms/4004')).body.code === 40000410, 5000);
  });

  it('an external upstream can be registered, listed and removed; an ingest member cannot be replaced by a URL', async () => {
    const put = await stack.request('PUT', '/v1/rooms/4005/upstreams', {
      userId: 'cam',
      srcType: 0,
      url: 'rtsp://user:pw@203.0.114.9/stream', // a public address: internal ones are refused (egress policy)
    });
    expect(put.body.code).toBe(0);
    const room = await stack.request('GET', '/v1/rooms/4005');
    expect(room.body.upstreams[0]).toMatchObject({ userId: 'cam', source: 'external' });
    expect(room.body.upstreams[0].url).not.toContain('pw');
    expect((await stack.request('DELETE', '/v1/rooms/4005/upstreams/cam/0')).body.code).toBe(0);
    expect((await stack.request('DELETE', '/v1/rooms/4005/upstreams/cam/0')).body.code).toBe(40000411);
    const clash = await stack.request('PUT', '/v1/rooms/1001/upstreams', {
      userId: 'alice',
      srcType: 0,
      url: 'rtmp://203.0.114.10/x',
    });
    expect(clash.body).toMatchObject({ code: 50002, message: expect.stringContaining('ingest') });
  });
});
