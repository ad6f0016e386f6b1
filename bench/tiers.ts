/**
 * CPU cost of one relay channel per tier combination, next to bare ffmpeg doing the same work.
 *
 *   npx tsx bench/tiers.ts [--seconds N] [--runs K] [--warmup S]
 *
 * Starts a private stack (media server, API, worker as real processes, like the integration tests), makes alice
 * publish her looped camera fixture into the ingest, and for each scenario:
 *  1. starts the push through the API, waits `--warmup` s, then samples CPU for N s of
 *     - the channel's relay ffmpeg,
 *     - the media server process (tree),
 *     - the whole stack: every stack process and its descendants (media server, API, worker, the worker's ffmpeg);
 *       the feeder ffmpeg that publishes the fixture is the bench's own child, upstream of both sides, not counted;
 *  2. stops the push, then runs the relay ffmpeg's exact argv (read from /proc/<pid>/cmdline: same ingest and publish
 *     URLs, which only need their signed tokens; HLS written to a separate folder) as a bare child process, waits the
 *     same warm-up, and samples it and the media server for N s.
 * CPU is utime+stime from /proc/<pid>/stat, as % of one core. With --runs K each scenario is repeated K times and the
 * medians are printed. Results also go to bench/results/tiers-<date>.json.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FFMPEG, fixture, ffmpegsMentioning, sleep, startStack, type Stack } from '../test/helpers/stack.js';

// ---------------------------------------------------------------------------------------------------------------
// options

function argValue(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const eq = process.argv.find((a) => a.startsWith(`--${name}=`));
  const raw = eq ? eq.slice(name.length + 3) : i >= 0 ? process.argv[i + 1] : undefined;
  if (raw === undefined) return dflt;
  const v = Number(raw);
  if (!Number.isFinite(v) || v <= 0) {
    console.error(`--${name} needs a positive number (got ${raw})`);
    process.exit(2);
  }
  return v;
}

const SECONDS = argValue('seconds', 20);
const RUNS = Math.round(argValue('runs', 1));
const WARMUP_S = argValue('warmup', 3);
const SAMPLE_MS = 500;
const ROOM = { roomId: 1001, userId: 'alice', srcType: 0 as const };
const BENCH_DIR = path.dirname(new URL(import.meta.url).pathname);

const CLK_TCK = (() => {
  try { return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100; } catch { return 100; }
})();

interface Scenario { key: string; label: string; option: (wmId: number) => Record<string, unknown> }

const SCENARIOS: Scenario[] = [
  { key: 'original', label: 'ORIGINAL copy', option: () => ({ encode: 6, rateType: 0 }) },
  { key: '550', label: '550 (360p)', option: () => ({ encode: 6, rateType: 10 }) },
  { key: '900', label: '900 (540p)', option: () => ({ encode: 6, rateType: 20 }) },
  { key: '0+10+20+wm', label: '0+10+20 + watermark', option: (id) => ({ encode: 6, rateTypes: [0, 10, 20], waterMark: true, waterMarkId: id }) },
];

// ---------------------------------------------------------------------------------------------------------------
// /proc sampling

interface ProcStat { pid: number; ppid: number; ticks: number; start: string }

/** utime+stime, ppid and start time of a process, or null when it is gone. */
function readStat(pid: number): ProcStat | null {
  let raw: string;
  try { raw = fs.readFileSync(`/proc/${pid}/stat`, 'utf8'); } catch { return null; }
  // the command name (field 2) may hold spaces and parentheses: fields are counted after the last ')'
  const f = raw.slice(raw.lastIndexOf(')') + 2).split(' ');
  if (f[0] === 'Z' || f[0] === 'X') return null;
  return { pid, ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]), start: f[19]! };
}

function allStats(): Map<number, ProcStat> {
  const out = new Map<number, ProcStat>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const s = readStat(Number(d));
    if (s) out.set(s.pid, s);
  }
  return out;
}

/** The roots and every descendant of them, in a /proc snapshot. */
function subtree(stats: Map<number, ProcStat>, roots: readonly number[]): number[] {
  const children = new Map<number, number[]>();
  for (const s of stats.values()) {
    const list = children.get(s.ppid) ?? [];
    list.push(s.pid);
    children.set(s.ppid, list);
  }
  const out: number[] = [];
  const todo = roots.filter((r) => stats.has(r));
  while (todo.length) {
    const p = todo.pop()!;
    out.push(p);
    todo.push(...(children.get(p) ?? []));
  }
  return out;
}

