/**
 * `npm run bench`: the relay against its floor — bare ffmpeg processes started by hand, with the same arguments, into
 * the same node-media-server — on one machine, in one run, each scenario in bench/scenarios/:
 *
 *   1. latency       start call → first FLV video tag at a viewer, and → first HLS segment listed; p50/p95
 *   2. cost          CPU of the whole stack ÷ CPU of the floor at 1, 10, 50 concurrent copy channels; memory
 *   3. density       the most concurrent copy channels that all stay real time for 60 s
 *   4. tiers         CPU of one channel per tier combination ÷ bare ffmpeg with the same argv
 *   5. fanout        1, 50, 200 HTTP-FLV viewers: media-server CPU and memory, whether every viewer keeps up
 *   6. failover      gap an FLV viewer sees when its worker is killed (SIGKILL) or stopped (SIGTERM)
 *   7. control       start/stop/status API latency with 1,000 channel records
 *   8. conversion    CPU of ORIGINAL's relay ffmpeg per converted kind (Opus, VP8, HEVC, AV1, rotated, video only)
 *                    ÷ bare ffmpeg replaying its argv
 *   9. whip          start → first FLV keyframe of WHIP members (H.264 copied, VP8 converted) beside the RTMP member;
 *                    CPU per WHIP member (its bridge ffmpeg, the media process's share)
 *  10. mix           CPU of a mix of 4 members (720p30, grid on 1280×720 30 fps) beside one bare ffmpeg doing the same
 *                    composition (xstack + amix + x264 to FLV)
 *  11. edge          N HLS viewers (1,000) of a two-tier channel through the shipped nginx edge: origin requests per
 *                    segment per variant, edge and media-server CPU, whether every viewer kept up
 *  12. nodes         density with one media node per core (channels spread by placement): the most copy channels all
 *                    real time and HLS gap-free; whole-stack CPU ÷ the same work bare (bare ffmpegs into the same media
 *                    nodes); channels and CPU per node
 *  13. node-loss     N copy channels over two media nodes, FLV viewers on the stable URL of the second node's channels;
 *                    SIGKILL of that node: kill → each viewer's first keyframe again, kill → every moved channel live
 *  14. stable-urls   a play asked at the node that does not hold the channel: first keyframe direct, redirected
 *                    (HTTP-FLV 302) and carried (WS-FLV); that node's CPU with N viewers redirected and carried
 *
 *   npm run bench [-- --runs N] [--only latency,tiers,…] [--seconds S] [--density-from N] [--density-to N] [--short]
 *                 [--nodes-from N] [--nodes-to N] [--nodes-step N] [--nodes-seconds S] [--loss-channels N]
 *                 [--into bench/results/suite-<date>.json]   (replace the scenarios run now in an earlier run's results)
 *
 * CPU-heavy scenarios run N times (default 3) and report medians, their ratios measured in the same run. `--short`
 * (CI, inside `npm test`) runs everything for a few seconds so it cannot rot. Prints tables, checks the targets of
 * this 2-core machine, and writes bench/results/suite-<date>[-short].json plus a chart (.svg and .png).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { FFMPEG, fixture, startStack, type Stack } from '../test/helpers/stack.js';
import { killAllBare } from './lib/floor.js';
import type { Bench } from './lib/context.js';
import { startLatency, type LatencyResult } from './scenarios/latency.js';
import { copyCost, type CostResult } from './scenarios/copy-cost.js';
import { density, type DensityResult } from './scenarios/density.js';
import { tierCosts, type TierResult } from './scenarios/tiers.js';
import { fanOut, type FanOutResult } from './scenarios/fanout.js';
import { failover, type FailoverResult } from './scenarios/failover.js';
import { controlPlane, type ControlPlaneResult } from './scenarios/control-plane.js';
import { conversionCosts, type ConversionResult } from './scenarios/conversion.js';
import { whipMembers, type WhipResult } from './scenarios/whip.js';
import { mixCost, type MixResult } from './scenarios/mix.js';
import { edgeFanOut, type EdgeResult } from './scenarios/edge.js';
import { nodesDensity, SATURATED, type NodesResult } from './scenarios/nodes.js';
import { nodeLoss, type NodeLossResult } from './scenarios/node-loss.js';
import { stableUrls, type StableUrlsResult } from './scenarios/stable-urls.js';
import { nginxMissing } from '../test/helpers/nginx-edge.js';
import { writeChart } from './chart.js';

const SCENARIOS = [
  'latency',
  'whip',
  'tiers',
  'conversion',
  'failover',
  'fanout',
  'control',
  'cost',
  'density',
  'mix',
  'edge',
  'nodes',
  'node-loss',
  'stable-urls',
] as const;
type ScenarioName = (typeof SCENARIOS)[number];

function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  const eq = process.argv.find((a) => a.startsWith(`--${name}=`));
  return eq ? eq.slice(name.length + 3) : i >= 0 ? process.argv[i + 1] : undefined;
}
function positive(name: string, dflt: number): number {
  const raw = option(name);
  if (raw === undefined) return dflt;
  const v = Number(raw);
  if (!Number.isFinite(v) || v <= 0) {
    console.error(`--${name} needs a positive number (got ${raw})`);
    process.exit(2);
  }
  return v;
}

const SHORT = process.argv.includes('--short');
const RUNS = Math.round(positive('runs', SHORT ? 1 : 3));
const SECONDS = positive('seconds', SHORT ? 2 : 20);
const ONLY = (option('only') ?? SCENARIOS.join(','))
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
for (const o of ONLY)
  if (!SCENARIOS.includes(o as ScenarioName)) {
    console.error(`--only: unknown scenario ${o} (one of ${SCENARIOS.join(', ')})`);
    process.exit(2);
  }
const runs = (s: ScenarioName) => ONLY.includes(s);
const INTO = option('into');

export interface Target {
  name: string;
  target: string;
  value: string;
  met: boolean | null;
}

export interface SuiteResults {
  date: string;
  machine: string;
  ffmpeg: string;
  short: boolean;
  runs: number;
  seconds: number;
  /** scenarios measured again later (--into), with the date */
  remeasured?: Record<string, string>;
  latency?: LatencyResult;
  whip?: WhipResult;
  cost?: CostResult[];
  density?: DensityResult;
  tiers?: TierResult[];
  conversion?: ConversionResult[];
  fanOut?: FanOutResult[];
  failover?: FailoverResult;
  controlPlane?: ControlPlaneResult;
  mix?: MixResult;
  edge?: EdgeResult;
  nodes?: NodesResult;
  nodeLoss?: NodeLossResult;
  stableUrls?: StableUrlsResult;
  targets?: Target[];
}

