import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseEgressAllow, systemResolver, type Resolver } from '../../src/egress/index.js';
import { EgressProxy, egressTarget } from '../../src/egress/proxy.js';
import { hlsRules, inputArgs } from '../../src/media/ffmpeg/input.js';
import { runEgress } from '../../src/worker/egress.js';
import { HTTP_PROTOCOLS } from '../../src/rooms/model.js';
import { createLogger } from '../../src/log.js';

/**
 * The egress proxy's decisions (which request goes where) and its behaviour on loopback stand-ins: 127.0.0.1 is
 * allow-listed (as in the test stacks), 127.0.0.2 is loopback too and not allowed.
 */
const allow127 = parseEgressAllow('127.0.0.1');
const none = parseEgressAllow('');
const dnsOf =
  (names: Record<string, string[]>): Resolver =>
  async (host) =>
    names[host] ?? systemResolver(host);
const silent = createLogger('silent', 'test');

async function refused(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('not refused');
}

describe('egress proxy decisions', () => {
  it.each([
    ['http://169.254.169.254/latest/meta-data/', false],
    ['http://2852039166/', false],
    ['http://0xa9fea9fe/', false],
    ['http://[::ffff:127.0.0.2]:8080/x', false],
    ['http://10.0.0.5:8080/seg.ts', false],
    ['169.254.169.254:443', true],
    ['2852039166:443', true],
    ['[::1]:443', true],
    ['[fd00:ec2::254]:443', true],
    ['127.0.0.2:443', true],
  ])('%s (CONNECT: %s) is refused with 50002 naming host and port, not the path', async (target, connect) => {
    const message = await refused(egressTarget(target, connect, allow127));
    expect(message).toMatch(/internal address/);
    expect(message).not.toContain('meta-data');
    expect(message).not.toContain('seg.ts');
  });

  it('a name is resolved once and refused when any of its addresses is internal', async () => {
    let lookups = 0;
    const resolve: Resolver = async (h) => {
      lookups++;
      return h === 'cams.example' ? ['93.184.216.34', '10.0.0.7'] : [];
    };
    expect(await refused(egressTarget('http://cams.example/a.m3u8', false, none, resolve))).toMatch(/10\.0\.0\.7/);
    expect(lookups).toBe(1);
    expect(await refused(egressTarget('nowhere.example:443', true, none, resolve))).toMatch(/does not resolve/);
  });

  it('public addresses, allow-listed addresses and allow-listed names pass, with the address to connect to', async () => {
    const resolve = dnsOf({ 'cams.example': ['93.184.216.34'], 'cams.internal': ['10.1.2.3'] });
    expect(await egressTarget('http://cams.example/a.m3u8', false, none, resolve)).toEqual({
      host: 'cams.example',
      port: 80,
      address: '93.184.216.34',
    });
    expect(await egressTarget('cams.example:443', true, none, resolve)).toMatchObject({ port: 443 });
    expect(await egressTarget('127.0.0.1:8443', true, allow127)).toMatchObject({ address: '127.0.0.1' });
    expect(
      await egressTarget('http://cams.internal:81/x', false, parseEgressAllow('cams.internal'), resolve),
    ).toMatchObject({ address: '10.1.2.3', port: 81 });
  });

  it.each([
    ['/relative/path', false],
    ['https://93.184.216.34/', false],
    ['ftp://93.184.216.34/', false],
    ['93.184.216.34', true],
    ['93.184.216.34:443/x', true],
  ])('a request target that is not http://… or CONNECT host:port is refused: %s', async (target, connect) => {
    expect(await refused(egressTarget(target, connect, none))).toMatch(/egress proxy/);
  });
});

