/**
 * 2. Cost per copy channel: CPU of the whole stack ÷ CPU of the floor (bare ffmpeg + the media server it publishes
 * into) at N concurrent channels, both above what they use with every member publishing and no channel; memory.
 */
import { fixture } from '../../test/helpers/stack.js';
import { floorChannel, killBare, spawnBare, type Bare } from '../lib/floor.js';
import { measure, median, rssMiB, subtree } from '../lib/proc.js';
import { mediaRoot, sleep, stackRoots, startPush, stopPush, type Bench } from '../lib/context.js';

/** CPU differences below this (% of a core) are noise: no ratio is drawn from them (either side). */
export const NOISE_PCT = 1;

export interface CostResult {
  channels: number;
  stackPct: number;
  floorPct: number;
  ratio: number | null;
  stackMiBPerChannel: number;
  floorMiBPerChannel: number;
}

const member = (i: number) => ({ roomId: 2000 + Math.floor(i / 4), userId: `u${i}`, srcType: 0 as const });

export async function copyCost(b: Bench, counts: readonly number[]): Promise<CostResult[]> {
  const { stack } = b;
  const users = Math.max(...counts);
  for (let i = 0; i < users; i++) await stack.publish(member(i), fixture('alice-camera.mp4'));
  await sleep(2000);
  const idle = await measure(
    { stack: (s) => subtree(s, stackRoots(stack)), media: (s) => subtree(s, [mediaRoot(stack)]) },
    b.seconds,
  );
  const idleStack = idle.percent('stack');
  const idleMedia = idle.percent('media');
  b.log(
    `  idle with ${users} members publishing: stack ${idleStack.toFixed(1)} %, media server ${idleMedia.toFixed(1)} %`,
  );
  const out: CostResult[] = [];
  for (const n of counts) {
    const runs: Omit<CostResult, 'channels'>[] = [];
    for (let run = 0; run < b.runs; run++) {
      const baseRss = rssMiB(stackRoots(stack));
      const ids: string[] = [];
      for (let i = 0; i < n; i++) ids.push((await startPush(stack, { ...member(i), option: { encode: 6 } })).channelId);
      await sleep(3000);
      const w = await measure({ stack: (s) => subtree(s, stackRoots(stack)) }, b.seconds);
      const stackPct = w.percent('stack') - idleStack;
      const stackMiB = (rssMiB(stackRoots(stack)) - baseRss) / n;
      await stopPush(stack, ids);
      await sleep(1500);

      const floorRss0 = rssMiB([mediaRoot(stack)]);
      const bare: Bare[] = [];
      for (let i = 0; i < n; i++)
        bare.push(spawnBare((await floorChannel(stack, member(i).userId, member(i).roomId)).args));
      await sleep(3000);
      const fw = await measure(
        { floor: (s) => subtree(s, [mediaRoot(stack), ...bare.map((x) => x.child.pid!)]) },
        b.seconds,
        () => {
          if (bare.some((x) => !x.alive()))
            throw new Error(
              `a bare ffmpeg of the floor died: ${bare
                .find((x) => !x.alive())!
                .stderr.slice(-3)
                .join(' | ')}`,
            );
        },
      );
      const floorPct = fw.percent('floor') - idleMedia;
      const floorMiB = (rssMiB(bare.map((x) => x.child.pid!)) + rssMiB([mediaRoot(stack)]) - floorRss0) / n;
      await Promise.all(bare.map((x) => killBare(x.child)));
      runs.push({
        stackPct,
        floorPct,
        ratio: floorPct < NOISE_PCT || stackPct < NOISE_PCT ? null : stackPct / floorPct,
        stackMiBPerChannel: stackMiB,
        floorMiBPerChannel: floorMiB,
      });
      b.log(
        `  ${n} channels${b.runs > 1 ? ` run ${run + 1}/${b.runs}` : ''}: stack ${stackPct.toFixed(1)} %, floor ${floorPct.toFixed(1)} %`,
      );
      await sleep(1500);
    }
    const m = (f: (r: Omit<CostResult, 'channels'>) => number) => median(runs.map(f));
    const ratios = runs.map((r) => r.ratio).filter((r): r is number => r !== null);
    out.push({
      channels: n,
      stackPct: Math.max(
        0,
        m((r) => r.stackPct),
      ),
      floorPct: Math.max(
        0,
        m((r) => r.floorPct),
      ),
      ratio: ratios.length * 2 > runs.length ? median(ratios) : null,
      stackMiBPerChannel: m((r) => r.stackMiBPerChannel),
      floorMiBPerChannel: m((r) => r.floorMiBPerChannel),
    });
  }
  return out;
}