/** The targets of the issue for this 2-core machine; null: not measured in this run (or a short run). */
function targets(r: SuiteResults): Target[] {
  const t: Target[] = [];
  const judge = (ok: boolean) => (r.short ? null : ok);
  if (r.latency) {
    t.push({
      name: 'start → first FLV video tag, p50',
      target: '≤ 500 ms',
      value: `${r.latency.relay.flvP50} ms`,
      met: judge(r.latency.relay.flvP50 <= 500),
    });
    t.push({
      name: 'start → first HLS segment, p50',
      target: '≤ 1500 ms',
      value: `${r.latency.relay.hlsP50} ms`,
      met: judge(r.latency.relay.hlsP50 <= 1500),
    });
  }
  if (r.whip)
    for (const m of ['whip-h264', 'whip-vp8'] as const)
      t.push({
        name: `start → first FLV keyframe, ${m} member, p50 (RTMP member ${r.whip.flv.rtmp.p50} ms)`,
        target: '≤ 500 ms',
        value: `${r.whip.flv[m].p50} ms`,
        met: judge(r.whip.flv[m].p50 <= 500),
      });
  const c50 = r.cost?.find((c) => c.channels === 50);
  if (c50)
    t.push({
      name: 'whole-stack CPU per copy channel at 50 channels ÷ floor',
      target: '≤ 1.2×',
      value: c50.ratio === null ? 'n/a' : `${c50.ratio.toFixed(2)}×`,
      met: c50.ratio === null ? null : judge(c50.ratio <= 1.2),
    });
  if (r.density)
    t.push({
      name: 'density: concurrent copy channels in real time',
      target: `≥ ${r.density.target}`,
      value: r.density.max ? String(r.density.max) : `< ${r.density.steps[0]?.channels ?? '?'}`,
      met: judge(r.density.max >= r.density.target),
    });
  if (r.nodes) {
    const at = r.nodes.steps.find((s) => s.channels === r.nodes!.judgedAt);
    const top = r.nodes.steps.find((s) => s.channels === r.nodes!.max);
    t.push({
      name: `nodes: copy channels all real time, HLS gap-free, ${r.nodes.nodes} media nodes`,
      target: `≥ ${r.nodes.target}`,
      value: r.nodes.max ? String(r.nodes.max) : `< ${r.nodes.steps[0]?.channels ?? '?'}`,
      met: judge(r.nodes.max >= r.nodes.target),
    });
    t.push({
      name: `nodes: stack CPU ÷ floor at ${at ? at.channels : '–'} channels, most unsaturated (${r.nodes.max}: ${top?.ratio == null ? 'n/a' : `${top.ratio.toFixed(2)}×`})`,
      target: `≤ ${r.nodes.cpuTarget}×`,
      value: at?.ratio == null ? 'n/a' : `${at.ratio.toFixed(2)}×`,
      met: at?.ratio == null ? null : judge(at.ratio <= r.nodes.cpuTarget),
    });
  }
  if (r.nodeLoss)
    t.push({
      name: `node loss: kill → keyframe on the same FLV URL, worst viewer (p50 ${r.nodeLoss.gapP50} ms)`,
      target: '≤ 5000 ms',
      value: `${r.nodeLoss.gapMax} ms`,
      met: judge(r.nodeLoss.gapMax <= 5000),
    });
  for (const x of r.tiers?.filter((x) => x.key !== 'original') ?? [])
    t.push({
      name: `tier CPU ${x.label} ÷ bare ffmpeg`,
      target: '≤ 1.05×',
      value: `${x.ratio.toFixed(2)}×`,
      met: judge(x.ratio <= 1.05),
    });
  for (const x of r.conversion?.filter((x) => x.key !== 'copy') ?? [])
    t.push({
      name: `conversion CPU ${x.key}: relay ffmpeg ÷ bare ffmpeg`,
      target: '≤ 1.05×',
      value: `${x.ratio.toFixed(2)}×`,
      met: judge(x.ratio <= 1.05),
    });
  if (r.failover) {
    t.push({
      name: 'failover gap, SIGKILL (worst run)',
      target: '≤ 5000 ms',
      value: `${Math.max(...r.failover.sigkill.gapsMs)} ms (p50 ${r.failover.sigkill.p50})`,
      met: judge(Math.max(...r.failover.sigkill.gapsMs) <= 5000),
    });
    t.push({
      name: 'failover gap, SIGTERM (worst run)',
      target: '≤ 2000 ms',
      value: `${Math.max(...r.failover.sigterm.gapsMs)} ms (p50 ${r.failover.sigterm.p50})`,
      met: judge(Math.max(...r.failover.sigterm.gapsMs) <= 2000),
    });
  }
  return t;
}

