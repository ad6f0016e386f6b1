import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseEgressAllow, type Resolver } from '../../src/egress/index.js';
import { EgressGateway } from '../../src/egress/gateway.js';
import { hlsRules, inputArgs, rtspTimeoutOption } from '../../src/media/ffmpeg/input.js';
import { runEgress } from '../../src/worker/egress.js';
import { HTTP_PROTOCOLS, RTSP_PROTOCOLS } from '../../src/rooms/model.js';
import { createLogger } from '../../src/log.js';

/**
 * The egress gateway on loopback stand-ins: 127.0.0.1 is allow-listed (as in the test stacks), 127.0.0.2 is loopback
 * too and not allowed, and must never see a request.
 */
const allow127 = parseEgressAllow('127.0.0.1');
const silent = createLogger('silent', 'test');

let gateway: EgressGateway;
let inside: http.Server;
let origin: http.Server;
let insideHits = 0;
let seen: { url: string; host: string }[] = [];
let endless: http.ServerResponse | null = null;
const port = (s: net.Server) => (s.address() as AddressInfo).port;
const listen = (s: net.Server, host: string) => new Promise<void>((r) => s.listen(0, host, () => r()));
const at = () => `127.0.0.1:${port(origin)}`;
const inAt = () => `127.0.0.2:${port(inside)}`;

beforeAll(async () => {
  inside = http.createServer((_req, res) => {
    insideHits++;
    res.end('internal secret');
  });
  origin = http.createServer((req, res) => {
    seen.push({ url: req.url ?? '', host: req.headers.host ?? '' });
    const list = (body: string, type = 'application/vnd.apple.mpegurl') =>
      res.writeHead(200, { 'content-type': type }).end(body);
    switch (req.url) {
      case '/redirect':
        return res.writeHead(302, { location: `http://${inAt()}/x` }).end();
      case '/relative-redirect':
        return res.writeHead(301, { location: '../b/c.m3u8?k=1' }).end();
      case '/proxy-redirect':
        return res.writeHead(302, { location: `httpproxy://${inAt()}/127.0.0.1:80` }).end();
      case '/abs.m3u8':
        return list(`#EXTM3U\n#EXTINF:2,\nhttp://${inAt()}/seg0.ts\n`);
      case '/plain.txt':
        return list(`#EXTM3U\n#EXTINF:2,\nseg0.ts\n`, 'text/plain');
      case '/gzip':
        res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'gzip' });
        return res.end(zlib.gzipSync(`#EXTM3U\n#EXTINF:2,\nhttp://${inAt()}/seg0.ts\n`));
      case '/proxyseg.m3u8':
        return list(`#EXTM3U\n#EXTINF:2,\nhttpproxy://${inAt()}/127.0.0.1:80\n`);
      case '/cookie':
        return res.writeHead(200, { 'set-cookie': 's=1; Domain=x.example; Path=/v' }).end();
      case '/endless':
        endless = res;
        res.writeHead(200, { 'content-type': 'video/x-flv' });
        return void res.write(Buffer.from('FLV\x01\x05'));
      default:
        res.end(`origin ${req.method} ${req.url}`);
    }
  });
  await listen(inside, '127.0.0.2');
  await listen(origin, '127.0.0.1');
});
afterEach(async () => {
  endless?.end();
  endless = null;
  await gateway?.close();
  insideHits = 0;
  seen = [];
});
afterAll(async () => {
  await new Promise((r) => inside.close(r));
  await new Promise((r) => origin.close(r));
});

/** One GET to the gateway: `target` in gateway form (a path) or absolute form (as a forward proxy). */
function get(target: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const g = new URL(gateway.url);
  return new Promise((resolve, reject) => {
    http
      .get({ host: g.hostname, port: g.port, path: target, agent: false }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      })
      .on('error', reject);
  });
}
const via = (url: string) => get(new URL(gateway.gatewayUrl(url)).pathname + new URL(url).search);

