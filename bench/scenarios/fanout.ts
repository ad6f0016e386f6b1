/** 5. Fan-out: N HTTP-FLV viewers of one channel: media-server CPU and memory, and whether every viewer keeps up. */
import { measure, rssMiB, subtree } from '../lib/proc.js';
import { FlvWatcher } from '../../test/helpers/media.js';
import { mediaRoot, sleep, startPush, stopPush, type Bench } from '../lib/context.js';

export interface FanOutResult {
  viewers: number;
  mediaPct: number;
  mediaMiB: number;
  slowest: number;
}

export async function fanOut(b: Bench, counts: readonly number[]): Promise<FanOutResult[]> {
  const r = await startPush(b.stack, { roomId: 1001, userId: 'alice', srcType: 0, option: { encode: 2 } });
  const url = r.urls[0]!.playUrl;
  const out: FanOutResult[] = [];
  try {
    for (const n of counts) {
      const viewers = Array.from({ length: n }, () => new FlvWatcher(url));
      await sleep(2000);
      const before = viewers.map((v) => v.bytes);
      const w = await measure({ media: (s) => subtree(s, [mediaRoot(b.stack)]) }, b.seconds);
      // each viewer's bytes over the window, as a fraction of the best viewer's
      const got = viewers.map((v, i) => v.bytes - before[i]!);
      const best = Math.max(...got);
      out.push({
        viewers: n,
        mediaPct: w.percent('media'),
        mediaMiB: rssMiB([mediaRoot(b.stack)]),
        slowest: best ? Math.min(...got) / best : 0,
      });
      b.log(
        `  ${n} viewers: media server ${w.percent('media').toFixed(1)} %, slowest viewer ${out.at(-1)!.slowest.toFixed(2)} of the fastest`,
      );
      for (const v of viewers) v.close();
      await sleep(500);
    }
  } finally {
    await stopPush(b.stack, [r.channelId]);
  }
  return out;
}
