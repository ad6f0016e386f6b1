/**
 * Hosts for real: three hosts on one machine, network namespaces joined by veth pairs (test/helpers/netns.ts), no
 * route to the machine's own namespace. Host A runs Redis, the API and the caching edge (nginx with
 * edge/relay-edge.conf.template, origin `media.relay:18000`, a name that A's /etc/hosts gives both media hosts); hosts B
 * and C each run a media node and a worker on the same ports, the data folder shared as storage across hosts would be.
 * Channels spread over B and C; every process of B killed with SIGKILL moves B's channels to C, and a viewer on A plays
 * again on the URL it had (the edge's), HLS going on with its numbering. Every request of the test is made from A.
 * Skipped, saying why, where the kernel refuses network namespaces (or a tool they need is missing).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorizationFor } from '../../src/auth/index.js';
import { DEV_SDK_APP_ID } from '../../src/tenants/apps.js';
import type { NodeBeat } from '../../src/cluster/nodes.js';
import { FIXTURE_DIR } from '../../fixtures/make.js';
import { HostFetch, Hosts, netnsRefused, which, type Host, type HostProc, type HostRequest } from '../helpers/netns.js';
import { nginxMissing, writeEdgeConf } from '../helpers/nginx-edge.js';
import { NGINX } from '../helpers/nginx-rtmp.js';
import { eventually, FFMPEG, ffmpegsMentioning, fixture } from '../helpers/stack.js';

const missing =
  netnsRefused() ??
  nginxMissing() ??
  ['redis-server', 'redis-cli'].filter((c) => !which(c)).map((c) => `${c} missing (apt-get install redis-server)`)[0] ??
  null;
if (missing) console.warn(`SKIP hosts-netns: ${missing}`);

const EDGE_PORT = 8080;
const API_PORT = 8090;
const MEDIA_HTTP = 18000;
const MEDIA_RTMP = 11935;
const PREFIX = 'hosts';

let hosts: Hosts;
let A: Host, B: Host, C: Host;
let dataDir: string;
let edgeDir: string;
let auth: string;
/** The processes started on B (its media node and its worker). */
const onHostB: HostProc[] = [];
let workerC: HostProc;
let httpA: HostFetch;

/** A request made from A (by its HTTP client: the test's own namespace has no route to the hosts). */
const fromA = (url: string, req: HostRequest = {}, timeoutMs = 10_000) => httpA.request(url, req, timeoutMs);

