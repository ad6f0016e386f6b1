/**
 * The caching HLS edge shipped in edge/ (README "HLS through a caching edge"), run by Debian's nginx in front of a
 * test relay: 200 viewers asking for one segment at once cost the origin one request (the relay's own
 * relay_hls_requests_total says so), 100 for one playlist at most two; a player plays through it; a password channel
 * stays protected (its credential is part of the cache key, refusals are not cached). Skipped without nginx.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probePlayback } from '../../src/player/probe.js';
import { EdgeNginx, nginxMissing } from '../helpers/nginx-edge.js';
import { fetchText } from '../helpers/media.js';
import { eventually, startStack, type Stack } from '../helpers/stack.js';

const missing = nginxMissing();
if (missing) console.log(`SKIP edge: ${missing}`);

describe.skipIf(!!missing)('HLS through the caching edge (nginx)', () => {
  let stack: Stack;
  let edge: EdgeNginx;
  let base: string;
  beforeAll(async () => {
    stack = await startStack({ env: { RELAY_START_RATE_LIMIT_MS: '0' } });
    const port = 20000 + Math.floor(Math.random() * 20000);
    edge = new EdgeNginx(port, `127.0.0.1:${stack.httpPort}`);
    await edge.start();
    base = `http://127.0.0.1:${port}`;
  }, 60_000);
  afterAll(async () => {
    await edge?.close();
    await stack?.close();
  });

  /** A channel of the alice fixture (HLS); its id and HLS path, once its playlist lists two segments. */
  async function channel(roomId: number, option: Record<string, unknown>): Promise<{ id: string; hlsPath: string }> {
    const reg = await stack.request('PUT', `/v1/rooms/${roomId}/upstreams`, {
      userId: 'u',
      srcType: 0,
      url: 'alice-camera.mp4',
    });
    expect(reg.body.code, JSON.stringify(reg.body)).toBe(0);
    const r = await stack.request('POST', '/v1/push/start', { roomId, userId: 'u', srcType: 0, option });
    expect(r.body.code, JSON.stringify(r.body)).toBe(0);
    const hlsPath = new URL(r.body.urls.find((u: { type: number }) => u.type === 1).playUrl).pathname;
    const q = option.channelPassword ? `?pwd=${option.channelPassword}` : '';
    await eventually(
      async () =>
        ((await fetchText(`http://127.0.0.1:${stack.httpPort}${hlsPath}${q}`))?.match(/#EXTINF/g) ?? []).length >= 2,
      30_000,
    );
    return { id: r.body.channelId, hlsPath };
  }

  /** The origin's HLS requests of a channel so far: playlists and segments (its Prometheus counter). */
  async function originRequests(id: string): Promise<{ playlist: number; segment: number }> {
    const res = await fetch(`http://127.0.0.1:${stack.httpPort}/metrics`, {
      headers: { authorization: stack.adminAuth },
    });
    const text = await res.text();
    const of = (kind: string) =>
      Number(
        new RegExp(`relay_hls_requests_total\\{[^}]*channel="${id}"[^}]*kind="${kind}"[^}]*\\} (\\d+)`).exec(
          text,
        )?.[1] ?? 0,
      );
    return { playlist: of('playlist'), segment: of('segment') };
  }

  it('200 viewers of one segment cost the origin 1 request, 100 of one playlist at most 2; HLS, HTTP-FLV and WS-FLV play through it', async () => {
    const { id, hlsPath } = await channel(7400, { encode: 3 });
    const playlist = (await fetchText(base + hlsPath))!;
    expect(playlist).toMatch(/#EXTM3U/);
    const segment = playlist
      .split('\n')
      .filter((l) => l.endsWith('.ts'))
      .at(-1)!;
    const segUrl = new URL(segment, base + hlsPath).toString();
    const before = await originRequests(id);
    const bodies = await Promise.all(
      Array.from({ length: 200 }, async () => {
        const res = await fetch(segUrl);
        expect(res.status).toBe(200);
        return Buffer.from(await res.arrayBuffer());
      }),
    );
    expect(new Set(bodies.map((b) => b.length)).size).toBe(1);
    expect(bodies[0]!.length).toBeGreaterThan(10_000);
    const statuses = await Promise.all(Array.from({ length: 100 }, async () => (await fetch(base + hlsPath)).status));
    expect(statuses.every((s) => s === 200)).toBe(true);
    const after = await originRequests(id);
    console.log(
      `edge: 200 viewers of one segment → ${after.segment - before.segment} origin request(s); 100 of the playlist → ${after.playlist - before.playlist}`,
    );
    expect(after.segment - before.segment, 'origin requests of the segment').toBe(1);
    expect(after.playlist - before.playlist, 'origin requests of the playlist').toBeLessThanOrEqual(2);
    const again = await fetch(segUrl);
    expect(again.headers.get('x-cache-status')).toBe('HIT');
    expect(again.headers.get('access-control-allow-origin')).toBe('*'); // CORS comes through the cache

    // a player through the edge: HLS cached; HTTP-FLV and WS-FLV (the upgrade passed on) as they come
    const flvPath = `/live/${id}.flv`;
    const [hls, flv, ws] = await Promise.all(
      [base + hlsPath, base + flvPath, base.replace('http', 'ws') + flvPath].map(async (url) => {
        const p = probePlayback(url, { durationMs: 6000 });
        for await (const s of p) void s;
        return p.summary;
      }),
    );
    for (const summary of [hls!, flv!, ws!]) {
      expect(summary.outcome, JSON.stringify(summary)).toMatch(/^(played|stalled)$/);
      expect([summary.width, summary.height]).toEqual([1280, 720]);
    }
    expect(hls!.latencySource).toBe('program-date-time');
    expect(flv!.latencySource).toBe('relay-clock'); // /status comes through the edge too
    await stack.request('POST', '/v1/push/stop', { channelIds: [id] });
  }, 90_000);

  it('a password channel stays protected through the cache: refused without its credential, even once cached', async () => {
    const { id, hlsPath } = await channel(7401, { encode: 1, channelPassword: 'sesame' });
    expect((await fetch(base + hlsPath)).status).toBe(401);
    const res = await fetch(`${base}${hlsPath}?pwd=sesame`);
    expect(res.status).toBe(200);
    const segment = (await res.text())
      .split('\n')
      .filter((l) => /\.ts\?token=/.test(l))
      .at(-1)!;
    expect(segment, 'segments carry the play token').toBeTruthy();
    const withToken = new URL(segment, base + hlsPath);
    expect((await fetch(withToken)).status).toBe(200);
    expect((await fetch(withToken)).headers.get('x-cache-status')).toBe('HIT');
    const bare = new URL(withToken.pathname, base);
    expect((await fetch(bare)).status, 'the cached segment without its token').toBe(401);
    expect((await fetch(`${base}${hlsPath}?pwd=wrong`)).status).toBe(403);
    await stack.request('POST', '/v1/push/stop', { channelIds: [id] });
  }, 60_000);
});
