/**
 * 4. Tiers: CPU of one channel per tier combination — the whole stack above its idle — beside bare ffmpeg run by
 * hand with the relay ffmpeg's exact argv (read from /proc: same ingest and publish URLs, HLS into another folder)
 * plus what the media server spends on it. Relay and bare alternate within each run.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { FFMPEG, ffmpegsMentioning } from '../../test/helpers/stack.js';
import { argvOf, killBare, relayFfmpegOf, replayOf, spawnBare } from '../lib/floor.js';
import { measure, median, readStat, subtree } from '../lib/proc.js';
import { mediaRoot, sleep, stackRoots, startPush, stopPush, allInState, type Bench } from '../lib/context.js';

interface Scenario {
  key: string;
  label: string;
  option: (wmId: number) => Record<string, unknown>;
}

export const TIER_SCENARIOS: Scenario[] = [
  { key: 'original', label: 'ORIGINAL copy', option: () => ({ encode: 6, rateType: 0 }) },
  { key: '550', label: '550 (360p)', option: () => ({ encode: 6, rateType: 10 }) },
  { key: '900', label: '900 (540p)', option: () => ({ encode: 6, rateType: 20 }) },
  {
    key: '0+10+20+wm',
    label: '0+10+20 + watermark',
    option: (id) => ({ encode: 6, rateTypes: [0, 10, 20], waterMark: true, waterMarkId: id }),
  },
];

export interface TierResult {
  key: string;
  label: string;
  /** whole stack above idle, % of a core */ stackPct: number;
  /** bare ffmpeg + media server above idle */ barePlusMediaPct: number;
  ratio: number;
  relayFfmpegPct: number;
  bareFfmpegPct: number;
  relayFps: number;
  bareFps: number;
  runs: { stackPct: number; barePlusMediaPct: number; ratio: number }[];
}

const WARMUP_MS = 3000;
const ALICE = { roomId: 1001, userId: 'alice', srcType: 0 as const };

async function uploadWatermark(b: Bench): Promise<number> {
  const file = path.join(b.stack.dataDir, 'bench-wm.png');
  execFileSync(FFMPEG, [
    '-hide_banner',
    '-loglevel',
    'error',
    '-y',
    '-f',
    'lavfi',
    '-i',
    'color=c=white:size=200x100',
    '-frames:v',
    '1',
    file,
  ]);
  const res = await fetch(`${b.stack.api}/v1/watermarks`, {
    method: 'POST',
    headers: { authorization: b.stack.auth, 'content-type': 'image/png' },
    body: fs.readFileSync(file),
  });
  const body = (await res.json()) as { code?: number; waterMarkId?: number };
  if (body.code !== 0 || typeof body.waterMarkId !== 'number')
    throw new Error(`watermark upload refused: ${JSON.stringify(body)}`);
  return body.waterMarkId;
}

export async function tierCosts(b: Bench, keys?: readonly string[]): Promise<TierResult[]> {
  const { stack } = b;
  const wmId = await uploadWatermark(b);
  const media = () => mediaRoot(stack);
  const idle = await measure(
    { stack: (s) => subtree(s, stackRoots(stack)), media: (s) => subtree(s, [media()]) },
    b.seconds,
  );
  const out: TierResult[] = [];
  for (const sc of TIER_SCENARIOS.filter((s) => !keys || keys.includes(s.key))) {
    const runs: {
      stackPct: number;
      barePlusMediaPct: number;
      ratio: number;
      relayFfmpegPct: number;
      bareFfmpegPct: number;
      relayFps: number;
      bareFps: number;
    }[] = [];
    for (let run = 0; run < b.runs; run++) {
      // relay
      const { channelId } = await startPush(stack, { ...ALICE, option: sc.option(wmId) });
      let argv: string[];
      let relay;
      let relayFps = NaN;
      try {
        const pid = await relayFfmpegOf(channelId);
        argv = argvOf(pid);
        await sleep(WARMUP_MS);
        const frames = async () =>
          (
            JSON.parse((await stack.redis.get(`${stack.prefix}:channel:${channelId}`))!) as {
              stats?: { frames: number; updatedAt: number };
            }
          ).stats;
        const f0 = await frames();
        relay = await measure({ ff: () => [pid], stack: (s) => subtree(s, stackRoots(stack)) }, b.seconds, () => {
          if (!readStat(pid)) throw new Error(`relay ffmpeg of ${channelId} died during the measurement`);
        });
        const f1 = await frames();
        if (f0 && f1 && f1.updatedAt > f0.updatedAt)
          relayFps = (f1.frames - f0.frames) / ((f1.updatedAt - f0.updatedAt) / 1000);
      } finally {
        await stopPush(stack, [channelId]);
        await allInState(stack, [channelId], 'stopped', 15000);
      }
      while (ffmpegsMentioning(channelId).length) await sleep(100);

      // bare: the same argv by hand, HLS into a separate folder
      const replay = await replayOf(stack, channelId, argv);
      const bare = spawnBare(replay.args, argv[0]);
      let bareWin;
      let bareFps = NaN;
      try {
        const died = () => {
          if (!bare.alive()) throw new Error(`bare ffmpeg exited:\n${bare.stderr.slice(-8).join('\n')}`);
        };
        await sleep(WARMUP_MS);
        died();
        const fr0 = bare.progress.frame;
        const t0 = performance.now();
        const barePid = bare.child.pid!;
        bareWin = await measure(
          { ff: (s) => subtree(s, [barePid]), media: (s) => subtree(s, [media()]) },
          b.seconds,
          died,
        );
        bareFps = (bare.progress.frame - fr0) / ((performance.now() - t0) / 1000);
      } finally {
        await killBare(bare.child);
        await replay.restore();
      }
      const stackPct = relay.percent('stack') - idle.percent('stack');
      const barePlus = bareWin.percent('ff') + bareWin.percent('media') - idle.percent('media');
      runs.push({
        stackPct,
        barePlusMediaPct: barePlus,
        ratio: stackPct / barePlus,
        relayFfmpegPct: relay.percent('ff'),
        bareFfmpegPct: bareWin.percent('ff'),
        relayFps,
        bareFps,
      });
      b.log(
        `  ${sc.label}${b.runs > 1 ? ` run ${run + 1}/${b.runs}` : ''}: stack ${stackPct.toFixed(1)} % (its ffmpeg ${relay.percent('ff').toFixed(1)} %), bare + media server ${barePlus.toFixed(1)} %, fps ${relayFps.toFixed(1)} / ${bareFps.toFixed(1)}`,
      );
      await sleep(3100); // alice's start rate limit
    }
    const m = (f: (r: (typeof runs)[number]) => number) => median(runs.map(f));
    out.push({
      key: sc.key,
      label: sc.label,
      stackPct: m((r) => r.stackPct),
      barePlusMediaPct: m((r) => r.barePlusMediaPct),
      ratio: m((r) => r.ratio),
      relayFfmpegPct: m((r) => r.relayFfmpegPct),
      bareFfmpegPct: m((r) => r.bareFfmpegPct),
      relayFps: m((r) => r.relayFps),
      bareFps: m((r) => r.bareFps),
      runs: runs.map(({ stackPct, barePlusMediaPct, ratio }) => ({ stackPct, barePlusMediaPct, ratio })),
    });
  }
  return out;
}