/** Busy and total jiffies of the whole machine (/proc/stat), to see load from outside the bench. */
function machineTicks(): { busy: number; total: number } {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0); // user nice system idle iowait irq softirq steal
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: total - idle, total };
}

/**
 * CPU of named groups of processes over a window. Each group is a function of a /proc snapshot giving its pids
 * (so descendants born during the window are caught). A process seen at the first sample counts from there; one
 * born later counts from its start. A process that exits mid-window loses at most its last SAMPLE_MS.
 */
class CpuWindow<G extends string> {
  private readonly first = new Map<G, Map<string, number>>();
  private readonly last = new Map<G, Map<string, number>>();
  private t0 = 0;
  private t1 = 0;
  private m0 = machineTicks();
  private m1 = this.m0;

  constructor(private readonly groups: Record<G, (s: Map<number, ProcStat>) => number[]>) {}

  sample(): void {
    const stats = allStats();
    const now = performance.now();
    const initial = this.t0 === 0;
    if (initial) { this.t0 = now; this.m0 = machineTicks(); }
    this.t1 = now;
    this.m1 = machineTicks();
    for (const g of Object.keys(this.groups) as G[]) {
      const first = this.first.get(g) ?? new Map<string, number>();
      const last = this.last.get(g) ?? new Map<string, number>();
      for (const pid of this.groups[g](stats)) {
        const s = stats.get(pid);
        if (!s) continue;
        const key = `${pid}@${s.start}`;
        if (!first.has(key)) first.set(key, initial ? s.ticks : 0);
        last.set(key, s.ticks);
      }
      this.first.set(g, first);
      this.last.set(g, last);
    }
  }

  seconds(): number { return (this.t1 - this.t0) / 1000; }

  /** CPU of a group as % of one core. */
  percent(g: G): number {
    const first = this.first.get(g);
    const last = this.last.get(g);
    if (!first || !last || this.seconds() <= 0) return NaN;
    let ticks = 0;
    for (const [k, v] of last) ticks += v - (first.get(k) ?? 0);
    return (ticks / CLK_TCK / this.seconds()) * 100;
  }

  /** Busy CPU of the whole machine as % of one core. */
  machinePercent(): number {
    const cores = os.cpus().length;
    const total = this.m1.total - this.m0.total;
    return total > 0 ? ((this.m1.busy - this.m0.busy) / total) * cores * 100 : NaN;
  }
}

async function measure<G extends string>(groups: Record<G, (s: Map<number, ProcStat>) => number[]>, seconds: number, alive: () => void): Promise<CpuWindow<G>> {
  const w = new CpuWindow(groups);
  w.sample();
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    await sleep(Math.min(SAMPLE_MS, Math.max(0, end - performance.now())));
    alive();
    w.sample();
  }
  return w;
}

// ---------------------------------------------------------------------------------------------------------------
// processes the bench owns

const bareChildren = new Set<ChildProcess>();

function killChild(c: ChildProcess, graceMs = 5000): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => { try { c.kill('SIGKILL'); } catch { /* gone */ } }, graceMs);
    c.once('exit', () => { clearTimeout(t); resolve(); });
    try { c.kill('SIGINT'); } catch { /* gone */ }
  });
}

/** Latest `key=value` progress figures of an ffmpeg writing `-progress pipe:1` to stdout. */
interface BareProgress { frame: number; fps: number; speed: number }

