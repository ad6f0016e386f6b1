/**
 * 12. Density with one media node per core: the most copy channels that all stay real time (bench/lib/copy-channels.ts)
 * with the stack's media node and `nodes - 1` more beside it, channels spread by placement; at each step the same
 * work done bare — one bare ffmpeg per channel replaying its relay ffmpeg's argv (read from /proc: same upstream, the
 * same node to publish into, HLS into another folder), into the same media node processes — checked the same way.
 * CPU of the whole stack and of the floor (bare ffmpegs + the media nodes) above the idle (sources publishing, no
 * channel); per node: its channels (records), its beats' channels and CPU, its process's CPU.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { killBare, replayOf, spawnBare, type Bare } from '../lib/floor.js';
import { measure, subtree } from '../lib/proc.js';
import { allInState, sleep, stackRoots, stopPush, type Bench } from '../lib/context.js';
import {
  copyMember,
  copyUpstreams,
  RealTimeWatch,
  recordProgress,
  startCopyChannels,
  type RealTime,
} from '../lib/copy-channels.js';
import { beatsByPort, portOfNode, relayArgvs, stopExtraNodes, withNodes, type BenchNode } from '../lib/nodes.js';
import { NOISE_PCT } from './copy-cost.js';

const PUBLISHERS = 8;
/** A window with the machine busier than this (share of all its cores) is saturated. */
export const SATURATED = 0.9;
const saturated = (s: NodesSide) => s.machinePct >= SATURATED * os.availableParallelism() * 100;

/** One media node over a window. */
export interface NodeFigures {
  rtmpPort: number;
  /** channels whose record names it (relay) or publishing into it by hand (floor) */ channels: number;
  /** mean of its beats over the window */ beatChannels: number;
  /** mean of its beats' CPU, % of a core */ beatCpuPct: number;
  /** its process, read from /proc, % of a core */ procPct: number;
}
export interface NodesSide extends Omit<RealTime, 'failures'> {
  /** above the idle, % of a core (relay: the whole stack; floor: bare ffmpegs + the media nodes) */ cpuPct: number;
  /** relay only: the API and worker processes themselves (no ffmpeg), above the idle, % of a core */ controlPct?: number;
  machinePct: number;
  /** the machine's busy CPU not of this bench (another user's load: noise), % of a core */ othersPct: number;
  /** this bench's processes outside `cpuPct`'s (feeders, the bench's own Node process; floor: also the idle stack) */
  harnessPct: number;
  nodes: NodeFigures[];
  failures: string[];
}
export interface NodesStep {
  channels: number;
  /** a start refused (placement or admission): no window measured */ refused?: string;
  relay?: NodesSide;
  floor?: NodesSide;
  /** relay CPU ÷ floor CPU */ ratio: number | null;
}
export interface NodesResult {
  nodes: number;
  target: number;
  /** whole-stack CPU ÷ floor at most */ cpuTarget: number;
  /** most channels all real time, HLS gap-free (relay) */ max: number;
  /**
   * The step the CPU ratio is judged at: the most channels all real time with the machine below SATURATED in both
   * windows (a saturated machine gives each side what it has: their ratio says nothing); null: no such step.
   */
  judgedAt: number | null;
  seconds: number;
  idle: { stackPct: number; mediaPct: number; controlPct: number };
  steps: NodesStep[];
}

const member = copyMember(6000, 'n');

/** A step's timing: HLS segment length, the measured window (s), the settling before it (ms). */
interface Window {
  segSeconds: number;
  seconds: number;
  settleMs: number;
}

