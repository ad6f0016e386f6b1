/**
 * 11. Edge fan-out: N HLS viewers of a two-tier channel through the shipped caching edge (edge/, Debian's nginx),
 * each polling its variant's playlist and fetching every new segment as a player does: origin requests per segment
 * per variant (the relay's relay_hls_requests_total), edge and media-server CPU, and whether every viewer kept up.
 */
import { EdgeNginx } from '../../test/helpers/nginx-edge.js';
import { measure, subtree } from '../lib/proc.js';
import { mediaRoot, sleep, startPush, stopPush, type Bench } from '../lib/context.js';

export interface EdgeResult {
  viewers: number;
  seconds: number;
  /** Origin segment requests ÷ distinct segments fetched by the viewers (1.0: each segment fetched once). */
  originPerSegment: number;
  /** Origin playlist requests per second (all variants). */
  originPlaylistsPerS: number;
  edgePct: number;
  mediaPct: number;
  /** Mbit/s the edge served. */
  servedMbps: number;
  /** The viewer that got the fewest segments, as a fraction of the most. */
  slowest: number;
}

/** One HLS viewer without a decoder: polls `playlist` (half a target duration when unchanged) and fetches what is new. */
async function viewer(playlist: string, stop: AbortSignal, seen: Set<string>, tally: { bytes: number; segs: number }) {
  let last = '';
  while (!stop.aborted) {
    try {
      const text = await (await fetch(playlist, { signal: stop })).text();
      const segs = text.split('\n').filter((l) => l.endsWith('.ts'));
      const fresh = last ? segs.slice(segs.indexOf(last) + 1) : segs.slice(-1);
      for (const s of fresh) {
        const url = new URL(s, playlist).toString();
        const body = await (await fetch(url, { signal: stop })).arrayBuffer();
        seen.add(url);
        tally.bytes += body.byteLength;
        tally.segs++;
        last = s;
      }
      await sleep(fresh.length ? 2000 : 1000);
    } catch {
      if (!stop.aborted) await sleep(500);
    }
  }
}

async function originCounts(b: Bench, id: string): Promise<{ playlist: number; segment: number }> {
  const text = await (
    await fetch(`http://127.0.0.1:${b.stack.httpPort}/metrics`, { headers: { authorization: b.stack.adminAuth } })
  ).text();
  const of = (kind: string) =>
    [
      ...text.matchAll(
        new RegExp(`relay_hls_requests_total\\{[^}]*channel="${id}"[^}]*kind="${kind}"[^}]*\\} (\\d+)`, 'g'),
      ),
    ]
      .map((m) => Number(m[1]))
      .reduce((a, x) => a + x, 0);
  return { playlist: of('playlist'), segment: of('segment') };
}

export async function edgeFanOut(b: Bench, viewers: number): Promise<EdgeResult> {
  const edge = new EdgeNginx(20000 + Math.floor(Math.random() * 20000), `127.0.0.1:${b.stack.httpPort}`);
  await edge.start();
  const r = await startPush(b.stack, {
    roomId: 1001,
    userId: 'alice',
    srcType: 0,
    option: { encode: 1, rateTypes: [0, 10] },
  });
  const master = new URL(r.urls.find((u) => u.type === 1 && u.rateType == null)?.playUrl ?? r.urls[0]!.playUrl);
  const edgeBase = `http://127.0.0.1:${edge.port}`;
  const stop = new AbortController();
  try {
    await sleep(6000); // a few segments in each variant
    const variants = ['r0/index.m3u8', 'r10/index.m3u8'].map((v) => new URL(v, edgeBase + master.pathname).toString());
    const seen = new Set<string>();
    const tallies = Array.from({ length: viewers }, () => ({ bytes: 0, segs: 0 }));
    const before = await originCounts(b, r.channelId);
    const running = tallies.map((t, i) => viewer(variants[i % 2]!, stop.signal, seen, t));
    const w = await measure(
      { edge: () => (edge.pid ? [edge.pid] : []), media: (s) => subtree(s, [mediaRoot(b.stack)]) },
      b.seconds,
    );
    stop.abort();
    await Promise.all(running);
    const after = await originCounts(b, r.channelId);
    const most = Math.max(...tallies.map((t) => t.segs));
    const result: EdgeResult = {
      viewers,
      seconds: b.seconds,
      originPerSegment: seen.size ? (after.segment - before.segment) / seen.size : NaN,
      originPlaylistsPerS: (after.playlist - before.playlist) / b.seconds,
      edgePct: w.percent('edge'),
      mediaPct: w.percent('media'),
      servedMbps: (tallies.reduce((a, t) => a + t.bytes, 0) * 8) / 1e6 / b.seconds,
      slowest: most ? Math.min(...tallies.map((t) => t.segs)) / most : 0,
    };
    b.log(
      `  ${viewers} HLS viewers via the edge: origin ${result.originPerSegment.toFixed(2)} requests per segment, ` +
        `${result.originPlaylistsPerS.toFixed(1)} playlists/s; edge ${result.edgePct.toFixed(1)} %, media ${result.mediaPct.toFixed(1)} %, ` +
        `${result.servedMbps.toFixed(0)} Mbit/s served`,
    );
    return result;
  } finally {
    stop.abort();
    await stopPush(b.stack, [r.channelId]);
    await edge.close();
  }
}
