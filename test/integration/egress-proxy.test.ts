import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, FFMPEG, ffmpegsMentioning, fixture, startStack, type Stack } from '../helpers/stack.js';

/**
 * Everything ffmpeg fetches for an http(s) upstream goes through the worker's egress proxy, which applies the egress
 * policy per request. The stack allows 127.0.0.1 (RELAY_UPSTREAM_ALLOW), where the tenant's origin stand-ins listen;
 * the "internal" stand-ins listen on 127.0.0.2, loopback too but not allowed, and must never see a request.
 */
let stack: Stack;
let dir: string;
const servers: http.Server[] = [];
let insideHits = 0;
let insideTlsConnections = 0;
const flipped = new Set<string>();
const liveStartedAt = new Map<string, number>();
let origin: string;
let originTls: string;
let insideHttp: string;
let insideHttps: string;

const SEGMENTS = 15;
const playlist = (seqs: number[], base: string, end: boolean) =>
  [
    '#EXTM3U',
    '#EXT-X-VERSION:3',
    '#EXT-X-TARGETDURATION:2',
    `#EXT-X-MEDIA-SEQUENCE:${seqs[0]}`,
    ...seqs.flatMap((n) => ['#EXTINF:2.000000,', `${base}seg${n}.ts`]),
    ...(end ? ['#EXT-X-ENDLIST'] : []),
    '',
  ].join('\n');

/** The tenant's origin: playlists (some naming segments on the internal stand-in), segments, a redirect. */
function originHandler(inside: () => string): http.RequestListener {
  return (req, res) => {
    const url = req.url ?? '/';
    const send = (body: string | Buffer, type = 'application/vnd.apple.mpegurl') =>
      res.writeHead(200, { 'content-type': type }).end(body);
    if (url === '/vod/index.m3u8') return send(playlist([0, 1, 2], '', true));
    if (url === '/abs/index.m3u8') return send(playlist([0, 1, 2], `${inside()}/vod/`, true));
    if (url === '/redirect.m3u8') return res.writeHead(302, { location: `${inside()}/vod/index.m3u8` }).end();
    const live = /^\/live\/(\w+)\/index\.m3u8$/.exec(url)?.[1];
    if (live) {
      // a live window of 3 segments moving with time; once flipped, its segments are named on the internal stand-in
      const at = liveStartedAt.get(live) ?? liveStartedAt.set(live, Date.now()).get(live)!;
      const first = Math.min(Math.floor((Date.now() - at) / 2000), SEGMENTS - 3);
      return send(playlist([first, first + 1, first + 2], flipped.has(live) ? `${inside()}/vod/` : '/vod/', false));
    }
    const seg = /^\/vod\/seg(\d+)\.ts$/.exec(url);
    if (seg) return send(fs.readFileSync(path.join(dir, `seg${seg[1]}.ts`)), 'video/mp2t');
    res.writeHead(404).end();
  };
}