/** CPU of `nodes`' processes and a mean of their beats over a window; `measure` is the window itself. */
async function withBeats<T>(
  b: Bench,
  nodes: readonly BenchNode[],
  window: () => Promise<T>,
): Promise<{ result: T; beats: Map<number, { channels: number; cpu: number }> }> {
  const sums = new Map<number, { channels: number; cpu: number; n: number }>();
  let on = true;
  const sampler = (async () => {
    while (on) {
      await sleep(2000);
      for (const [port, beat] of await beatsByPort(b)) {
        const s = sums.get(port) ?? { channels: 0, cpu: 0, n: 0 };
        sums.set(port, {
          channels: s.channels + (beat.load?.channels ?? 0),
          cpu: s.cpu + (beat.load?.cpu ?? 0),
          n: s.n + 1,
        });
      }
    }
  })();
  const result = await window();
  on = false;
  await sampler;
  const beats = new Map<number, { channels: number; cpu: number }>();
  for (const n of nodes) {
    const s = sums.get(n.rtmpPort);
    beats.set(
      n.rtmpPort,
      s?.n ? { channels: s.channels / s.n, cpu: (s.cpu / s.n) * 100 } : { channels: NaN, cpu: NaN },
    );
  }
  return { result, beats };
}

/** The stack's API and worker processes themselves (their ffmpegs are not). */
const control = (b: Bench) =>
  b.stack.procs
    .filter((p) => /^(api|worker)/.test(p.name) && p.child.exitCode === null && p.child.signalCode === null)
    .map((p) => p.child.pid!);

/** One side's window: the real-time watch and CPU of `groups` ('all' and one per node). */
async function side(
  b: Bench,
  nodes: readonly BenchNode[],
  watch: RealTimeWatch,
  all: (s: Parameters<typeof subtree>[0]) => number[],
  counts: Map<number, number>,
  seconds: number,
  idle: { all: number; control?: number },
  check: () => void = () => undefined,
): Promise<NodesSide> {
  const groups: Record<string, (s: Parameters<typeof subtree>[0]) => number[]> = {
    all,
    control: () => control(b),
    // every process of this bench: the stack, feeders, bare ffmpegs are its descendants
    bench: (s) => subtree(s, [process.pid]),
  };
  for (const n of nodes) groups[`n${n.rtmpPort}`] = (s) => subtree(s, [n.pid]);
  await watch.start();
  const { result: win, beats } = await withBeats(b, nodes, () => measure(groups, seconds, check));
  const rt = await watch.finish();
  return {
    ...rt,
    failures: rt.failures.slice(0, 10),
    cpuPct: win.percent('all') - idle.all,
    ...(idle.control !== undefined ? { controlPct: win.percent('control') - idle.control } : {}),
    machinePct: win.machinePercent(),
    othersPct: Math.max(0, win.machinePercent() - win.percent('bench')),
    harnessPct: win.percent('bench') - win.percent('all'),
    nodes: nodes.map((n) => ({
      rtmpPort: n.rtmpPort,
      channels: counts.get(n.rtmpPort) ?? 0,
      beatChannels: beats.get(n.rtmpPort)!.channels,
      beatCpuPct: beats.get(n.rtmpPort)!.cpu,
      procPct: win.percent(`n${n.rtmpPort}`),
    })),
  };
}

const describe = (s: NodesSide) =>
  `${s.realTime ? 'all real time' : `${s.failures.length}+ failures`}, slowest ${s.minSpeed.toFixed(3)}×, ${s.hlsGaps} HLS gaps${s.hlsUnverified ? ` (${s.hlsUnverified} playlists partly unseen: the bench stalled)` : ''}, ` +
  `CPU ${s.cpuPct.toFixed(0)} %${s.controlPct !== undefined ? ` (API + worker ${s.controlPct.toFixed(0)} %)` : ''} (machine ${s.machinePct.toFixed(0)} %, others ${s.othersPct.toFixed(0)} %, bench harness ${s.harnessPct.toFixed(0)} %), nodes ` +
  s.nodes.map((n) => `${n.channels} ch ${n.procPct.toFixed(0)} % (beats ${n.beatCpuPct.toFixed(0)} %)`).join(' / ') +
  (s.failures.length ? ` (${s.failures.slice(0, 3).join('; ')})` : '');

