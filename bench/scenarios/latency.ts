/**
 * 1. Start latency: start call → first FLV video keyframe at a viewer, and → first HLS segment listed. Then how far
 * behind live a viewer plays, measured by the client player (`probePlayback`) on a relay channel and on a floor one.
 */
import { floorChannel, killBare, spawnBare } from '../lib/floor.js';
import { percentile } from '../lib/proc.js';
import { firstKeyframe, firstSegment } from '../lib/viewers.js';
import { sleep, startPush, stopPush, type Bench } from '../lib/context.js';
import { probePlayback } from '../../src/player/probe.js';

/** What a viewer playing `seconds` gets, by the client player: behind live (median), first frame, stalls. */
export interface Behind {
  flvMs: number | null;
  hlsMs: number | null;
  flvFirstFrameMs: number | null;
  hlsFirstFrameMs: number | null;
  stalls: number;
}

export interface LatencyResult {
  runs: number;
  behindLive?: { relay: Behind; floor: Behind; seconds: number };
  relay: { apiP50: number; flvP50: number; flvP95: number; hlsP50: number; hlsP95: number };
  floor: { flvP50: number; flvP95: number; hlsP50: number; hlsP95: number };
}

/** `starts` starts of alice's camera, which is already live on the ingest; each beside a bare ffmpeg spawned the same way. */
export async function startLatency(b: Bench, starts: number): Promise<LatencyResult> {
  const relay = { flv: [] as number[], hls: [] as number[], api: [] as number[] };
  const floor = { flv: [] as number[], hls: [] as number[] };
  // HLS can only cut at the upstream's keyframes (2 s apart): where a start falls between two keyframes decides when
  // the first segment ends. A fixed loop locks that phase (relay and floor then differ by a constant); a random pause
  // before each start samples it fairly.
  const phase = () => sleep(Math.random() * 2000);
  for (let i = 0; i < starts; i++) {
    await phase();
    const t0 = Date.now();
    // a viewer learns the URLs from the answer, then plays them at once
    const r = await startPush(b.stack, { roomId: 1001, userId: 'alice', srcType: 0, option: { encode: 3 } });
    const api = Date.now() - t0;
    relay.api.push(api);
    const flv = r.urls.find((u) => u.type === 2)!.playUrl;
    const hls = r.urls.find((u) => u.type === 1)!.playUrl;
    const [k, s] = await Promise.all([firstKeyframe(flv), firstSegment(hls)]);
    relay.flv.push(api + k);
    relay.hls.push(api + s);
    await stopPush(b.stack, [r.channelId]);

    const { ch, args } = await floorChannel(b.stack, 'alice');
    await phase();
    const bare = spawnBare(args);
    const [fk, fs] = await Promise.all([
      firstKeyframe(ch.urls.find((u) => u.type === 2)!.playUrl),
      firstSegment(ch.urls.find((u) => u.type === 1)!.playUrl),
    ]);
    floor.flv.push(fk);
    floor.hls.push(fs);
    await killBare(bare.child);
    b.log(`  start ${i + 1}/${starts}: relay FLV ${api + k} ms, HLS ${api + s} ms; floor FLV ${fk} ms, HLS ${fs} ms`);
    await sleep(3100); // the same member's start rate limit
  }
  const behindLive = await viewersBehindLive(b, b.short ? 4 : 10);
  const p = (xs: number[], q: number) => percentile(xs, q);
  return {
    runs: starts,
    behindLive,
    relay: {
      apiP50: p(relay.api, 50),
      flvP50: p(relay.flv, 50),
      flvP95: p(relay.flv, 95),
      hlsP50: p(relay.hls, 50),
      hlsP95: p(relay.hls, 95),
    },
    floor: { flvP50: p(floor.flv, 50), flvP95: p(floor.flv, 95), hlsP50: p(floor.hls, 50), hlsP95: p(floor.hls, 95) },
  };
}

/** An FLV and an HLS viewer of the same channel, played by `probePlayback` for `seconds`. */
async function viewers(urls: { type: number; playUrl: string }[], seconds: number): Promise<Behind> {
  const play = (type: number) =>
    probePlayback(urls.find((u) => u.type === type)!.playUrl, { durationMs: seconds * 1000 }).summary;
  const [flv, hls] = await Promise.all([play(2), play(1)]);
  return {
    flvMs: flv.latencyMs,
    hlsMs: hls.latencyMs,
    flvFirstFrameMs: flv.firstFrameMs,
    hlsFirstFrameMs: hls.firstFrameMs,
    stalls: flv.stalls + hls.stalls,
  };
}

/** Behind live on a relay channel and on a floor channel (bare ffmpeg), each once its first HLS segment is listed. */
async function viewersBehindLive(b: Bench, seconds: number): Promise<LatencyResult['behindLive']> {
  const r = await startPush(b.stack, { roomId: 1001, userId: 'alice', srcType: 0, option: { encode: 3 } });
  await firstSegment(r.urls.find((u) => u.type === 1)!.playUrl);
  const relay = await viewers(r.urls, seconds);
  await stopPush(b.stack, [r.channelId]);
  const { ch, args } = await floorChannel(b.stack, 'alice');
  const bare = spawnBare(args);
  await firstSegment(ch.urls.find((u) => u.type === 1)!.playUrl);
  const floor = await viewers(ch.urls, seconds);
  await killBare(bare.child);
  b.log(
    `  behind live (${seconds} s viewers): relay FLV ${relay.flvMs} ms, HLS ${relay.hlsMs} ms; floor FLV ${floor.flvMs} ms, HLS ${floor.hlsMs} ms`,
  );
  return { relay, floor, seconds };
}