function spawnBare(ffmpegPath: string, args: string[]): { child: ChildProcess; progress: BareProgress; stderr: string[] } {
  const useSetpriv = fs.existsSync('/usr/bin/setpriv');
  // pdeathsig: the bare ffmpeg dies with the bench even if the bench is killed hard
  const child = useSetpriv
    ? spawn('/usr/bin/setpriv', ['--pdeathsig', 'SIGKILL', '--', ffmpegPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(ffmpegPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  bareChildren.add(child);
  child.once('exit', () => bareChildren.delete(child));
  const progress: BareProgress = { frame: 0, fps: 0, speed: 0 };
  const stderr: string[] = [];
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    const lines = buf.split('\n');
    buf = lines.pop() ?? '';
    for (const l of lines) {
      const m = /^(frame|fps|speed)=\s*([\d.]+)/.exec(l.trim());
      if (m) progress[m[1] as keyof BareProgress] = Number(m[2]);
    }
  });
  child.stderr!.on('data', (d: Buffer) => {
    for (const l of d.toString().split('\n')) if (l.trim()) { stderr.push(l); if (stderr.length > 30) stderr.shift(); }
  });
  return { child, progress, stderr };
}

// ---------------------------------------------------------------------------------------------------------------
// the relay side

async function startPush(stack: Stack, option: Record<string, unknown>): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    const res = await stack.request('POST', '/v1/push/start', { ...ROOM, option });
    if (res.body?.code === 0 && typeof res.body.channelId === 'string') return res.body.channelId as string;
    // the same user may start once per RELAY_START_RATE_LIMIT_MS
    if (res.body?.code === 40000500 && attempt < 5) { await sleep(Number(res.body.retryAfterMs ?? 1000) + 100); continue; }
    throw new Error(`push start refused: HTTP ${res.status} ${JSON.stringify(res.body)}`);
  }
}

async function stopPush(stack: Stack, channelId: string, pid: number | null): Promise<void> {
  const res = await stack.request('POST', '/v1/push/stop', { channelIds: [channelId] });
  const code = res.body?.results?.[0]?.code;
  if (res.body?.code !== 0 || (code !== 0 && code !== 40000412)) throw new Error(`push stop failed: ${JSON.stringify(res.body)}`);
  const deadline = Date.now() + 15000;
  for (;;) {
    const st = (await stack.request('GET', `/v1/push/${channelId}`)).body?.channel?.state;
    const ffGone = pid === null || readStat(pid) === null;
    if ((st === 'stopped' || st === 'failed') && ffGone) return;
    if (Date.now() > deadline) throw new Error(`channel ${channelId} not stopped in 15 s (state ${st}, ffmpeg ${ffGone ? 'gone' : 'running'})`);
    await sleep(100);
  }
}

async function relayFfmpegOf(channelId: string): Promise<number> {
  const deadline = Date.now() + 10000;
  for (;;) {
    const pids = ffmpegsMentioning(channelId);
    if (pids.length === 1) return pids[0]!;
    if (pids.length > 1) throw new Error(`several ffmpeg processes mention ${channelId}: ${pids.join(', ')}`);
    if (Date.now() > deadline) throw new Error(`no relay ffmpeg for ${channelId}`);
    await sleep(100);
  }
}

function cmdlineOf(pid: number): string[] {
  const raw = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  return raw.split('\0').filter((_, i, a) => i < a.length - 1 || a[i] !== '');
}

async function uploadWatermark(stack: Stack, dir: string): Promise<number> {
  const file = path.join(dir, 'wm.png');
  execFileSync(FFMPEG, ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'color=c=white:size=200x100', '-frames:v', '1', file]);
  const res = await fetch(`${stack.api}/v1/watermarks`, {
    method: 'POST', headers: { authorization: stack.auth, 'content-type': 'image/png' }, body: fs.readFileSync(file),
  });
  const body = (await res.json()) as { code?: number; waterMarkId?: number };
  if (body.code !== 0 || typeof body.waterMarkId !== 'number') throw new Error(`watermark upload refused: HTTP ${res.status} ${JSON.stringify(body)}`);
  return body.waterMarkId;
}

// ---------------------------------------------------------------------------------------------------------------
// one run of one scenario

interface RunResult {
  channelId: string;
  relayFfmpeg: number;
  relayMedia: number;
  stack: number;
  bareFfmpeg: number;
  bareMedia: number;
  barePlusMedia: number;
  ratio: number;
  /** Busy CPU of the machine not explained by the measured processes + feeder + bench (other users), relay / bare windows. */
  otherRelay: number;
  otherBare: number;
  /** ffmpeg's own speed figure at the end (cumulative since its start, so the ingest's GOP burst inflates it). */
  relaySpeed: number | null;
  bareSpeed: number;
  /** Frames per second output during the measurement window (the fixture is 30 fps: less means the box lags). */
  relayFps: number | null;
  bareFps: number;
  relaySeconds: number;
  bareSeconds: number;
}