export async function nodesDensity(
  b: Bench,
  opts: {
    nodes: number;
    from: number;
    to: number;
    step: number;
    seconds: number;
    /** from all live (or all spawned) to the window */ settleMs: number;
    target: number;
    cpuTarget: number;
  },
): Promise<NodesResult> {
  const { stack } = b;
  // the sources are placed while the stack's own node is the only one: the ingest they read is published there too
  const publishers = Math.min(PUBLISHERS, Math.ceil(opts.to / 4));
  const sourceIds = await copyUpstreams(b, { room: 5990, prefix: 'nsrc', publishers, members: opts.to, member });
  const nodes = await withNodes(b, opts.nodes);
  const segSeconds = Number(stack.env.RELAY_HLS_SEGMENT_SECONDS ?? 2);
  const steps: NodesStep[] = [];
  try {
    await sleep(3000);
    const idle = await measure(
      {
        stack: (s) => subtree(s, stackRoots(stack)),
        media: (s) =>
          subtree(
            s,
            nodes.map((n) => n.pid),
          ),
        control: () => control(b),
      },
      Math.min(opts.seconds, 20),
    );
    const idlePct = {
      stackPct: idle.percent('stack'),
      mediaPct: idle.percent('media'),
      controlPct: idle.percent('control'),
    };
    b.log(
      `  idle, ${nodes.length} media nodes and ${publishers} sources: stack ${idlePct.stackPct.toFixed(1)} %, media nodes ${idlePct.mediaPct.toFixed(1)} %`,
    );
    for (let n = opts.from; n <= opts.to; n += opts.step) {
      const step = await oneStep(b, nodes, n, { segSeconds, seconds: opts.seconds, settleMs: opts.settleMs }, idlePct);
      steps.push(step);
      if (step.refused || !step.relay?.realTime) break;
    }
    return {
      nodes: nodes.length,
      target: opts.target,
      cpuTarget: opts.cpuTarget,
      max: Math.max(0, ...steps.filter((s) => s.relay?.realTime).map((s) => s.channels)),
      judgedAt:
        steps.filter((s) => s.relay?.realTime && s.ratio !== null && !saturated(s.relay) && !saturated(s.floor!)).at(-1)
          ?.channels ?? null,
      seconds: opts.seconds,
      idle: idlePct,
      steps,
    };
  } finally {
    await stopPush(stack, sourceIds);
    await stopExtraNodes(nodes);
  }
}

async function oneStep(
  b: Bench,
  nodes: readonly BenchNode[],
  n: number,
  w: Window,
  idle: NodesResult['idle'],
): Promise<NodesStep> {
  const { stack } = b;
  const { started, refused } = await startCopyChannels(b, n, member);
  const ids = started.map((s) => s.channelId);
  let relay: NodesSide;
  let argvs: Map<string, string[]>;
  const counts = new Map<number, number>();
  try {
    if (refused) {
      b.log(`  ${n} channels: start refused after ${started.length}: ${refused}`);
      return { channels: n, refused: `after ${started.length} channels: ${refused}`, ratio: null };
    }
    await allInState(stack, ids, 'live', 120_000);
    await sleep(w.settleMs);
    for (const r of await stack.redis.mget(...ids.map((id) => `${stack.prefix}:channel:${id}`))) {
      const port = portOfNode(r ? (JSON.parse(r) as { mediaNode?: string }).mediaNode : undefined) ?? stack.rtmpPort;
      counts.set(port, (counts.get(port) ?? 0) + 1);
    }
    const watch = new RealTimeWatch({
      names: ids,
      playlists: ids.map((id) => path.join(stack.dataDir, 'hls', id, 'index.m3u8')),
      urls: started.map((x) => x.urls.find((u) => u.type === 1)!.playUrl),
      segSeconds: w.segSeconds,
      progress: recordProgress(b, ids),
    });
    const all = (s: Parameters<typeof subtree>[0]) => subtree(s, stackRoots(stack));
    relay = await side(b, nodes, watch, all, counts, w.seconds, { all: idle.stackPct, control: idle.controlPct });
    argvs = relayArgvs(ids);
    b.log(`  ${n} channels, relay: ${describe(relay)}; playlist served in ${relay.playlistP95Ms} ms p95`);
  } finally {
    await stopPush(stack, ids);
    await allInState(stack, ids, 'stopped', 60_000).catch((e: Error) => b.log(`  (${e.message})`));
    // a bare ffmpeg's publish is refused while the relay's still holds the stream
    for (let t = 0; t < 100 && relayArgvs(ids).size; t++) await sleep(100);
    await sleep(1000);
  }
  const floor = await floorSide(b, nodes, ids, argvs, counts, w, idle.mediaPct);
  const ratio = relay.cpuPct < NOISE_PCT || floor.cpuPct < NOISE_PCT ? null : relay.cpuPct / floor.cpuPct;
  b.log(`  ${n} channels, floor: ${describe(floor)}; ratio ${ratio === null ? 'n/a' : ratio.toFixed(2)}`);
  return { channels: n, relay, floor, ratio };
}

