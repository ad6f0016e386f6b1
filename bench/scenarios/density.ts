/**
 * 3. Density: the most concurrent copy channels that all stay real time for a whole window: each channel's ffmpeg
 * advances its output by ≥ 0.98 s per wall-clock second, and no HLS playlist skips a segment, restarts
 * (discontinuity) or stops growing. Steps up from `from` by `step` until a step fails or `to` is reached.
 *
 * Upstreams: a few members publish into the ingest, each relayed by a source channel (RTMP out), and every measured
 * channel relays one of those through an external RTMP URL (the source channel's public RTMP play URL) registered as
 * its own member's upstream — real relays read upstreams that live elsewhere, so one publisher per channel on this
 * machine would only measure the bench's feeders. (The ingest itself is read with single-use tokens only.)
 */
import fs from 'node:fs';
import path from 'node:path';
import { fixture } from '../../test/helpers/stack.js';
import { measure, percentile } from '../lib/proc.js';
import { allInState, sleep, startPush, stopPush, type Bench } from '../lib/context.js';

export const MIN_SPEED = 0.98;
const PUBLISHERS = 8;

export interface DensityStep {
  channels: number;
  realTime: boolean;
  minSpeed: number;
  hlsGaps: number;
  machinePct: number;
  /** p95 of the time the media server took to serve a playlist during the window */ playlistP95Ms: number;
  failures: string[];
}
export interface DensityResult {
  target: number;
  max: number;
  seconds: number;
  steps: DensityStep[];
}

interface Stats {
  outTimeMs: number;
  updatedAt: number;
}
interface Watch {
  seqs: Set<number>;
  discontinuities: number;
  lastNewAt: number;
  longestStallMs: number;
}

const member = (i: number) => ({ roomId: 5000 + Math.floor(i / 4), userId: `d${i}`, srcType: 0 as const });