function table(headers: string[], rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map(String));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]!.length)));
  const line = (c: string[]) =>
    `  ${c.map((x, i) => (i === 0 ? x.padEnd(widths[i]!) : x.padStart(widths[i]!))).join(' | ')}`;
  return [line(headers), ...cells.map(line)].join('\n');
}

function report(r: SuiteResults): void {
  const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '–');
  console.log(`\nbypass live relay benchmark — ${r.date} — ${r.machine}${r.short ? ' — SHORT run' : ''}`);
  console.log(
    `${r.ffmpeg}; CPU in % of one core; ${r.seconds} s windows; noisy scenarios: medians of ${r.runs} run(s)`,
  );
  for (const [name, at] of Object.entries(r.remeasured ?? {})) console.log(`${name}: measured again ${at}`);
  console.log('');
  if (r.latency) {
    const { relay, floor, runs: n } = r.latency;
    console.log(
      `start latency (${n} starts, upstream already live)       relay p50 / p95      floor (bare ffmpeg) p50 / p95`,
    );
    console.log(
      `  start call → first FLV video tag at a viewer       ${relay.flvP50} / ${relay.flvP95} ms       ${floor.flvP50} / ${floor.flvP95} ms (from spawn)`,
    );
    console.log(
      `  start call → first HLS segment listed              ${relay.hlsP50} / ${relay.hlsP95} ms       ${floor.hlsP50} / ${floor.hlsP95} ms (from spawn)`,
    );
    console.log(`  start API answer                                    ${relay.apiP50} ms p50\n`);
    const behind = r.latency.behindLive;
    if (behind) {
      const { relay: rl, floor: fl } = behind;
      console.log(
        `behind live, as the client player sees it (npm run cli -- play, ${behind.seconds} s)   relay      floor`,
      );
      console.log(`  HTTP-FLV (relay clock)                              ${rl.flvMs} ms    ${fl.flvMs} ms`);
      console.log(
        `  HLS (PROGRAM-DATE-TIME; a live client starts 3 target durations back)  ${rl.hlsMs} ms    ${fl.hlsMs} ms`,
      );
      console.log(
        `  first frame FLV / HLS                               ${rl.flvFirstFrameMs} / ${rl.hlsFirstFrameMs} ms    ${fl.flvFirstFrameMs} / ${fl.hlsFirstFrameMs} ms; stalls ${rl.stalls} / ${fl.stalls}\n`,
      );
    }
  }
  if (r.cost) {
    console.log(
      'cost of N copy channels (720p30 1.5 Mbit/s, RTMP + HLS out; CPU above the idle stack with every member publishing)',
    );
    console.log(
      table(
        [
          'channels',
          'whole stack CPU',
          'floor CPU (bare ffmpeg + media server)',
          'ratio',
          'MiB/channel stack',
          'floor',
        ],
        r.cost.map((c) => [
          c.channels,
          `${f1(c.stackPct)}%`,
          `${f1(c.floorPct)}%`,
          c.ratio === null ? 'n/a' : c.ratio.toFixed(2),
          f1(c.stackMiBPerChannel),
          f1(c.floorMiBPerChannel),
        ]),
      ) + '\n',
    );
  }
  if (r.density) {
    console.log(`density: copy channels that all stay real time for ${r.density.seconds} s (speed ≥ 0.98, no HLS gap)`);
    console.log(
      table(
        ['channels', 'all real time', 'slowest speed', 'HLS gaps', 'machine CPU', 'playlist HTTP p95'],
        r.density.steps.map((s) => [
          s.channels,
          s.realTime ? 'yes' : 'no',
          s.minSpeed.toFixed(3),
          s.hlsGaps,
          `${s.machinePct.toFixed(0)}%`,
          `${s.playlistP95Ms} ms`,
        ]),
      ),
    );
    console.log(`  most channels in real time: ${r.density.max || `fewer than ${r.density.steps[0]?.channels}`}\n`);
  }
  if (r.nodes) {
    const n = r.nodes;
    console.log(
      `nodes: copy channels with ${n.nodes} media nodes, all real time for ${n.seconds} s (speed ≥ 0.98, no HLS gap); ` +
        `CPU above the idle (stack ${f1(n.idle.stackPct)} %, media nodes ${f1(n.idle.mediaPct)} %, API + worker ` +
        `${f1(n.idle.controlPct)} %) beside the floor`,
    );
    const side = (x: NonNullable<(typeof n.steps)[number]['relay']>) =>
      `${x.realTime ? 'yes' : 'no'} ${x.minSpeed.toFixed(3)} ${x.hlsGaps}`;
    const perNode = (x: NonNullable<(typeof n.steps)[number]['relay']>) =>
      x.nodes.map((d) => `${d.channels}: ${f1(d.procPct)}% (${f1(d.beatCpuPct)}%)`).join(' / ');
    console.log(
      table(
        [
          'channels',
          'relay: real time, slowest, gaps',
          'floor',
          'stack CPU (API + worker)',
          'floor CPU',
          'ratio',
          'machine (others)',
          'relay per node: channels: CPU (beats)',
          'floor per node',
        ],
        n.steps.map((s) =>
          s.relay && s.floor
            ? [
                s.channels,
                side(s.relay),
                side(s.floor),
                `${f1(s.relay.cpuPct)}% (${f1(s.relay.controlPct ?? NaN)}%)`,
                `${f1(s.floor.cpuPct)}%`,
                s.ratio === null ? 'n/a' : s.ratio.toFixed(2),
                `${s.relay.machinePct.toFixed(0)}% (${s.relay.othersPct.toFixed(0)}%)`,
                perNode(s.relay),
                s.floor.nodes.map((d) => `${f1(d.procPct)}%`).join(' / '),
              ]
            : [s.channels, `refused ${s.refused ?? ''}`.slice(0, 60), '', '', '', '', '', '', ''],
        ),
      ),
    );
    console.log(
      `  most channels in real time: ${n.max || `fewer than ${n.steps[0]?.channels}`}; CPU ratio judged at ` +
        `${n.judgedAt ?? 'no step'} (the most below ${SATURATED * 100} % of the machine in both windows)\n`,
    );
  }
  if (r.nodeLoss) {
    const l = r.nodeLoss;
    console.log(
      `node loss: ${l.channels} copy channels on 2 media nodes, SIGKILL of one (${l.runs.length} runs, ` +
        `${l.runs.map((x) => x.moved).join(' / ')} channels on it): kill → first keyframe on the same FLV URL p50 ${l.gapP50} ms, ` +
        `max ${l.gapMax} ms; kill → every moved channel live elsewhere p50 ${l.allLiveP50} ms, max ${l.allLiveMax} ms; ` +
        `the surviving node's channels: largest gap between video tags ${l.survivorMaxGapMs ?? '–'} ms\n`,
    );
  }
  if (r.stableUrls) {
    const u = r.stableUrls;
    console.log(
      `stable URLs: first keyframe (median of ${u.trials}) ${u.firstKeyframeMs.direct} ms at the channel's node, ` +
        `${u.firstKeyframeMs.redirected} ms redirected (HTTP-FLV), WS-FLV ${u.firstKeyframeMs.wsDirect} ms direct / ` +
        `${u.firstKeyframeMs.wsCarried} ms carried; the asked node with ${u.viewers} viewers for ${u.seconds} s: ` +
        `${f1(u.askedNodePct.idle)} % idle, ${f1(u.askedNodePct.redirected)} % redirected, ` +
        `${f1(u.askedNodePct.carried)} % carried (channel's node ${f1(u.channelNodePct.redirected)} / ` +
        `${f1(u.channelNodePct.carried)} %)\n`,
    );
  }
  if (r.edge)
    console.log(
      `edge: ${r.edge.viewers} HLS viewers (two variants) through nginx for ${r.edge.seconds} s: origin ` +
        `${r.edge.originPerSegment.toFixed(2)} requests per segment per variant, ${r.edge.originPlaylistsPerS.toFixed(1)} playlist requests/s; ` +
        `edge ${f1(r.edge.edgePct)} %, media server ${f1(r.edge.mediaPct)} %; ${r.edge.servedMbps.toFixed(0)} Mbit/s served; ` +
        `slowest viewer ${r.edge.slowest.toFixed(2)} of the most segments\n`,
    );
  if (r.mix)
    console.log(
      `mix: ${r.mix.members} members (720p30) on ${r.mix.canvas}: whole stack ${f1(r.mix.stackPct)} % ` +
        `(worker + feeders + encoder ${f1(r.mix.workerPct)} %, its Node ${f1(r.mix.nodePct)} %), one bare ffmpeg (xstack + amix + x264) ` +
        `${f1(r.mix.barePct)} %, ratio ${r.mix.ratio.toFixed(2)}\n`,
    );
  if (r.tiers) {
    console.log('tiers: one channel (whole stack above idle) beside bare ffmpeg with the same argv + media server');
    console.log(
      table(
        ['tier', 'whole stack', 'relay ffmpeg', 'bare ffmpeg', 'bare + media server', 'ratio', 'fps relay / bare'],
        r.tiers.map((x) => [
          x.label,
          `${f1(x.stackPct)}%`,
          `${f1(x.relayFfmpegPct)}%`,
          `${f1(x.bareFfmpegPct)}%`,
          `${f1(x.barePlusMediaPct)}%`,
          x.ratio.toFixed(2),
          `${f1(x.relayFps)} / ${f1(x.bareFps)}`,
        ]),
      ) + '\n',
    );
  }
  if (r.conversion) {
    console.log(
      "conversion: ORIGINAL's relay ffmpeg per upstream kind (720p30 file, RTMP + HLS out) beside bare ffmpeg, same argv",
    );
    console.log(
      table(
        ['upstream kind', 'tracks', 'encoders', 'relay ffmpeg', 'bare ffmpeg', 'ratio', 'fps relay / bare'],
        r.conversion.map((x) => [
          x.label,
          x.tracks,
          x.encoders,
          `${f1(x.relayPct)}%`,
          `${f1(x.barePct)}%`,
          x.ratio.toFixed(2),
          `${f1(x.relayFps)} / ${f1(x.bareFps)}`,
        ]),
      ) + '\n',
    );
  }
  if (r.fanOut) {
    console.log('fan-out: HTTP-FLV viewers of one channel');
    console.log(
      table(
        ['viewers', 'media server CPU', 'media server MiB', 'slowest viewer ÷ fastest'],
        r.fanOut.map((v) => [v.viewers, `${f1(v.mediaPct)}%`, f1(v.mediaMiB), v.slowest.toFixed(2)]),
      ) + '\n',
    );
  }
  if (r.whip) {
    const f = r.whip.flv;
    console.log(`WHIP members beside an RTMP member (${r.whip.starts} starts each): start call → first FLV keyframe`);
    for (const m of ['rtmp', 'whip-h264', 'whip-vp8'] as const)
      console.log(`  ${m.padEnd(10)} p50 ${f[m].p50} ms, p95 ${f[m].p95} ms`);
    for (const c of r.whip.cpu)
      console.log(`  CPU per WHIP ${c.codec} member: bridge ffmpeg ${c.bridgePct} %, media process +${c.mediaPct} %`);
    console.log('');
  }
  if (r.failover) {
    console.log(`failover: largest gap between FLV video tags at a viewer (${r.failover.sigkill.gapsMs.length} runs)`);
    console.log(
      `  SIGKILL of the worker: p50 ${r.failover.sigkill.p50} ms, runs ${r.failover.sigkill.gapsMs.join(' / ')} ms`,
    );
    console.log(
      `  SIGTERM of the worker: p50 ${r.failover.sigterm.p50} ms, runs ${r.failover.sigterm.gapsMs.join(' / ')} ms\n`,
    );
  }
  if (r.controlPlane) {
    const cp = r.controlPlane;
    console.log(
      `control plane with ${cp.records} channel records: start p50/p99 ${cp.startP50}/${cp.startP99} ms (includes media start), stop ${cp.stopP50}/${cp.stopP99} ms, status ${cp.statusP50}/${cp.statusP99} ms\n`,
    );
  }
  if (r.targets?.length) {
    console.log('targets (this 2-core machine)');
    console.log(
      table(
        ['figure', 'target', 'measured', 'met'],
        r.targets.map((t) => [t.name, t.target, t.value, t.met === null ? '–' : t.met ? 'yes' : 'NO']),
      ),
    );
  }
}

