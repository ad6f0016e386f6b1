/**
 * 3. Density: the most concurrent copy channels that all stay real time for a whole window (bench/lib/copy-channels.ts:
 * each channel's ffmpeg advances its output by ≥ 0.98 s per wall-clock second, and no HLS playlist skips a segment,
 * restarts or stops growing), with the cluster's one media node. Steps up from `from` by `step` until a step fails or
 * `to` is reached. (With one media node per core: the nodes scenario.)
 */
import path from 'node:path';
import { measure } from '../lib/proc.js';
import { allInState, sleep, stopPush, type Bench } from '../lib/context.js';
import { copyMember, copyUpstreams, RealTimeWatch, recordProgress, startCopyChannels } from '../lib/copy-channels.js';

const PUBLISHERS = 8;

export interface DensityStep {
  channels: number;
  realTime: boolean;
  minSpeed: number;
  hlsGaps: number;
  /** playlists partly unseen (the bench stalled longer than a playlist window): not gaps */ hlsUnverified: number;
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

const member = copyMember(5000, 'd');

export async function density(
  b: Bench,
  opts: { from: number; to: number; step: number; seconds: number; target: number },
): Promise<DensityResult> {
  const { stack } = b;
  const sourceIds = await copyUpstreams(b, {
    room: 4990,
    prefix: 'src',
    publishers: PUBLISHERS,
    members: opts.to,
    member,
  });
  const segSeconds = Number(stack.env.RELAY_HLS_SEGMENT_SECONDS ?? 2);
  const steps: DensityStep[] = [];
  for (let n = opts.from; n <= opts.to; n += opts.step) {
    const { started, refused } = await startCopyChannels(b, n, member);
    const ids = started.map((s) => s.channelId);
    try {
      if (refused) throw new Error(`start refused after ${started.length} channels: ${refused}`);
      await allInState(stack, ids, 'live', 120_000);
      await sleep(5000);
      const watch = new RealTimeWatch({
        names: ids,
        playlists: ids.map((id) => path.join(stack.dataDir, 'hls', id, 'index.m3u8')),
        urls: started.map((x) => x.urls.find((u) => u.type === 1)!.playUrl),
        segSeconds,
        progress: recordProgress(b, ids),
      });
      await watch.start();
      const win = await measure({ none: () => [] }, opts.seconds);
      const rt = await watch.finish();
      const step: DensityStep = {
        channels: n,
        realTime: rt.realTime,
        minSpeed: rt.minSpeed,
        hlsGaps: rt.hlsGaps,
        hlsUnverified: rt.hlsUnverified,
        machinePct: win.machinePercent(),
        playlistP95Ms: rt.playlistP95Ms,
        failures: rt.failures.slice(0, 10),
      };
      steps.push(step);
      b.log(
        `  ${n} channels: ${step.realTime ? 'all real time' : `${rt.failures.length} failures`}, slowest ${rt.minSpeed.toFixed(3)}×, ${rt.hlsGaps} HLS gaps${rt.hlsUnverified ? ` (${rt.hlsUnverified} playlists partly unseen: the bench stalled)` : ''}, machine ${step.machinePct.toFixed(0)} % of a core, playlist served in ${step.playlistP95Ms} ms p95${rt.failures.length ? ` (${rt.failures.slice(0, 3).join('; ')})` : ''}`,
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