export async function density(
  b: Bench,
  opts: { from: number; to: number; step: number; seconds: number; target: number },
): Promise<DensityResult> {
  const { stack } = b;
  const sources: string[] = [];
  const sourceIds: string[] = [];
  for (let k = 0; k < PUBLISHERS; k++) {
    const key = { roomId: 4990 + Math.floor(k / 4), userId: `src${k}`, srcType: 0 as const };
    await stack.publish(key, fixture('alice-camera.mp4'));
    const src = await startPush(stack, { ...key, option: { encode: 5 } });
    sourceIds.push(src.channelId);
    sources.push(src.urls.find((u) => u.type === 5)!.playUrl);
  }
  await allInState(stack, sourceIds, 'live', 60_000);
  for (let i = 0; i < opts.to; i++) {
    const m = member(i);
    const r = await stack.request('PUT', `/v1/rooms/${m.roomId}/upstreams`, {
      userId: m.userId,
      srcType: 0,
      url: sources[i % PUBLISHERS],
    });
    if (r.body?.code !== 0) throw new Error(`upstream registration refused: ${JSON.stringify(r.body)}`);
  }
  const segSeconds = Number(stack.env.RELAY_HLS_SEGMENT_SECONDS ?? 2);
  const steps: DensityStep[] = [];
  for (let n = opts.from; n <= opts.to; n += opts.step) {
    const ids: string[] = [];
    const started: Awaited<ReturnType<typeof startPush>>[] = [];
    for (let i = 0; i < n; i += 10) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(10, n - i) }, (_, j) =>
          startPush(stack, { ...member(i + j), option: { encode: 3 } }),
        ),
      );
      started.push(...batch);
    }
    ids.push(...started.map((s) => s.channelId));
    try {
      await allInState(stack, ids, 'live', 120_000);
      await sleep(5000);
      // the gap check reads what ffmpeg wrote (a slow media server is measured apart: HTTP time of a few playlists)
      const playlists = started.map((x) => path.join(stack.dataDir, 'hls', x.channelId, 'index.m3u8'));
      const urls = started.map((x) => x.urls.find((u) => u.type === 1)!.playUrl);
      const httpMs: number[] = [];
      let round = 0;
      const watches: Watch[] = playlists.map(() => ({
        seqs: new Set(),
        discontinuities: -1,
        lastNewAt: Date.now(),
        longestStallMs: 0,
      }));
      const poll = async () => {
        for (let k = 0; k < 8; k++) {
          const t = performance.now();
          await fetch(urls[(round * 8 + k) % urls.length]!)
            .then((r) => r.text())
            .catch(() => '');
          httpMs.push(performance.now() - t);
        }
        round++;
        await Promise.all(
          playlists.map(async (file, i) => {
            const text = await fs.promises.readFile(file, 'utf8').catch(() => '');
            const w = watches[i]!;
            const disc = (text.match(/#EXT-X-DISCONTINUITY\n/g) ?? []).length;
            const base = Number(/#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(text)?.[1] ?? NaN);
            const count = (text.match(/#EXTINF/g) ?? []).length;
            if (!Number.isFinite(base)) return;
            const now = Date.now();
            let fresh = false;
            for (let q = base; q < base + count; q++)
              if (!w.seqs.has(q)) {
                w.seqs.add(q);
                fresh = true;
              }
            if (fresh) w.lastNewAt = now;
            else w.longestStallMs = Math.max(w.longestStallMs, now - w.lastNewAt);
            // a discontinuity tag that was not there at the first poll: the output restarted
            if (w.discontinuities < 0) w.discontinuities = disc;
            else if (disc > w.discontinuities) w.discontinuities = 1e6;
          }),
        );
      };
      const readStats = async () => {
        const raw = await stack.redis.mget(...ids.map((id) => `${stack.prefix}:channel:${id}`));
        return raw.map((r) => (r ? (JSON.parse(r) as { state: string; stats?: Stats }) : null));
      };
      await poll();
      const s0 = await readStats();
      let polling = true;
      const poller = (async () => {
        while (polling) {
          await sleep(2000);
          if (polling) await poll();
        }
      })();
      const win = await measure({ none: () => [] }, opts.seconds);
      polling = false;
      await poller;
      await poll();
      const s1 = await readStats();
      const failures: string[] = [];
      let minSpeed = Infinity;
      let hlsGaps = 0;
      ids.forEach((id, i) => {
        const a = s0[i]?.stats;
        const z = s1[i]?.stats;
        if (s1[i]?.state !== 'live') failures.push(`${id} ${s1[i]?.state}`);
        const speed =
          a && z && z.updatedAt > a.updatedAt ? (z.outTimeMs - a.outTimeMs) / (z.updatedAt - a.updatedAt) : 0;
        minSpeed = Math.min(minSpeed, speed);
        if (speed < MIN_SPEED) failures.push(`${id} speed ${speed.toFixed(3)}`);
        const w = watches[i]!;
        const seqs = [...w.seqs].sort((x, y) => x - y);
        const skipped = seqs.length ? seqs.at(-1)! - seqs[0]! + 1 - seqs.length : 1;
        const stalled = w.longestStallMs > segSeconds * 2000 + 2500;
        if (skipped > 0 || w.discontinuities >= 1e6 || stalled) {
          hlsGaps++;
          failures.push(
            `${id} HLS ${skipped > 0 ? `skipped ${skipped}` : ''}${w.discontinuities >= 1e6 ? ' restarted' : ''}${stalled ? ` no new segment for ${w.longestStallMs} ms` : ''}`,
          );
        }
      });
      const step: DensityStep = {
        channels: n,
        realTime: failures.length === 0,
        minSpeed,
        hlsGaps,
        machinePct: win.machinePercent(),
        playlistP95Ms: Math.round(percentile(httpMs, 95)),
        failures: failures.slice(0, 10),
      };
      steps.push(step);
      b.log(
        `  ${n} channels: ${step.realTime ? 'all real time' : `${failures.length} failures`}, slowest ${minSpeed.toFixed(3)}×, ${hlsGaps} HLS gaps, machine ${step.machinePct.toFixed(0)} % of a core, playlist served in ${step.playlistP95Ms} ms p95${failures.length ? ` (${failures.slice(0, 3).join('; ')})` : ''}`,
      );
    } finally {
      await stopPush(stack, ids);
      await allInState(stack, ids, 'stopped', 60_000).catch((e: Error) => b.log(`  (${e.message})`));
      await sleep(2000);
    }
    if (!steps.at(-1)?.realTime) break;
  }
  await stopPush(stack, sourceIds);
  return {
    target: opts.target,
    max: Math.max(0, ...steps.filter((s) => s.realTime).map((s) => s.channels)),
    seconds: opts.seconds,
    steps,
  };
}