let stack: Stack | null = null;
let cleaning: Promise<void> | null = null;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await killAllBare();
    await stack?.close().catch((e: Error) => console.error(`stack close: ${e.message}`));
  })();
  return cleaning;
}
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.once(sig, () => {
    console.error(`\n${sig}: cleaning up…`);
    void cleanup().finally(() => process.exit(130));
  });

async function main(): Promise<void> {
  const cpus = os.cpus();
  const machine = `${cpus[0]?.model.trim() ?? 'cpu'}, ${cpus.length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}`;
  let ffmpeg = '?';
  try {
    ffmpeg = execFileSync(FFMPEG, ['-hide_banner', '-version'], { encoding: 'utf8' }).split('\n')[0]!;
  } catch {
    /* reported by the stack */
  }
  const now = new Date().toISOString();
  const results: SuiteResults = INTO
    ? (JSON.parse(fs.readFileSync(INTO, 'utf8')) as SuiteResults)
    : { date: now, machine, ffmpeg, short: SHORT, runs: RUNS, seconds: SECONDS };
  if (INTO && results.short !== SHORT)
    throw new Error(`--into ${INTO}: ${results.short ? 'a short' : 'a full'} run's results; run this one the same way`);
  console.log(`bench: ${ONLY.join(', ')}${SHORT ? ' (short)' : ''}; ${RUNS} run(s), ${SECONDS} s windows`);
  stack = await startStack({
    env: {
      RELAY_LOG_LEVEL: 'warn',
      RELAY_MAX_CHANNELS_PER_ROOM: '4',
      // the density scenarios look for the point where real time is lost: neither the workers' CPU-cost admission nor a
      // media node's channel limit (placement) may stop them first. 250 channels a node (150 by default): density's
      // 240 on one node, nodes' 400 on two; not more, as placement spreads channels by the lower of a node's channel
      // room and its CPU room (a far higher limit leaves only the CPU room, which lags the starts by a beat)
      RELAY_WORKER_CONCURRENCY: '600',
      RELAY_WORKER_CAPACITY: '64',
      RELAY_NODE_MAX_CHANNELS: '250',
    },
  });
  await stack.request(
    'PATCH',
    '/admin/v1/accounts/default',
    { channelLimit: 1000 },
    { authorization: stack.adminAuth },
  );
  await stack.publish({ roomId: 1001, userId: 'alice', srcType: 0 }, fixture('alice-camera.mp4'));
  const b: Bench = { stack, short: SHORT, seconds: SECONDS, runs: RUNS, log: (l) => console.log(l) };
  for (const name of SCENARIOS.filter(runs)) {
    const t0 = Date.now();
    console.log(`${name}…`);
    switch (name) {
      case 'latency':
        results.latency = await startLatency(b, SHORT ? 2 : 20);
        break;
      case 'whip':
        results.whip = await whipMembers(b, SHORT ? 1 : 10);
        break;
      case 'mix':
        results.mix = await mixCost(b);
        break;
      case 'edge':
        if (nginxMissing()) console.log(`edge: skipped: ${nginxMissing()}`);
        else results.edge = await edgeFanOut(b, SHORT ? 20 : 1000);
        break;
      case 'tiers':
        results.tiers = await tierCosts(b, SHORT ? ['original', '0+10+20+wm'] : undefined);
        break;
      case 'conversion':
        results.conversion = await conversionCosts(b, SHORT ? ['vp8'] : undefined);
        break;
      case 'failover':
        results.failover = await failover(b, SHORT ? 1 : Math.max(RUNS, 5));
        break;
      case 'fanout':
        results.fanOut = await fanOut(b, SHORT ? [1, 20] : [1, 50, 200]);
        break;
      case 'control':
        results.controlPlane = await controlPlane(b, 1000, SHORT ? 3 : 20);
        break;
      case 'cost':
        results.cost = await copyCost(b, SHORT ? [1, 4] : [1, 10, 50]);
        break;
      case 'density':
        results.density = await density(
          b,
          SHORT
            ? { from: 8, to: 8, step: 8, seconds: 4, target: 80 }
            : {
                from: positive('density-from', 80),
                to: positive('density-to', 240),
                step: 20,
                seconds: 60,
                target: 80,
              },
        );
        break;
      case 'nodes':
        results.nodes = await nodesDensity(
          b,
          SHORT
            ? { nodes: 2, from: 8, to: 8, step: 8, seconds: 4, settleMs: 2000, target: 300, cpuTarget: 1.1 }
            : {
                nodes: Math.max(2, os.availableParallelism()),
                from: positive('nodes-from', 100),
                to: positive('nodes-to', 400),
                step: positive('nodes-step', 20),
                seconds: positive('nodes-seconds', 60),
                settleMs: 5000,
                target: 300,
                cpuTarget: 1.1,
              },
        );
        break;
      case 'node-loss':
        results.nodeLoss = await nodeLoss(b, {
          channels: SHORT ? 4 : positive('loss-channels', 20),
          runs: SHORT ? 1 : RUNS,
        });
        break;
      case 'stable-urls':
        results.stableUrls = await stableUrls(b);
        break;
    }
    if (INTO) results.remeasured = { ...results.remeasured, [name]: now };
    console.log(`${name}: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }
  results.targets = targets(results);
  report(results);
  const dir = path.join(path.dirname(new URL(import.meta.url).pathname), 'results');
  fs.mkdirSync(dir, { recursive: true });
  const base = INTO
    ? INTO.replace(/\.json$/, '')
    : path.join(
        dir,
        `suite-${results.date.slice(0, 10)}${SHORT ? '-short' : ''}${ONLY.length < SCENARIOS.length ? `-${ONLY.join('-')}` : ''}`,
      );
  fs.writeFileSync(`${base}.json`, JSON.stringify(results, null, 2) + '\n');
  const chart = await writeChart(results, base);
  console.log(
    `\nresults: ${path.relative(process.cwd(), `${base}.json`)}\nchart: ${path.relative(process.cwd(), chart.png)}`,
  );
}

let failed = false;
try {
  await main();
} catch (e) {
  failed = true;
  console.error(`\nbench failed: ${(e as Error).stack ?? String(e)}`);
  const st = stack as Stack | null; // assigned inside main()
  if (st) for (const p of st.procs) console.error(`--- ${p.name} (last lines)\n${p.output.slice(-10).join('\n')}`);
} finally {
  await cleanup();
}
process.exit(failed ? 1 : 0);