/** The floor of a step: a bare ffmpeg per channel replaying its relay ffmpeg's argv, into the same media nodes. */
async function floorSide(
  b: Bench,
  nodes: readonly BenchNode[],
  ids: readonly string[],
  argvs: Map<string, string[]>,
  /** channels per node (the relay's: each bare ffmpeg publishes where its relay ffmpeg did) */
  counts: Map<number, number>,
  w: Window,
  idleMediaPct: number,
): Promise<NodesSide> {
  const { stack } = b;
  const bare: Bare[] = [];
  const restores: (() => Promise<void>)[] = [];
  const replayed = ids.filter((id) => argvs.has(id));
  try {
    for (let i = 0; i < replayed.length; i += 10) {
      // run tokens are single use and short lived: each batch gets its own right before it spawns
      const batch = await Promise.all(
        replayed.slice(i, i + 10).map(async (id) => ({
          ...(await replayOf(stack, id, argvs.get(id)!)),
          ffmpeg: argvs.get(id)![0],
        })),
      );
      for (const r of batch) {
        restores.push(r.restore);
        bare.push(spawnBare(r.args, r.ffmpeg));
      }
      await sleep(100);
    }
    // as the relay's channels were live before their settling: every bare ffmpeg has reported output
    for (let t = 0; t < 600 && bare.some((x) => x.alive() && x.progress.at === 0); t++) await sleep(100);
    await sleep(w.settleMs);
    const bareRoot = path.join(stack.dataDir, 'bare-hls');
    const watch = new RealTimeWatch({
      names: replayed.map((id) => `bare ${id}`),
      playlists: replayed.map((id) => path.join(bareRoot, id, 'index.m3u8')),
      urls: [],
      segSeconds: w.segSeconds,
      progress: async () => bare.map((x) => ({ outTimeMs: x.progress.outTimeMs, at: x.progress.at })),
    });
    const all = (s: Parameters<typeof subtree>[0]) =>
      subtree(s, [...nodes.map((x) => x.pid), ...bare.map((x) => x.child.pid!)]);
    const dead = () => {
      const gone = bare.find((x) => !x.alive());
      if (gone) throw new Error(`a bare ffmpeg of the floor died: ${gone.stderr.slice(-3).join(' | ')}`);
    };
    const floor = await side(b, nodes, watch, all, counts, w.seconds, { all: idleMediaPct }, dead);
    if (replayed.length < ids.length) floor.failures.unshift(`${ids.length - replayed.length} relay argv not found`);
    return floor;
  } finally {
    await Promise.all(bare.map((x) => killBare(x.child)));
    for (const r of restores) await r();
    fs.rmSync(path.join(stack.dataDir, 'bare-hls'), { recursive: true, force: true });
    await sleep(2000);
  }
}