async function runScenario(stack: Stack, sc: Scenario, wmId: number, feederPids: () => number[]): Promise<RunResult> {
  const mediaPid = stack.procs.find((p) => p.name === 'media')!.child.pid!;
  const stackRoots = stack.procs.map((p) => p.child.pid!).filter((p) => p > 0);
  const self = process.pid;

  // --- relay
  const channelId = await startPush(stack, sc.option(wmId));
  let ffPid: number | null = null;
  let argv: string[];
  let relaySpeed: number | null = null;
  let relayFps: number | null = null;
  let relay: CpuWindow<'ff' | 'media' | 'stack' | 'mine'>;
  try {
    ffPid = await relayFfmpegOf(channelId);
    argv = cmdlineOf(ffPid);
    await sleep(WARMUP_S * 1000);
    const statsOf = async () => (await stack.request('GET', `/v1/push/${channelId}`)).body?.channel as { state?: string; error?: unknown; history?: unknown[]; stats?: { frames?: number; speed?: number; updatedAt?: number } } | undefined;
    const s0 = (await statsOf())?.stats;
    const pid = ffPid;
    relay = await measure({
      ff: () => [pid],
      media: (s) => subtree(s, [mediaPid]),
      stack: (s) => subtree(s, stackRoots),
      mine: (s) => [self, ...feederPids().filter((p) => s.has(p))],
    }, SECONDS, () => { if (!readStat(pid)) throw new Error(`relay ffmpeg of ${channelId} died during the measurement`); });
    const ch = await statsOf();
    if (ch?.state !== 'live') throw new Error(`channel ${channelId} is ${ch?.state} after the measurement: ${JSON.stringify(ch?.error ?? ch?.history?.slice(-2))}`);
    relaySpeed = typeof ch?.stats?.speed === 'number' ? ch.stats.speed : null;
    const s1 = ch?.stats;
    if (s0?.frames !== undefined && s1?.frames !== undefined && s0.updatedAt && s1.updatedAt && s1.updatedAt > s0.updatedAt) {
      relayFps = (s1.frames - s0.frames) / ((s1.updatedAt - s0.updatedAt) / 1000);
    }
  } catch (e) {
    // stop the channel, but report the first failure
    await stopPush(stack, channelId, ffPid).catch((s: Error) => console.error(`(also: ${s.message})`));
    throw e;
  }
  await stopPush(stack, channelId, ffPid);

  // --- bare: the same argv by hand, HLS into a separate folder
  const [ffmpegPath, ...args0] = argv;
  const hlsRoot = path.join(stack.dataDir, 'hls') + path.sep;
  const bareRoot = path.join(stack.dataDir, 'bare-hls', channelId) + path.sep;
  const args = args0.map((a) => a.split(hlsRoot).join(bareRoot));
  const mirror = (from: string, to: string) => {
    fs.mkdirSync(to, { recursive: true });
    for (const e of fs.readdirSync(from, { withFileTypes: true })) if (e.isDirectory()) mirror(path.join(from, e.name), path.join(to, e.name));
  };
  mirror(path.join(hlsRoot, channelId), path.join(bareRoot, channelId));
  const bare = spawnBare(ffmpegPath!, args);
  let bareFps = NaN;
  let bareWin: CpuWindow<'ff' | 'media' | 'mine' | 'stack'>;
  try {
    const died = () => { if (bare.child.exitCode !== null || bare.child.signalCode !== null) throw new Error(`bare ffmpeg exited (${bare.child.exitCode ?? bare.child.signalCode}):\n${bare.stderr.slice(-8).join('\n')}`); };
    await sleep(WARMUP_S * 1000);
    died();
    const framesBefore = bare.progress.frame;
    const tBefore = performance.now();
    const barePid = bare.child.pid!;
    bareWin = await measure({
      ff: () => [barePid],
      media: (s) => subtree(s, [mediaPid]),
      stack: (s) => subtree(s, stackRoots),
      mine: (s) => [self, ...feederPids().filter((p) => s.has(p))],
    }, SECONDS, died);
    bareFps = (bare.progress.frame - framesBefore) / ((performance.now() - tBefore) / 1000);
    if (bare.progress.frame <= framesBefore) throw new Error(`bare ffmpeg made no frames during the measurement:\n${bare.stderr.slice(-8).join('\n')}`);
  } finally {
    await killChild(bare.child);
    fs.rmSync(path.join(stack.dataDir, 'bare-hls'), { recursive: true, force: true });
  }

  const other = (w: CpuWindow<'ff' | 'media' | 'stack' | 'mine'>, extra: number) => w.machinePercent() - w.percent('stack') - w.percent('mine') - extra;
  const bareFfmpeg = bareWin.percent('ff');
  const bareMedia = bareWin.percent('media');
  const stackPct = relay.percent('stack');
  return {
    channelId,
    relayFfmpeg: relay.percent('ff'),
    relayMedia: relay.percent('media'),
    stack: stackPct,
    bareFfmpeg,
    bareMedia,
    barePlusMedia: bareFfmpeg + bareMedia,
    ratio: stackPct / (bareFfmpeg + bareMedia),
    otherRelay: other(relay, 0),
    // the bare ffmpeg is the bench's child, so it is not in the stack group: take it out too
    otherBare: other(bareWin, bareFfmpeg),
    relaySpeed, relayFps,
    bareSpeed: bare.progress.speed, bareFps,
    relaySeconds: relay.seconds(), bareSeconds: bareWin.seconds(),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// reporting

const median = (xs: number[]): number => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
};
const pct = (x: number) => (Number.isFinite(x) ? `${x.toFixed(1)}%` : '–');

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  return [line(headers), `|${widths.map((w, i) => (i === 0 ? ':' : '') + '-'.repeat(w + 1) + (i === 0 ? '' : ':')).join('|')}|`, ...rows.map(line)].join('\n');
}