async function listen(s: http.Server, host: string, scheme: string): Promise<string> {
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, host, () => r()));
  return `${scheme}://${host}:${(s.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-egress-'));
  // 30 s of bob's camera as 2 s HLS segments with continuous timestamps, video only (ADTS audio copied from HLS into
  // FLV needs aac_adtstoasc with this ffmpeg, which is not what this file tests)
  execFileSync(
    FFMPEG,
    [
      ...['-hide_banner', '-loglevel', 'error', '-stream_loop', '-1', '-i', fixture('bob-camera.mp4')],
      ...['-t', String(SEGMENTS * 2), '-an', '-c', 'copy', '-f', 'hls', '-hls_time', '2', '-hls_list_size', '0'],
      ...['-hls_segment_filename', path.join(dir, 'seg%d.ts'), path.join(dir, 'all.m3u8')],
    ],
    { stdio: 'ignore' },
  );
  execFileSync(
    'openssl',
    [
      ...['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1'],
      ...['-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')],
    ],
    { stdio: 'ignore' },
  );
  const tls = { key: fs.readFileSync(path.join(dir, 'key.pem')), cert: fs.readFileSync(path.join(dir, 'cert.pem')) };
  const count: http.RequestListener = (_req, res) => {
    insideHits++;
    res.end('internal');
  };
  insideHttp = await listen(http.createServer(count), '127.0.0.2', 'http');
  const insideTls = https.createServer(tls, count);
  insideTls.on('connection', () => insideTlsConnections++);
  insideHttps = await listen(insideTls, '127.0.0.2', 'https');
  origin = await listen(http.createServer(originHandler(() => insideHttp)), '127.0.0.1', 'http');
  originTls = await listen(
    https.createServer(
      tls,
      originHandler(() => insideHttps),
    ),
    '127.0.0.1',
    'https',
  );
  stack = await startStack({ env: { RELAY_STALL_MS: '3000' } });
});

afterAll(async () => {
  await stack?.close();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function register(roomId: number, userId: string, url: string): Promise<void> {
  const r = await stack.request('PUT', `/v1/rooms/${roomId}/upstreams`, { userId, srcType: 0, url });
  expect(r.body.code, JSON.stringify(r.body)).toBe(0);
}
const start = (roomId: number, userId: string) =>
  stack.request('POST', '/v1/push/start', { roomId, userId, srcType: 0, option: { encode: 5 } });
/** The relay ffmpegs reading one of the origin stand-ins. */
const ours = () => [...ffmpegsMentioning(origin), ...ffmpegsMentioning(originTls)];
const stop = (id: string) => stack.request('POST', '/v1/push/stop', { channelIds: [id] });

describe('egress proxy: what an HLS upstream makes ffmpeg fetch', () => {
  it('an allowed HLS upstream over http and https goes live through the proxy (option and environment)', async () => {
    for (const [user, url] of [
      ['plain', `${origin}/live/plain/index.m3u8`],
      ['tls', `${originTls}/live/tls/index.m3u8`],
    ] as const) {
      await register(7001, user, url);
      const r = await start(7001, user);
      expect(r.body.code, `${user}: ${JSON.stringify(r.body)}`).toBe(0);
      const pid = ours()[0]!;
      const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      const environ = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      const proxy = argv[argv.indexOf('-http_proxy') + 1]!;
      expect(proxy).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(environ).toContain(`http_proxy=${proxy}`);
      expect(argv[argv.indexOf('-protocol_whitelist') + 1]).toBe('http,https,tcp,tls,crypto,httpproxy');
      expect(argv.join(' ')).toContain('-f hls -allowed_extensions');
      await stop(r.body.channelId);
      await eventually(async () => ours().length === 0);
    }
    expect(insideHits + insideTlsConnections).toBe(0);
  });

  it.each([
    ['segments named on an internal address (http)', () => `${origin}/abs/index.m3u8`],
    ['segments named on an internal address (https, CONNECT)', () => `${originTls}/abs/index.m3u8`],
    ['an HTTP 302 redirect to an internal address', () => `${origin}/redirect.m3u8`],
  ])('%s: the start is refused with 50002 naming the policy, and the internal server sees nothing', async (_n, url) => {
    const user = `u${Math.random().toString(36).slice(2, 8)}`;
    await register(7002, user, url()); // the upstream URL itself is on the allowed origin
    const r = await start(7002, user);
    expect(r.status, JSON.stringify(r.body)).toBe(400);
    expect(r.body.code).toBe(50002);
    expect(r.body.message).toMatch(/refused by the egress policy/);
    expect(r.body.message).toMatch(/127\.0\.0\.2:\d+ points at an internal address/);
    expect(r.body.message).toContain('RELAY_UPSTREAM_ALLOW');
    expect(insideHits).toBe(0);
    expect(insideTlsConnections).toBe(0);
    await eventually(async () => ours().length === 0, 5000);
  });

  it('a live playlist that starts naming internal segments mid-run fails the channel with 50002, not 6012', async () => {
    await register(7003, 'live', `${origin}/live/flip/index.m3u8`);
    const r = await start(7003, 'live');
    expect(r.body.code, JSON.stringify(r.body)).toBe(0);
    flipped.add('flip');
    const failed = await eventually(async () => {
      const ch = (await stack.request('GET', `/v1/push/${r.body.channelId}`)).body.channel;
      return ch?.state === 'failed' ? ch : null;
    }, 30000);
    expect(failed.error.code).toBe(50002);
    expect(failed.error.message).toMatch(/egress policy: .*127\.0\.0\.2/);
    expect(insideHits).toBe(0);
    await eventually(async () => ours().length === 0, 5000);
  });
});