describe('egress proxy on loopback', () => {
  let proxy: EgressProxy;
  let inside: http.Server;
  let origin: http.Server;
  let insideHits = 0;
  let originHosts: string[] = [];
  const port = (s: http.Server | net.Server) => (s.address() as AddressInfo).port;
  const listen = (s: http.Server, host: string) => new Promise<void>((r) => s.listen(0, host, () => r()));

  beforeAll(async () => {
    inside = http.createServer((_req, res) => {
      insideHits++;
      res.end('internal secret');
    });
    origin = http.createServer((req, res) => {
      originHosts.push(req.headers.host ?? '');
      if (req.url === '/redirect') res.writeHead(302, { location: `http://127.0.0.2:${port(inside)}/` }).end();
      else res.end(`origin ${req.method} ${req.url}`);
    });
    await listen(inside, '127.0.0.2');
    await listen(origin, '127.0.0.1');
  });
  afterEach(async () => {
    await proxy?.close();
    insideHits = 0;
    originHosts = [];
  });
  afterAll(async () => {
    await new Promise((r) => inside.close(r));
    await new Promise((r) => origin.close(r));
  });

  /** One request through the proxy in absolute form. */
  function viaProxy(url: string): Promise<{ status: number; body: string }> {
    const p = new URL(proxy.url);
    return new Promise((resolve, reject) => {
      http
        .get({ host: p.hostname, port: p.port, path: url, headers: { host: new URL(url).host } }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        })
        .on('error', reject);
    });
  }

  /** A CONNECT through the proxy; resolves with the status line and, when tunnelled, what `send` got back. */
  function connect(target: string, send?: string): Promise<{ status: number; reply: string }> {
    const p = new URL(proxy.url);
    return new Promise((resolve, reject) => {
      const req = http.request({ host: p.hostname, port: p.port, method: 'CONNECT', path: target });
      req.on('connect', (res, socket) => {
        if (res.statusCode !== 200 || !send) {
          socket.destroy();
          return resolve({ status: res.statusCode!, reply: '' });
        }
        let reply = '';
        socket.on('data', (d: Buffer) => (reply += d.toString()));
        socket.on('end', () => resolve({ status: 200, reply }));
        socket.write(send);
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('plain HTTP to an allowed stand-in passes with its Host header; to 127.0.0.2 it is refused (403) unseen', async () => {
    proxy = await EgressProxy.start({ policy: allow127, logger: silent });
    const ok = await viaProxy(`http://127.0.0.1:${port(origin)}/seg0.ts?x=1`);
    expect(ok).toEqual({ status: 200, body: 'origin GET /seg0.ts?x=1' });
    expect(originHosts).toEqual([`127.0.0.1:${port(origin)}`]);
    const no = await viaProxy(`http://127.0.0.2:${port(inside)}/seg1.ts`);
    expect(no.status).toBe(403);
    expect(no.body).toMatch(/127\.0\.0\.2.*internal address.*RELAY_UPSTREAM_ALLOW/);
    expect(insideHits).toBe(0);
    expect(proxy.requests).toBe(1);
    expect(proxy.takeRefusal()).toMatch(/127\.0\.0\.2/);
    expect(proxy.takeRefusal()).toBeNull();
  });

  it('a redirect is handed back to the client, whose next request is checked again: the internal address is never reached', async () => {
    proxy = await EgressProxy.start({ policy: allow127, logger: silent });
    const r = await viaProxy(`http://127.0.0.1:${port(origin)}/redirect`);
    expect(r.status).toBe(302);
    expect((await viaProxy(`http://127.0.0.2:${port(inside)}/`)).status).toBe(403);
    expect(insideHits).toBe(0);
  });

  it('CONNECT tunnels to an allowed address and is refused (403) for 127.0.0.2 and the metadata address', async () => {
    const echo = net.createServer((s) => s.once('data', (d) => s.end(`echo ${d.toString()}`)));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
    try {
      proxy = await EgressProxy.start({ policy: allow127, logger: silent });
      expect(await connect(`127.0.0.1:${port(echo)}`, 'hello')).toEqual({ status: 200, reply: 'echo hello' });
      expect((await connect(`127.0.0.2:${port(inside)}`)).status).toBe(403);
      expect((await connect('169.254.169.254:443')).status).toBe(403);
      expect(insideHits).toBe(0);
      expect(proxy.refusals).toHaveLength(2);
    } finally {
      echo.close();
    }
  });

  it('connects to the address it checked, never to a second DNS answer (rebinding)', async () => {
    let lookups = 0;
    // first answer: the allowed stand-in; any later answer would be the internal one
    const rebinding: Resolver = async () => (lookups++ === 0 ? ['127.0.0.1'] : ['127.0.0.2']);
    proxy = await EgressProxy.start({ policy: allow127, logger: silent, resolve: rebinding });
    const r = await viaProxy(`http://rebind.example:${port(origin)}/x`);
    expect(r).toEqual({ status: 200, body: 'origin GET /x' });
    expect(originHosts).toEqual([`rebind.example:${port(origin)}`]);
    expect(lookups).toBe(1);
    expect(insideHits).toBe(0);
  });
});

describe('a run of an http(s) upstream', () => {
  const plan = (url: string) => ({
    sources: [{ member: 'a/camera', url, protocolWhitelist: 'http,tcp' }],
    tiers: [{ sinks: [{ kind: 'rtmp' as const, url: 'rtmp://m/live/ch' }] }],
  });
  const config = { egress: allow127, ffmpegPath: '/nonexistent/ffmpeg' };

  it('goes through its own proxy (option and environment), with the HTTP protocols only and HLS rules for playlists', async () => {
    const run = await runEgress(plan('https://cams.example/live/index.m3u8?t=1'), config, silent);
    try {
      const src = run.plan.sources[0]!;
      expect(src.protocolWhitelist).toBe(HTTP_PROTOCOLS);
      expect(HTTP_PROTOCOLS.split(',')).not.toEqual(
        expect.arrayContaining([expect.stringMatching(/^(file|concat|subfile|data|hls|pipe)$/)]),
      );
      expect(src.httpProxy).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(run.env).toEqual({ http_proxy: src.httpProxy, no_proxy: '', NO_PROXY: '' });
      expect(src.hls).toEqual({}); // this ffmpeg cannot be asked: no options it may lack
      const args = inputArgs(src);
      expect(args.join(' ')).toContain(`-http_proxy ${src.httpProxy} -f hls`);
      expect(run.takeRefusal()).toBeNull();
    } finally {
      await run.close();
      await run.close();
    }
  });

  it('an RTMP upstream or a non-playlist HTTP URL is not read as HLS; RTMP needs no proxy', async () => {
    const rtmp = await runEgress(plan('rtmp://cams.example/live/x'), config, silent);
    expect(rtmp.plan.sources[0]).toEqual(plan('rtmp://cams.example/live/x').sources[0]);
    expect(rtmp.env).toEqual({});
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