/** A call of the control-plane API (on A), made from A. */
async function api(method: string, route: string, body?: unknown): Promise<any> {
  const headers: Record<string, string> = { authorization: auth };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const a = await fromA(`http://${A.addr}:${API_PORT}${route}`, {
    method,
    headers,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  if (a.error) throw new Error(`${method} ${route}: ${a.error}`);
  return JSON.parse(a.text);
}

/** The media nodes' beats, read from A's Redis. */
async function beats(): Promise<NodeBeat[]> {
  const r = await hosts.exec('A', 'redis-cli', ['-h', A.addr, '--raw', 'hvals', `${PREFIX}:media-nodes`]);
  return r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as NodeBeat);
}

/** Whether a viewer on A (ffmpeg, following redirects) decodes a video frame of `url` within `timeoutMs`. */
async function viewerDecodes(url: string, timeoutMs = 8000): Promise<boolean> {
  const args = ['-hide_banner', '-v', 'error', '-rw_timeout', String(timeoutMs * 1000), '-i', url];
  const r = await hosts.exec(
    'A',
    FFMPEG,
    [...args, '-map', '0:v:0', '-frames:v', '1', '-f', 'framecrc', '-'],
    timeoutMs,
  );
  return r.code === 0 && r.stdout.split('\n').some((l) => l.trim() !== '' && !l.startsWith('#'));
}

interface Started {
  channelId: string;
  urls: { type: number; rateType: number | null; playUrl: string }[];
}
const urlOf = (c: Started, type: number) => c.urls.find((u) => u.type === type)!.playUrl;
const recordOf = async (id: string) => (await api('GET', `/v1/push/${id}`)).channel;

beforeAll(async () => {
  if (missing) return;
  hosts = Hosts.create(['A', 'B', 'C']);
  ({ A, B, C } = hosts.hosts as Record<'A' | 'B' | 'C', Host>);
  // in A, the media hosts' one name: nginx makes an upstream of every address it resolves to
  hosts.writeEtcHosts('A', [
    [B.addr, 'media.relay'],
    [C.addr, 'media.relay'],
  ]);
  httpA = await HostFetch.start(hosts, 'A');
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-hosts-'));
  edgeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-hosts-edge-'));
  const secretKey = crypto.randomBytes(16).toString('hex');
  auth = authorizationFor({ sdkAppId: DEV_SDK_APP_ID, secretKey });
  // a private Redis on A's address (protected mode off: its clients are on B and C, in no network but these hosts')
  const redisArgs = ['--bind', A.addr, '--port', '6379', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'];
  await hosts.spawn('A', 'redis', 'redis-server', redisArgs, { ready: /Ready to accept connections/ });
  // the settings every process of the cluster shares; each host adds its own addresses
  const cluster = {
    REDIS_URL: `redis://${A.addr}:6379`,
    RELAY_REDIS_PREFIX: PREFIX,
    RELAY_DATA_DIR: dataDir,
    RELAY_FILE_UPSTREAM_DIR: FIXTURE_DIR,
    RELAY_PUBLIC_HOST: A.addr,
    RELAY_MIN_FREE_MB: '16',
    RELAY_START_RATE_LIMIT_MS: '0',
    // 4 channels a node: B and C take 2 each, and C all 4 once B is gone
    RELAY_NODE_MAX_CHANNELS: '4',
    RELAY_LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'info',
  };
  // the host's own media HTTP and RTMP ports: the media node listens there, the worker next to it is set alike
  const onHost = { ...cluster, RELAY_HTTP_PORT: String(MEDIA_HTTP), RELAY_RTMP_PORT: String(MEDIA_RTMP) };
  const media = (h: Host) =>
    hosts.node(
      h.label,
      `media${h.label}`,
      'cmd/media.ts',
      {
        ...onHost,
        RELAY_BIND: '0.0.0.0',
        RELAY_NODE_ID: `host${h.label}`,
        // workers and players (here: on A) reach the node at its own address
        RELAY_NODE_HOST: h.addr,
        RELAY_NODE_PUBLIC_HOST: h.addr,
      },
      /MEDIA READY/,
    );
  const worker = (h: Host) =>
    hosts.node(
      h.label,
      `worker${h.label}`,
      'cmd/worker.ts',
      { ...onHost, RELAY_MEDIA_INTERNAL_HOST: h.addr },
      /WORKER READY/,
    );
  await Promise.all([
    // the API's HTTP play URLs name the cluster's front: the edge on A
    hosts.node(
      'A',
      'api',
      'cmd/api.ts',
      {
        ...cluster,
        RELAY_BIND: A.addr,
        RELAY_API_PORT: String(API_PORT),
        RELAY_HTTP_PORT: String(EDGE_PORT),
        RELAY_RTMP_PORT: String(MEDIA_RTMP),
        RELAY_DEV_APP_SECRET: secretKey,
      },
      /API READY/,
    ),
    media(C),
    worker(C).then((p) => (workerC = p)),
    ...[media(B), worker(B)].map(async (p) => onHostB.push(await p)),
  ]);
  writeEdgeConf(edgeDir, { origin: `media.relay:${MEDIA_HTTP}`, listen: `${A.addr}:${EDGE_PORT}` });
  const edge = await hosts.spawn(
    'A',
    'edge',
    NGINX,
    ['-p', edgeDir, '-c', path.join(edgeDir, 'nginx.conf'), '-e', 'stderr'],
    {
      ready: null,
    },
  );
  await eventually(
    async () => (await fromA(`http://${A.addr}:${EDGE_PORT}/livez`, {}, 2000)).status === 200 || null,
    10_000,
    200,
  ).catch((e: Error) => {
    throw new Error(`the edge on A does not answer: ${e.message}\n${edge.output.join('\n')}`);
  });
  await eventually(async () => (await beats()).length === 2 || null, 10_000, 200);
}, 120_000);

afterAll(async () => {
  if (missing) return;
  await hosts?.close();
  for (const dir of [dataDir, edgeDir]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
  const left = hosts?.leftovers() ?? [];
  if (left.length) throw new Error(`left behind: ${left.join(', ')}`);
}, 30_000);

describe.skipIf(!!missing)('hosts for real: A (Redis, API, edge), B and C (a media node and a worker each)', () => {
  const started: Started[] = [];
  const channelsOnB: Started[] = [];

  it('A resolves media.relay to both media hosts; B and C beat their own addresses', async () => {
    const r = await hosts.exec('A', 'getent', ['ahostsv4', 'media.relay']);
    expect(
      new Set(
        r.stdout
          .split('\n')
          .map((l) => l.split(/\s+/)[0])
          .filter(Boolean),
      ),
    ).toEqual(new Set([B.addr, C.addr]));
    const all = (await beats()).sort((x, y) => x.node.localeCompare(y.node));
    expect(all.map((b) => [b.node, b.internalHost, b.publicHost, b.rtmpPort, b.httpPort])).toEqual([
      ['hostB', B.addr, B.addr, MEDIA_RTMP, MEDIA_HTTP],
      ['hostC', C.addr, C.addr, MEDIA_RTMP, MEDIA_HTTP],
    ]);
  });

  it('spreads 4 channels 2/2 over B and C, their HTTP play URLs naming the edge on A', async () => {
    for (let i = 1; i <= 4; i++) {
      const reg = await api('PUT', '/v1/rooms/1701/upstreams', {
        userId: `u${i}`,
        srcType: 0,
        url: fixture('alice-camera.mp4'),
      });
      expect(reg.code, JSON.stringify(reg)).toBe(0);
      const r = await api('POST', '/v1/push/start', {
        roomId: 1701,
        userId: `u${i}`,
        srcType: 0,
        option: { encode: 3 },
      });
      expect(r.code, JSON.stringify(r)).toBe(0);
      started.push(r as Started);
    }
    const front = `http://${A.addr}:${EDGE_PORT}/`;
    for (const c of started) for (const u of c.urls) expect(u.playUrl.startsWith(front), u.playUrl).toBe(true);
    const records = await Promise.all(started.map((c) => recordOf(c.channelId)));
    expect(records.map((r) => r.state)).toEqual(['live', 'live', 'live', 'live']);
    expect(records.map((r) => r.mediaNode as string).sort()).toEqual(['hostB', 'hostB', 'hostC', 'hostC']);
    channelsOnB.push(...started.filter((_, i) => records[i].mediaNode === 'hostB'));
    await eventually(async () => (await beats()).every((b) => b.load?.channels === 2) || null, 10_000, 250);
  }, 90_000);

  it('a viewer on A plays a B channel through the edge: the edge spreads over B and C, C redirects to B', async () => {
    const flv = urlOf(channelsOnB[0]!, 2);
    // the edge goes round the two nodes: B serves its channel, C sends the player to B
    const answers = await Promise.all([0, 1, 2, 3].map(() => fromA(flv, { manual: true, headOnly: true })));
    const flvOnB = `http://${B.addr}:${MEDIA_HTTP}${new URL(flv).pathname}`;
    for (const a of answers) expect([200, 302], JSON.stringify(a)).toContain(a.status);
    expect(answers.filter((a) => a.status === 302).map((a) => a.location)).toContain(flvOnB);
    expect(await viewerDecodes(flv)).toBe(true);
  }, 30_000);

  it('every process of B killed: its channels move to C, the viewer on A plays again on the same URL', async () => {
    expect(channelsOnB).toHaveLength(2);
    const c = channelsOnB[0]!;
    const flv = urlOf(c, 2);
    const hls = urlOf(c, 1);
    const playlist = async () => {
      const a = await fromA(hls, {}, 5000);
      return a.status === 200 ? a.text : null;
    };
    const before = await eventually(async () => {
      const t = await playlist();
      return t?.includes('#EXTINF') ? t : null;
    }, 15_000);
    const seqBefore = Number(/#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(before)![1]);
    const lastBefore = before.trim().split('\n').pop()!;

    const killedAt = Date.now();
    const killed = await hosts.killHost('B');
    // its media node and its worker (and the ffmpegs of the channels that worker ran)
    expect(killed.map((k) => k.pid)).toEqual(expect.arrayContaining(onHostB.map((p) => p.child.pid)));
    let attempts = 0;
    await eventually(async () => ++attempts && (await viewerDecodes(flv)), 30_000, 200);
    const gapMs = Date.now() - killedAt;
    console.log(
      `host B killed (${killed.map((k) => k.comm).join(', ')}): the viewer on A decodes a frame again on the same URL after ${gapMs} ms (${attempts} attempts)`,
    );

    for (const moved of channelsOnB) {
      const ch = await eventually(
        async () => {
          const cur = await recordOf(moved.channelId);
          return cur.state === 'live' && cur.mediaNode === 'hostC' ? cur : null;
        },
        30_000,
        250,
      );
      // the URLs handed out stay the ones the API gave: the edge's
      expect(ch.urls).toEqual(moved.urls);
    }
    // the edge now finds the channel on C: served there (B refuses connections), or sent there
    const a = await fromA(flv, { manual: true, headOnly: true });
    if (a.status === 302) expect(a.location).toBe(`http://${C.addr}:${MEDIA_HTTP}${new URL(flv).pathname}`);
    else expect(a.status).toBe(200);
    // HLS through the edge: the same playlist goes on (numbering not reset), a discontinuity where C took over
    const text = await eventually(
      async () => {
        const t = await playlist();
        return t && t.includes('#EXT-X-DISCONTINUITY') && !t.trim().endsWith(lastBefore) ? t : null;
      },
      20_000,
      300,
    );
    expect(Number(/#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(text)![1])).toBeGreaterThanOrEqual(seqBefore);
    expect(text).not.toContain('#EXT-X-ENDLIST');
    // C runs all four channels now: on its media node, by its worker (it took up those B's worker ran)
    const workerOfC = `${os.hostname()}:${workerC.child.pid}`;
    await eventually(
      async () => {
        const records = await Promise.all(started.map((s) => recordOf(s.channelId)));
        return records.every((r) => r.state === 'live' && r.mediaNode === 'hostC' && r.worker === workerOfC) || null;
      },
      20_000,
      500,
    );
  }, 75_000);

  it('stopping the channels leaves no ffmpeg', async () => {
    const r = await api('POST', '/v1/push/stop', { channelIds: started.map((c) => c.channelId) });
    expect(r.code, JSON.stringify(r)).toBe(0);
    expect(r.results.map((x: { code: number }) => x.code)).toEqual([0, 0, 0, 0]);
    await eventually(
      async () => {
        const records = await Promise.all(started.map((s) => recordOf(s.channelId)));
        return records.every((x) => x.state === 'stopped') || null;
      },
      15_000,
      250,
    );
    await eventually(async () => ffmpegsMentioning(dataDir).length === 0 || null, 15_000, 200);
  }, 30_000);
});
