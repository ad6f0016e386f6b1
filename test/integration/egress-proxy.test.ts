import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { eventually, FFMPEG, ffmpegsMentioning, fixture, startStack, type Stack } from '../helpers/stack.js';
import { startRtspStandIn, type RtspStandIn } from '../helpers/rtsp-standin.js';

/**
 * Everything ffmpeg fetches of an http(s) upstream goes through the run's egress gateway, and an rtsp upstream
 * through the run's RTSP relay, both applying the egress policy per request or connection. The stack allows 127.0.0.1
 * (RELAY_UPSTREAM_ALLOW), where the tenant's origin stand-ins listen; the "internal" stand-ins listen on 127.0.0.2,
 * loopback too but not allowed, and must never see a connection. The https origin's self-signed certificate is
 * trusted by the worker through NODE_EXTRA_CA_CERTS (tests only: the gateway verifies certificates).
 */
let stack: Stack;
let dir: string;
const servers: net.Server[] = [];
let insideConnections = 0;
let keyRequests = 0;
const flipped = new Set<string>();
const liveStartedAt = new Map<string, number>();
let origin: string;
let originTls: string;
let insideHttp: string;
let insideHttps: string;
let insideTcp: string;
let rtspMedia: RtspStandIn;
let rtspRedirect: RtspStandIn;

const SEGMENTS = 15;
const playlist = (seqs: number[], base: string, end: boolean, key?: string) =>
  [
    '#EXTM3U',
    '#EXT-X-VERSION:3',
    '#EXT-X-TARGETDURATION:2',
    `#EXT-X-MEDIA-SEQUENCE:${seqs[0]}`,
    ...(key ? [`#EXT-X-KEY:METHOD=AES-128,URI="${key}",IV=0x${'0'.repeat(31)}1`] : []),
    ...seqs.flatMap((n) => ['#EXTINF:2.000000,', `${base}seg${n}.ts`]),
    ...(end ? ['#EXT-X-ENDLIST'] : []),
    '',
  ].join('\n');

/** The tenant's origin: playlists (some naming internal URIs), plain and AES-128 segments, a redirect. */
function originHandler(inside: () => string, self: () => string): http.RequestListener {
  return (req, res) => {
    const url = req.url ?? '/';
    const send = (body: string | Buffer, type = 'application/vnd.apple.mpegurl') =>
      res.writeHead(200, { 'content-type': type }).end(body);
    const all = [...Array(SEGMENTS).keys()];
    if (url === '/abs/index.m3u8') return send(playlist([0, 1, 2], `${inside()}/vod/`, true));
    if (url === '/redirect.m3u8') return res.writeHead(302, { location: `${inside()}/vod/index.m3u8` }).end();
    // a segment of a scheme ffmpeg's hls demuxer takes (its name starts with "http"): CONNECT to 127.0.0.2 on main
    if (url === '/httpproxy.m3u8')
      return send(playlist([0], `httpproxy://${insideTcp.slice('tcp://'.length)}/127.0.0.1:80/`, true), 'text/plain');
    if (url === '/aes/index.m3u8') return send(playlist(all, '/aes/', true, `${self()}/aes/key.bin`));
    if (url === '/aes-inside/index.m3u8') return send(playlist(all, '/aes/', true, `${inside()}/aes/key.bin`));
    if (url === '/aes/key.bin') {
      keyRequests++;
      return send(fs.readFileSync(path.join(dir, 'aes', 'key.bin')), 'application/octet-stream');
    }
    const live = /^\/live\/(\w+)\/index\.m3u8$/.exec(url)?.[1];
    if (live) {
      // a live window of 3 segments moving with time; once flipped, its segments are named on the internal stand-in
      const at = liveStartedAt.get(live) ?? liveStartedAt.set(live, Date.now()).get(live)!;
      const first = Math.min(Math.floor((Date.now() - at) / 2000), SEGMENTS - 3);
      return send(playlist([first, first + 1, first + 2], flipped.has(live) ? `${inside()}/vod/` : '/vod/', false));
    }
    const seg = /^\/(vod|aes)\/seg(\d+)\.ts$/.exec(url);
    if (seg) return send(fs.readFileSync(path.join(dir, seg[1]!, `seg${seg[2]}.ts`)), 'video/mp2t');
    res.writeHead(404).end();
  };
}

async function listen(s: net.Server, host: string, scheme: string): Promise<string> {
  servers.push(s);
  if (host === '127.0.0.2') s.on('connection', () => insideConnections++);
  await new Promise<void>((r) => s.listen(0, host, () => r()));
  return `${scheme}://${host}:${(s.address() as AddressInfo).port}`;
}