function ffmpegVersion(): string {
  try { return execFileSync(FFMPEG, ['-hide_banner', '-version'], { encoding: 'utf8' }).split('\n')[0] ?? '?'; } catch { return '?'; }
}

// ---------------------------------------------------------------------------------------------------------------
// main

let stack: Stack | null = null;
let tmpDir: string | null = null;
let cleaning: Promise<void> | null = null;

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await Promise.all([...bareChildren].map((c) => killChild(c)));
    if (stack) await stack.close().catch((e: Error) => console.error(`stack close: ${e.message}`));
    if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
  })();
  return cleaning;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    console.error(`\n${sig}: cleaning up…`);
    void cleanup().finally(() => process.exit(130));
  });
}

async function main(): Promise<void> {
  const cpus = os.cpus();
  const started = new Date();
  const machine = {
    cpuModel: cpus[0]?.model ?? '?', cores: cpus.length, platform: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version, ffmpeg: ffmpegVersion(), clkTck: CLK_TCK, loadavgAtStart: os.loadavg().map((l) => Number(l.toFixed(2))),
  };
  console.log(`bench/tiers — ${started.toISOString()}`);
  console.log(`machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.platform}; node ${machine.node}; ${machine.ffmpeg}`);
  console.log(`load average at start: ${machine.loadavgAtStart.join(' ')}`);
  console.log(`${SECONDS} s per measurement after ${WARMUP_S} s warm-up, ${RUNS} run(s) per scenario; CPU in % of one core\n`);

  const fixtureFile = fixture('alice-camera.mp4');
  if (!fs.existsSync(fixtureFile)) throw new Error(`missing ${fixtureFile}: run npx tsx fixtures/make.ts`);
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-tiers-'));

  stack = await startStack({ env: { RELAY_LOG_LEVEL: 'warn' } });
  const feeder = await stack.publish(ROOM, fixtureFile);
  // the feeder runs under setpriv, which execs ffmpeg: one pid; it is the bench's own child, outside the stack tree
  const feederList = ffmpegsMentioning(`${stack.rtmpPort}/ingest/`).filter((p) => {
    try { return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('-stream_loop'); } catch { return false; }
  });
  if (feederList.length !== 1) throw new Error(`expected one feeder ffmpeg, found ${feederList.length}`);
  const feederPids = () => feederList;
  if (!feeder.running) throw new Error('feeder ffmpeg is not running');
  const wmId = await uploadWatermark(stack, tmpDir);
  // One unmeasured push first: the stack's Node processes compile and warm their start/stats/stop paths on the first
  // channel (measured without this, API+worker cost ~1.3 % of a core more during the first scenario than later ones).
  process.stdout.write('warm-up push (not measured)… ');
  const warm = await startPush(stack, { encode: 6, rateType: 0 });
  const warmPid = await relayFfmpegOf(warm).catch(() => null);
  await sleep(Math.max(5, WARMUP_S) * 1000);
  await stopPush(stack, warm, warmPid);
  console.log('done');

  const results: { scenario: Scenario; runs: RunResult[] }[] = [];
  for (const sc of SCENARIOS) {
    const runs: RunResult[] = [];
    for (let r = 0; r < RUNS; r++) {
      process.stdout.write(`${sc.label}${RUNS > 1 ? ` run ${r + 1}/${RUNS}` : ''}: `);
      if (!feeder.running) throw new Error('feeder ffmpeg died');
      const res = await runScenario(stack, sc, wmId, feederPids);
      runs.push(res);
      console.log(`relay ffmpeg ${pct(res.relayFfmpeg)}, stack ${pct(res.stack)}, bare ${pct(res.bareFfmpeg)}, bare+media ${pct(res.barePlusMedia)}, ` +
        `fps relay ${res.relayFps?.toFixed(1) ?? '?'} / bare ${res.bareFps.toFixed(1)}, other load ${pct(res.otherRelay)} / ${pct(res.otherBare)}`);
    }
    results.push({ scenario: sc, runs });
  }

  const summary = results.map(({ scenario, runs }) => {
    const m = (f: (r: RunResult) => number) => median(runs.map(f));
    const stackPct = m((r) => r.stack);
    const barePlus = m((r) => r.barePlusMedia);
    return {
      scenario: scenario.label, key: scenario.key, option: scenario.option(wmId),
      relayFfmpeg: m((r) => r.relayFfmpeg), relayMedia: m((r) => r.relayMedia), stack: stackPct,
      bareFfmpeg: m((r) => r.bareFfmpeg), bareMedia: m((r) => r.bareMedia), barePlusMedia: barePlus,
      ratio: stackPct / barePlus,
      relayFps: median(runs.map((r) => r.relayFps ?? NaN)), bareFps: m((r) => r.bareFps),
      otherRelay: m((r) => r.otherRelay), otherBare: m((r) => r.otherBare),
    };
  });

  console.log(`\n${RUNS > 1 ? `medians of ${RUNS} runs; ` : ''}CPU in % of one core (${machine.cores} cores = ${machine.cores * 100}%)\n`);
  console.log(table(
    ['scenario', 'relay ffmpeg', 'whole stack', 'bare ffmpeg', 'bare+media-server', 'ratio stack/(bare+media)', 'media (relay)', 'fps relay/bare', 'other load relay/bare'],
    summary.map((s) => [
      s.scenario, pct(s.relayFfmpeg), pct(s.stack), pct(s.bareFfmpeg), pct(s.barePlusMedia),
      Number.isFinite(s.ratio) ? s.ratio.toFixed(2) : '–', pct(s.relayMedia),
      `${Number.isFinite(s.relayFps) ? s.relayFps.toFixed(1) : '?'} / ${Number.isFinite(s.bareFps) ? s.bareFps.toFixed(1) : '?'}`,
      `${pct(s.otherRelay)} / ${pct(s.otherBare)}`,
    ]),
  ));
  console.log('\nwhole stack = media server + API + worker + the worker\'s ffmpeg (feeder excluded); bare+media = hand-run ffmpeg with the same argv + media server.');
  console.log('other load = machine busy CPU outside the stack, feeder, bare ffmpeg and this bench (other users of the machine): high values mean noisy figures.');

  const outDir = path.join(BENCH_DIR, 'results');
  fs.mkdirSync(outDir, { recursive: true });
  const outFile = path.join(outDir, `tiers-${started.toISOString().slice(0, 10)}.json`);
  fs.writeFileSync(outFile, `${JSON.stringify({
    date: started.toISOString(), machine, seconds: SECONDS, warmupSeconds: WARMUP_S, runs: RUNS, sampleMs: SAMPLE_MS,
    loadavgAtEnd: os.loadavg().map((l) => Number(l.toFixed(2))),
    summary, raw: results.map(({ scenario, runs }) => ({ scenario: scenario.label, runs })),
  }, null, 2)}\n`);
  console.log(`\nwritten ${path.relative(process.cwd(), outFile)}`);
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
