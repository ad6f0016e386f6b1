/**
 * 10. Mix: CPU of a mix of four 720p30 members (grid on a 1280×720 30 fps canvas, FLV) — the whole stack above its
 * idle, and its parts (the worker with its feeders and encoder) — beside one bare ffmpeg doing the same composition:
 * the four members decoded, scaled and letterboxed, `xstack`, `amix`, x264 with the relay's encoder options, to FLV.
 * The members' publishers are the bench's own processes (not counted on either side).
 */
import { fixture } from '../../test/helpers/stack.js';
import { killBare, spawnBare } from '../lib/floor.js';
import { measure, median, subtree } from '../lib/proc.js';
import { allInState, sleep, stackRoots, stopPush, type Bench } from '../lib/context.js';
import { encoderArgs } from '../../src/media/ffmpeg/args.js';
import { mixEncoding } from '../../src/worker/plan.js';

export interface MixResult {
  members: number;
  canvas: string;
  /** whole stack above idle, % of a core */ stackPct: number;
  /** the worker process and its children (feeders, encoder) */ workerPct: number;
  barePct: number;
  ratio: number;
  /** the worker's Node process alone (composition, audio mix, pipes) */ nodePct: number;
  runs: { stackPct: number; workerPct: number; nodePct: number; barePct: number }[];
}

const ROOM = 2000;
const USERS = ['m1', 'm2', 'm3', 'm4'];
const CANVAS = { width: 1280, height: 720, fps: 30 };
const WARMUP_MS = 4000;
const SHORT_WARMUP_MS = 2000;

/** The bare floor: one ffmpeg composing the same members the way a hand-written command would. */
function bareArgs(file: string): string[] {
  const { width, height, fps } = CANVAS;
  const [w, h] = [width / 2, height / 2];
  const inputs = USERS.flatMap(() => ['-re', '-stream_loop', '-1', '-i', file]);
  const tiles = USERS.map(
    (_, i) =>
      `[${i}:v]fps=${fps},scale=${w}:${h}:force_original_aspect_ratio=decrease,pad=${w}:${h}:(ow-iw)/2:(oh-ih)/2,setsar=1,format=yuv420p[t${i}]`,
  );
  const graph = [
    ...tiles,
    `[t0][t1][t2][t3]xstack=inputs=4:layout=0_0|w0_0|0_h0|w0_h0[v]`,
    `[0:a][1:a][2:a][3:a]amix=inputs=4:normalize=0[a]`,
  ].join(';');
  const encode = encoderArgs(mixEncoding(0, CANVAS, 2));
  return ['-hide_banner', '-y', '-loglevel', 'error', '-nostats', '-progress', 'pipe:1', ...inputs].concat([
    '-filter_complex',
    graph,
    '-map',
    '[v]',
    '-map',
    '[a]',
    ...encode,
    '-f',
    'flv',
    '/dev/null',
  ]);
}

export async function mixCost(b: Bench): Promise<MixResult> {
  const { stack } = b;
  const file = fixture('alice-camera.mp4');
  for (const userId of USERS) await stack.publish({ roomId: ROOM, userId, srcType: 0 }, file);
  const worker = () => stack.procs.find((p) => p.name.startsWith('worker'))!.child.pid!;
  const idle = await measure({ stack: (s) => subtree(s, stackRoots(stack)) }, b.seconds);
  const runs: MixResult['runs'] = [];
  for (let run = 0; run < b.runs; run++) {
    const res = await stack.request('POST', '/v1/mix/start', {
      roomId: ROOM,
      members: USERS.map((userId) => ({ userId, srcType: 0 })),
      layout: 'grid',
      canvas: CANVAS,
      option: { encode: 2 },
    });
    if (res.body?.code !== 0) throw new Error(`mix start refused: ${JSON.stringify(res.body)}`);
    const channelId = res.body.channelId as string;
    let relay;
    try {
      await sleep(b.short ? SHORT_WARMUP_MS : WARMUP_MS);
      relay = await measure(
        { stack: (s) => subtree(s, stackRoots(stack)), worker: (s) => subtree(s, [worker()]), node: () => [worker()] },
        b.seconds,
      );
    } finally {
      await stopPush(stack, [channelId]);
      await allInState(stack, [channelId], 'stopped', 15000);
    }
    const bare = spawnBare(bareArgs(file));
    let bareWin;
    try {
      await sleep(b.short ? SHORT_WARMUP_MS : WARMUP_MS);
      if (!bare.alive()) throw new Error(`bare ffmpeg exited:\n${bare.stderr.slice(-8).join('\n')}`);
      bareWin = await measure({ ff: (s) => subtree(s, [bare.child.pid!]) }, b.seconds);
    } finally {
      await killBare(bare.child);
    }
    const r = {
      stackPct: relay.percent('stack') - idle.percent('stack'),
      workerPct: relay.percent('worker'),
      nodePct: relay.percent('node'),
      barePct: bareWin.percent('ff'),
    };
    runs.push(r);
    b.log(
      `  mix run ${run + 1}/${b.runs}: stack ${r.stackPct.toFixed(1)} % (worker + feeders + encoder ${r.workerPct.toFixed(1)} %, of which the worker's Node ${r.nodePct.toFixed(1)} %), bare ffmpeg ${r.barePct.toFixed(1)} %`,
    );
    await sleep(3100); // the mix's start rate limit
  }
  const stackPct = median(runs.map((r) => r.stackPct));
  const barePct = median(runs.map((r) => r.barePct));
  return {
    members: USERS.length,
    canvas: `${CANVAS.width}x${CANVAS.height}@${CANVAS.fps}`,
    stackPct,
    workerPct: median(runs.map((r) => r.workerPct)),
    nodePct: median(runs.map((r) => r.nodePct)),
    barePct,
    ratio: stackPct / barePct,
    runs,
  };
}