/** 30 s of bob's camera as 2 s HLS segments, video only, plain or AES-128 encrypted. */
function segments(sub: string, keyInfo?: string): void {
  fs.mkdirSync(path.join(dir, sub));
  execFileSync(
    FFMPEG,
    [
      ...['-hide_banner', '-loglevel', 'error', '-stream_loop', '-1', '-i', fixture('bob-camera.mp4')],
      ...['-t', String(SEGMENTS * 2), '-an', '-c', 'copy', '-f', 'hls', '-hls_time', '2', '-hls_list_size', '0'],
      ...(keyInfo ? ['-hls_key_info_file', keyInfo] : []),
      ...['-hls_segment_filename', path.join(dir, sub, 'seg%d.ts'), path.join(dir, sub, 'all.m3u8')],
    ],
    { stdio: 'ignore' },
  );
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-egress-'));
  segments('vod');
  fs.mkdirSync(path.join(dir, 'keys'));
  const key = path.join(dir, 'keys', 'key.bin');
  fs.writeFileSync(key, Buffer.from('00112233445566778899aabbccddeeff', 'hex'));
  fs.writeFileSync(path.join(dir, 'keys', 'info'), `key.bin\n${key}\n${'0'.repeat(31)}1\n`);
  segments('aes', path.join(dir, 'keys', 'info'));
  fs.copyFileSync(key, path.join(dir, 'aes', 'key.bin'));
  execFileSync(
    'openssl',
    [
      ...['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1'],
      ...['-addext', 'subjectAltName=IP:127.0.0.1,IP:127.0.0.2'],
      ...['-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')],
    ],
    { stdio: 'ignore' },
  );
  const tls = { key: fs.readFileSync(path.join(dir, 'key.pem')), cert: fs.readFileSync(path.join(dir, 'cert.pem')) };
  const internal: http.RequestListener = (_req, res) => res.end('internal');
  insideHttp = await listen(http.createServer(internal), '127.0.0.2', 'http');
  insideHttps = await listen(https.createServer(tls, internal), '127.0.0.2', 'https');
  insideTcp = await listen(
    net.createServer((s) => s.destroy()),
    '127.0.0.2',
    'tcp',
  );
  origin = await listen(
    http.createServer(
      originHandler(
        () => insideHttp,
        () => origin,
      ),
    ),
    '127.0.0.1',
    'http',
  );
  originTls = await listen(
    https.createServer(
      tls,
      originHandler(
        () => insideHttps,
        () => originTls,
      ),
    ),
    '127.0.0.1',
    'https',
  );
  rtspMedia = await startRtspStandIn({ host: '127.0.0.1', media: fixture('bob-camera.mp4') });
  rtspRedirect = await startRtspStandIn({ host: '127.0.0.1', redirectTo: `rtsp://${insideTcp.slice(6)}/cam` });
  stack = await startStack({ workers: 0, env: { RELAY_STALL_MS: '3000' } });
  await stack.startWorker({ NODE_EXTRA_CA_CERTS: path.join(dir, 'cert.pem') });
});

// in every case: nothing of a run reached the internal stand-ins
afterEach(() => expect(insideConnections).toBe(0));