describe('egress gateway', () => {
  it('fetches an allowed origin named in gateway form, with its Host; refuses 127.0.0.2 (403) unseen', async () => {
    gateway = await EgressGateway.start({ policy: allow127, logger: silent });
    expect(await via(`http://${at()}/seg0.ts?x=1`)).toMatchObject({ status: 200, body: 'origin GET /seg0.ts?x=1' });
    expect(seen).toEqual([{ url: '/seg0.ts?x=1', host: at() }]);
    const no = await via(`http://${inAt()}/seg1.ts`);
    expect(no.status).toBe(403);
    expect(no.headers['x-relay-egress']).toBe('refused');
    expect(no.body).toMatch(new RegExp(`${inAt()} points at an internal address.*RELAY_UPSTREAM_ALLOW`));
    expect(no.body).not.toContain('seg1');
    expect(insideHits).toBe(0);
    expect(gateway.requests).toBe(1);
    expect(gateway.takeRefusal()).toEqual({
      reason: expect.stringMatching(/127\.0\.0\.2/),
      hint: expect.stringContaining('RELAY_UPSTREAM_ALLOW'),
    });
    expect(gateway.takeRefusal()).toBeNull();
  });

  it('as a forward proxy (absolute form) it applies the same policy, and reads its own URLs as gateway form', async () => {
    gateway = await EgressGateway.start({ policy: allow127, logger: silent });
    expect((await get(`http://${inAt()}/x`)).status).toBe(403);
    expect((await get(`http://${at()}/y`)).body).toBe('origin GET /y');
    expect((await get(`${gateway.gatewayUrl(`http://${at()}/z`)}`)).body).toBe('origin GET /z');
    expect((await get('/ftp/127.0.0.1/x')).status).toBe(400);
    expect(insideHits).toBe(0);
  });

  it('writes redirects into gateway form (the next hop is checked in turn) and refuses other schemes', async () => {
    gateway = await EgressGateway.start({ policy: allow127, logger: silent });
    const r = await via(`http://${at()}/redirect`);
    expect(r.status).toBe(302);
    expect(r.headers.location).toBe(`${gateway.url}/http/${inAt()}/x`);
    expect((await get(r.headers.location!)).status).toBe(403);
    const rel = await via(`http://${at()}/relative-redirect`);
    expect(rel.headers.location).toBe(`${gateway.url}/http/${at()}/b/c.m3u8?k=1`);
    const proxy = await via(`http://${at()}/proxy-redirect`);
    expect(proxy.status).toBe(403);
    expect(proxy.body).toMatch(/redirected to a httpproxy: URL, which is refused/);
    expect(insideHits).toBe(0);
  });

  it('rewrites playlists (by type, by #EXTM3U, gzip-encoded) and refuses one naming another scheme', async () => {
    gateway = await EgressGateway.start({ policy: allow127, logger: silent });
    const abs = await via(`http://${at()}/abs.m3u8`);
    expect(abs.body).toBe(`#EXTM3U\n#EXTINF:2,\n${gateway.url}/http/${inAt()}/seg0.ts\n`);
    expect(Number(abs.headers['content-length'])).toBe(abs.body.length);
    expect((await via(`http://${at()}/plain.txt`)).body).toContain(`${gateway.url}/http/${at()}/seg0.ts`);
    const gz = await via(`http://${at()}/gzip`);
    expect(gz.headers['content-encoding']).toBeUndefined();
    expect(gz.body).toContain(`${gateway.url}/http/${inAt()}/seg0.ts`);
    const p = await via(`http://${at()}/proxyseg.m3u8`);
    expect(p.status).toBe(403);
    expect(p.body).toMatch(/URI of scheme httpproxy: \(to 127\.0\.0\.2:\d+\), which is refused/);
    expect(insideHits).toBe(0);
  });

  it('scopes cookies to the origin, and streams a body that never ends', async () => {
    gateway = await EgressGateway.start({ policy: allow127, logger: silent });
    expect((await via(`http://${at()}/cookie`)).headers['set-cookie']).toEqual([`s=1; Path=/http/${at()}/v`]);
    const g = new URL(gateway.url);
    const first = await new Promise<string>((resolve, reject) => {
      const req = http.get({ host: g.hostname, port: g.port, path: `/http/${at()}/endless`, agent: false }, (res) =>
        res.once('data', (d: Buffer) => {
          resolve(d.toString('latin1'));
          req.destroy();
        }),
      );
      req.on('error', reject);
    });
    expect(first).toBe('FLV\x01\x05');
  });

  it('connects to the address it checked, never to a second DNS answer (rebinding)', async () => {
    let lookups = 0;
    const rebinding: Resolver = async () => (lookups++ === 0 ? ['127.0.0.1'] : ['127.0.0.2']);
    gateway = await EgressGateway.start({ policy: allow127, logger: silent, resolve: rebinding });
    expect((await via(`http://rebind.example:${port(origin)}/x`)).body).toBe('origin GET /x');
    expect(seen).toEqual([{ url: '/x', host: `rebind.example:${port(origin)}` }]);
    expect(lookups).toBe(1);
    expect(insideHits).toBe(0);
  });

  it("verifies an https origin's certificate (a self-signed one fails with 502, never unchecked)", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-tls-'));
    execFileSync(
      'openssl',
      [
        ...['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1'],
        ...['-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', `${dir}/k.pem`, '-out', `${dir}/c.pem`],
      ],
      { stdio: 'ignore' },
    );
    const tls = https.createServer({ key: fs.readFileSync(`${dir}/k.pem`), cert: fs.readFileSync(`${dir}/c.pem`) });
    tls.on('request', (_q, s) => s.end('secret'));
    await listen(tls, '127.0.0.1');
    try {
      gateway = await EgressGateway.start({ policy: allow127, logger: silent });
      const r = await via(`https://127.0.0.1:${port(tls)}/x`);
      expect(r.status).toBe(502);
      expect(r.body).toMatch(/self.signed/i);
    } finally {
      tls.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a run of an http(s) or rtsp(s) upstream', () => {
  const plan = (url: string) => ({
    sources: [{ member: 'a/camera', url, protocolWhitelist: 'http,tcp' }],
    tiers: [{ sinks: [{ kind: 'rtmp' as const, url: 'rtmp://m/live/ch' }] }],
  });
  const config = { egress: allow127, ffmpegPath: '/nonexistent/ffmpeg' };

  it('reads an http(s) URL in gateway form, plain HTTP only, every HTTP request to the gateway', async () => {
    const run = await runEgress(plan('https://cams.example/live/index.m3u8?t=1'), config, silent);
    try {
      const src = run.plan.sources[0]!;
      expect(src.protocolWhitelist).toBe(HTTP_PROTOCOLS);
      expect(HTTP_PROTOCOLS).toBe('http,tcp,crypto'); // no https, tls, httpproxy, file, concat, subfile, data, hls
      expect(src.httpProxy).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(src.url).toBe(`${src.httpProxy}/https/cams.example/live/index.m3u8?t=1`);
      expect(run.env).toEqual({ http_proxy: src.httpProxy, no_proxy: '', NO_PROXY: '' });
      expect(src.hls).toEqual({}); // this ffmpeg cannot be asked: no options it may lack
      expect(inputArgs(src).join(' ')).toContain(`-http_proxy ${src.httpProxy} -f hls`);
      expect(run.takeRefusal()).toBeNull();
    } finally {
      await run.close();
      await run.close();
    }
  });

  it('reads an rtsp(s) URL through its relay over TCP; rtmp passes unchanged; a non-playlist URL is not HLS', async () => {
    const rtsp = await runEgress(plan('rtsps://u:p@cams.example:8322/cam?x=1'), config, silent);
    const src = rtsp.plan.sources[0]!;
    expect(src).toMatchObject({ protocolWhitelist: RTSP_PROTOCOLS, rtsp: {} }); // this ffmpeg cannot be asked
    expect(src.url).toMatch(/^rtsp:\/\/u:p@127\.0\.0\.1:\d+\/cam\?x=1$/);
    expect(inputArgs(src).join(' ')).toContain('-rtsp_transport tcp');
    expect(inputArgs(src)).not.toContain('-rw_timeout'); // the rtsp demuxer has none: ffmpeg would refuse to start
    // its socket timeout is -stimeout up to ffmpeg 4.x (where -timeout means listen), -timeout from 5.0 on
    expect(rtspTimeoutOption(new Set(['timeout', 'stimeout', 'listen_timeout']))).toBe('stimeout');
    expect(rtspTimeoutOption(new Set(['timeout', 'listen_timeout']))).toBe('timeout');
    expect(inputArgs({ ...src, rtsp: { timeoutOption: 'stimeout' } }).join(' ')).toContain('-stimeout 5000000');
    expect(rtsp.env).toEqual({});
    await rtsp.close();
    const rtmp = await runEgress(plan('rtmp://cams.example/live/x'), config, silent);
    expect(rtmp.plan.sources[0]).toEqual(plan('rtmp://cams.example/live/x').sources[0]);
    const flv = await runEgress(plan('http://cams.example/live/x.flv'), config, silent);
    expect(flv.plan.sources[0]!.hls).toBeUndefined();
    expect(inputArgs(flv.plan.sources[0]!)).not.toContain('-f');
    await flv.close();
  });

  it('segment extension rules use only the options the hls demuxer has', () => {
    expect(hlsRules(new Set(['allowed_extensions']))).toEqual({ allowedExtensions: expect.stringContaining('ts') });
    expect(hlsRules(new Set(['allowed_extensions', 'allowed_segment_extensions']))).toMatchObject({
      allowedSegmentExtensions: expect.not.stringContaining('m3u8'),
    });
    expect(hlsRules(new Set())).toEqual({});
    const args = inputArgs({
      member: 'a/camera',
      url: 'http://h/i.m3u8',
      protocolWhitelist: HTTP_PROTOCOLS,
      hls: { allowedSegmentExtensions: 'ts' },
    });
    expect(args.join(' ')).toContain('-f hls -allowed_segment_extensions ts -extension_picky 1');
  });
});