afterAll(async () => {
  await stack?.close();
  await rtspMedia?.close();
  await rtspRedirect?.close();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function register(roomId: number, userId: string, url: string): Promise<void> {
  const r = await stack.request('PUT', `/v1/rooms/${roomId}/upstreams`, { userId, srcType: 0, url });
  expect(r.body.code, JSON.stringify(r.body)).toBe(0);
}
const start = (roomId: number, userId: string) =>
  stack.request('POST', '/v1/push/start', { roomId, userId, srcType: 0, option: { encode: 5 } });
/** The relay ffmpegs of this stack (their output is its media server). */
const ours = () => ffmpegsMentioning(`:${stack.rtmpPort}/live/`);
const argvOf = (pid: number) => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
const after = (argv: string[], flag: string) => argv[argv.indexOf(flag) + 1];
const stop = async (id: string) => {
  await stack.request('POST', '/v1/push/stop', { channelIds: [id] });
  await eventually(async () => ours().length === 0);
};
const user = () => `u${Math.random().toString(36).slice(2, 8)}`;

describe('egress gateway: what an HLS upstream makes ffmpeg fetch', () => {
  it('an allowed HLS upstream over http and https goes live, ffmpeg speaking plain HTTP to the gateway only', async () => {
    for (const [name, url] of [
      ['plain', `${origin}/live/plain/index.m3u8`],
      ['tls', `${originTls}/live/tls/index.m3u8`],
    ] as const) {
      await register(7001, name, url);
      const r = await start(7001, name);
      expect(r.body.code, `${name}: ${JSON.stringify(r.body)}`).toBe(0);
      const pid = ours()[0]!;
      const argv = argvOf(pid);
      const environ = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      const gateway = after(argv, '-http_proxy')!;
      expect(gateway).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(after(argv, '-i')).toBe(`${gateway}/${url.replace('://', '/')}`);
      expect(environ).toContain(`http_proxy=${gateway}`);
      expect(after(argv, '-protocol_whitelist')).toBe('http,tcp,crypto');
      expect(argv.join(' ')).toContain('-f hls -allowed_extensions');
      await stop(r.body.channelId);
    }
    expect(insideConnections).toBe(0);
  });

  it('an AES-128 HLS upstream goes live: the key and its segments come through the gateway (crypto+http)', async () => {
    await register(7004, 'aes', `${origin}/aes/index.m3u8`);
    const r = await start(7004, 'aes');
    expect(r.body.code, JSON.stringify(r.body)).toBe(0);
    expect(keyRequests).toBeGreaterThan(0);
    await stop(r.body.channelId);
  });

  it.each([
    ['segments named on an internal address (http)', () => `${origin}/abs/index.m3u8`, /127\.0\.0\.2:\d+ points at/],
    [
      'segments named on an internal address (https)',
      () => `${originTls}/abs/index.m3u8`,
      /127\.0\.0\.2:\d+ points at/,
    ],
    ['an HTTP 302 redirect to an internal address', () => `${origin}/redirect.m3u8`, /127\.0\.0\.2:\d+ points at/],
    ['an httpproxy:// segment', () => `${origin}/httpproxy.m3u8`, /scheme httpproxy: \(to 127\.0\.0\.2:\d+\)/],
    ['an AES-128 key on an internal address', () => `${origin}/aes-inside/index.m3u8`, /127\.0\.0\.2:\d+ points at/],
  ])('%s: the start is refused with 50002 and the policy hint; nothing reaches 127.0.0.2', async (_n, url, why) => {
    const name = user();
    await register(7002, name, url()); // the upstream URL itself is on the allowed origin
    const r = await start(7002, name);
    expect(r.status, JSON.stringify(r.body)).toBe(400);
    expect(r.body.code).toBe(50002);
    expect(r.body.message).toMatch(/^upstream refused by the egress policy: /);
    expect(r.body.message).toMatch(why);
    expect(r.body.hint).toContain('RELAY_UPSTREAM_ALLOW');
    expect(insideConnections).toBe(0);
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
    expect(failed.error).toMatchObject({ code: 50002, hint: expect.stringContaining('RELAY_UPSTREAM_ALLOW') });
    expect(failed.error.message).toMatch(/egress policy: .*127\.0\.0\.2/);
    expect(insideConnections).toBe(0);
    await eventually(async () => ours().length === 0, 5000);
  });
});

describe('RTSP relay', () => {
  it('an RTSP upstream goes live through the relay, RTP interleaved over TCP', async () => {
    await register(7005, 'cam', rtspMedia.url);
    const r = await start(7005, 'cam');
    expect(r.body.code, JSON.stringify(r.body)).toBe(0);
    const argv = argvOf(ours()[0]!);
    expect(after(argv, '-protocol_whitelist')).toBe('rtsp,tcp');
    expect(after(argv, '-rtsp_transport')).toBe('tcp');
    expect(after(argv, '-i')).toMatch(/^rtsp:\/\/127\.0\.0\.1:\d+\/cam$/);
    expect(after(argv, '-i')).not.toBe(rtspMedia.url); // the relay's port, not the server's
    expect(rtspMedia.requests.map((q) => q.split(' ')[0])).toEqual(
      expect.arrayContaining(['DESCRIBE', 'SETUP', 'PLAY']),
    );
    await stop(r.body.channelId);
  });

  it('a 302 to an internal address refuses the start with 50002 "redirect to … refused"; 127.0.0.2 sees nothing', async () => {
    await register(7006, 'cam', rtspRedirect.url);
    const r = await start(7006, 'cam');
    expect(r.status, JSON.stringify(r.body)).toBe(400);
    expect(r.body.code).toBe(50002);
    expect(r.body.message).toMatch(/egress policy: redirect to rtsp:\/\/127\.0\.0\.2:\d+ refused \(.*answered 302/);
    expect(r.body.hint).toContain('RELAY_UPSTREAM_ALLOW');
    expect(rtspRedirect.requests.length).toBeGreaterThan(0);
    expect(insideConnections).toBe(0);
    await eventually(async () => ours().length === 0, 5000);
  });
});
