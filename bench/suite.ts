/**
 * `npm run bench`: the relay against its floor — bare ffmpeg processes started by hand, with the same arguments, into
 * the same node-media-server — on one machine, in one run. `--short` (CI) runs each scenario for a few seconds.
 *
 *   1. start latency: start call → first FLV video tag at a viewer, and → first HLS segment listed; p50/p95
 *   2. cost per copy channel at 1 and 10 (full: also 50) concurrent channels: CPU of the whole stack ÷ CPU of the
 *      floor (bare ffmpeg + media server), and memory per channel
 *   3. fan-out: 1, 50, 200 HTTP-FLV viewers of one channel: media-server CPU and memory, whether every viewer keeps up
 *   4. control plane: start/stop and status API latency p50/p99 with 1,000 channel records present
 * Tier costs: `npm run bench:tiers`. Failover gaps: test/integration/failover.test.ts prints them.
 * Prints a table and writes bench/results/suite-<date>[-short].json.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config/index.js';
import { planFor } from '../src/worker/runner.js';
import { buildRelayArgs } from '../src/media/ffmpeg/args.js';
import { playUrls } from '../src/channels/urls.js';
import type { Channel } from '../src/channels/types.js';
import { FFMPEG, fixture, sleep, startStack, type Stack } from '../test/helpers/stack.js';

const SHORT = process.argv.includes('--short');
const TICK = 100; // clock ticks per second (getconf CLK_TCK)
/** CPU differences below this (% of a core) are noise: no ratio is drawn from them. */
const NOISE_PCT = 1;

// ---------------------------------------------------------------------------------------------------------------
// measuring

/** utime+stime (s) of a process and its descendants. */
function cpuSeconds(rootPids: number[]): number {
  const children = new Map<number, number[]>();
  const stats = new Map<number, number>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(f[1]);
      stats.set(Number(d), (Number(f[11]) + Number(f[12])) / TICK);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(d)]);
    } catch { /* gone */ }
  }
  let total = 0;
  const seen = new Set<number>();
  const walk = (pid: number) => {
    if (seen.has(pid)) return;
    seen.add(pid);
    total += stats.get(pid) ?? 0;
    for (const c of children.get(pid) ?? []) walk(c);
  };
  for (const p of rootPids) walk(p);
  return total;
}

/** RSS (MiB) of a process and its descendants. */
function rssMiB(rootPids: number[]): number {
  let kb = 0;
  const all = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  const parent = new Map<number, number>();
  for (const d of all) {
    try {
      const st = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      parent.set(Number(d), Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]));
    } catch { /* gone */ }
  }
  const inTree = (pid: number): boolean => { for (let p = pid, i = 0; p > 1 && i < 50; p = parent.get(p) ?? 0, i++) if (rootPids.includes(p)) return true; return false; };
  for (const d of all) {
    if (!inTree(Number(d))) continue;
    try { kb += Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${d}/status`, 'utf8'))?.[1] ?? 0); } catch { /* gone */ }
  }
  return kb / 1024;
}

/** CPU (% of one core) used by the trees over `seconds`. */
async function cpuOver(rootPids: () => number[], seconds: number): Promise<number> {
  const a = cpuSeconds(rootPids());
  await sleep(seconds * 1000);
  return ((cpuSeconds(rootPids()) - a) / seconds) * 100;
}

const pct = (xs: number[], p: number) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN; };

/** ms from now until an HTTP-FLV URL delivers a video keyframe tag (retrying while it answers 404). */
function firstKeyframe(url: string, timeoutMs = 15000): Promise<number> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error(`no keyframe at ${url}`)), timeoutMs);
    const attempt = () => {
      const req = http.get(url, (res) => {
        if (res.statusCode !== 200) { res.resume(); setTimeout(attempt, 20); return; }
        let buf = Buffer.alloc(0);
        let off = 13;
        res.on('data', (d: Buffer) => {
          buf = Buffer.concat([buf, d]);
          while (off + 11 <= buf.length) {
            const size = buf.readUIntBE(off + 1, 3);
            if (off + 11 + size > buf.length) break;
            if (buf[off] === 9 && buf[off + 11]! >> 4 === 1) { clearTimeout(deadline); req.destroy(); resolve(Date.now() - t0); return; }
            off += 11 + size + 4;
          }
        });
      });
      req.on('error', () => setTimeout(attempt, 20));
    };
    attempt();
  });
}

/** ms from now until a playlist lists a segment. */
async function firstSegment(url: string, timeoutMs = 15000): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    const text = await fetch(url).then((r) => (r.ok ? r.text() : ''), () => '');
    if (text.includes('#EXTINF')) return Date.now() - t0;
    await sleep(20);
  }
  throw new Error(`no segment at ${url}`);
}

// ---------------------------------------------------------------------------------------------------------------
// the floor: bare ffmpeg with the relay's own arguments, for a channel record made by hand

/** A channel the media server lets viewers play, for a bare ffmpeg to publish (the floor). */
async function floorChannel(stack: Stack, userId: string, roomId = 1001): Promise<{ ch: Channel; args: readonly string[] }> {
  const cfg = loadConfig(stack.env);
  const channelId = 'ch_' + crypto.randomBytes(10).toString('hex');
  const ch: Channel = {
    channelId, sdkAppId: stack.sdkAppId, accountId: 'default', roomId, userId, srcType: 0,
    option: { encode: 3, rateType: 0, rateTypes: [0], record: false, recordFileType: 4, waterMark: false, sdkType: 1, passwordProtected: false, autoResume: false },
    input: { kind: 'ingest', streamName: `${stack.sdkAppId}_${roomId}_${userId}_camera` },
    urls: playUrls({ publicHost: '127.0.0.1', httpPort: stack.httpPort, rtmpPort: stack.rtmpPort }, channelId, 3, [0]),
    hls: true, state: 'live', createdAt: Date.now(), history: [],
  };
  await stack.redis.set(`${stack.prefix}:channel:${channelId}`, JSON.stringify(ch));
  const secret = (await stack.redis.get(`${stack.prefix}:internal-secret`))!;
  const plan = planFor(ch, cfg, secret);
  for (const s of plan.tiers.flatMap((t) => t.sinks)) if (s.kind === 'hls') fs.mkdirSync(s.dir, { recursive: true });
  return { ch, args: buildRelayArgs(plan) };
}

function spawnBare(args: readonly string[]): ChildProcess {
  return spawn(FFMPEG, [...args], { stdio: 'ignore', detached: true });
}

async function killBare(children: ChildProcess[]): Promise<void> {
  await Promise.all(children.map((c) => new Promise<void>((resolve) => {
    if (c.exitCode !== null || c.signalCode !== null) return resolve();
    c.once('exit', () => resolve());
    try { process.kill(-c.pid!, 'SIGINT'); } catch { resolve(); }
    setTimeout(() => { try { process.kill(-c.pid!, 'SIGKILL'); } catch { /* gone */ } }, 3000);
  })));
}

// ---------------------------------------------------------------------------------------------------------------
// scenarios

async function startLatency(stack: Stack, runs: number) {
  const relay = { flv: [] as number[], hls: [] as number[], api: [] as number[] };
  const floor = { flv: [] as number[], hls: [] as number[] };
  for (let i = 0; i < runs; i++) {
    const t0 = Date.now();
    // a viewer learns the URLs from the answer, then plays them at once
    const r = await stack.request('POST', '/v1/push/start', { roomId: 1001, userId: 'alice', srcType: 0, option: { encode: 3 } });
    const api = Date.now() - t0;
    relay.api.push(api);
    const flv = r.body.urls.find((u: { type: number }) => u.type === 2).playUrl as string;
    const hls = r.body.urls.find((u: { type: number }) => u.type === 1).playUrl as string;
    const [k, s] = await Promise.all([firstKeyframe(flv), firstSegment(hls)]);
    relay.flv.push(api + k);
    relay.hls.push(api + s);
    await stack.request('POST', '/v1/push/stop', { channelIds: [r.body.channelId] });

    const { ch, args } = await floorChannel(stack, 'alice');
    const bare = spawnBare(args);
    const fu = ch.urls.find((u) => u.type === 2)!.playUrl;
    const hu = ch.urls.find((u) => u.type === 1)!.playUrl;
    const [fk, fs2] = await Promise.all([firstKeyframe(fu), firstSegment(hu)]);
    floor.flv.push(fk);
    floor.hls.push(fs2);
    await killBare([bare]);
    await sleep(3100); // the same user's start rate limit
  }
  return {
    runs,
    relay: { apiP50: pct(relay.api, 50), flvP50: pct(relay.flv, 50), flvP95: pct(relay.flv, 95), hlsP50: pct(relay.hls, 50), hlsP95: pct(relay.hls, 95) },
    floor: { flvP50: pct(floor.flv, 50), flvP95: pct(floor.flv, 95), hlsP50: pct(floor.hls, 50), hlsP95: pct(floor.hls, 95) },
  };
}

async function copyCost(stack: Stack, counts: number[], seconds: number) {
  const media = () => [stack.procs.find((p) => p.name === 'media')!.child.pid!];
  const stackPids = () => stack.procs.filter((p) => p.child.exitCode === null).map((p) => p.child.pid!);
  const out: { channels: number; stackPct: number; floorPct: number; ratio: number | null; stackMiBPerChannel: number; floorMiBPerChannel: number }[] = [];
  const users = Math.max(...counts);
  for (let i = 0; i < users; i++) await stack.publish({ roomId: 2000 + Math.floor(i / 4), userId: `u${i}`, srcType: 0 }, fixture('alice-camera.mp4'));
  // what the stack and the media server use with every member publishing and no channel: subtracted from both sides
  await sleep(2000);
  const idleStack = await cpuOver(stackPids, seconds);
  const idleMedia = await cpuOver(media, seconds);
  for (const n of counts) {
    const baseRss = rssMiB(stackPids());
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const r = await stack.request('POST', '/v1/push/start', { roomId: 2000 + Math.floor(i / 4), userId: `u${i}`, srcType: 0, option: { encode: 6 } });
      if (r.body.code !== 0) throw new Error(`start ${i}: ${JSON.stringify(r.body)}`);
      ids.push(r.body.channelId);
    }
    await sleep(3000);
    const stackPct = (await cpuOver(stackPids, seconds)) - idleStack;
    const stackMiB = (rssMiB(stackPids()) - baseRss) / n;
    for (let i = 0; i < ids.length; i += 50) await stack.request('POST', '/v1/push/stop', { channelIds: ids.slice(i, i + 50) });
    await sleep(1000);
    const bare: ChildProcess[] = [];
    for (let i = 0; i < n; i++) bare.push(spawnBare((await floorChannel(stack, `u${i}`, 2000 + Math.floor(i / 4))).args));
    // the floor is bare ffmpeg plus the media server it publishes into
    const floorRss0 = rssMiB(media());
    await sleep(3000);
    const floorPids = () => [...media(), ...bare.map((b) => b.pid!)];
    const floorPct = (await cpuOver(floorPids, seconds)) - idleMedia;
    if (bare.some((b) => b.exitCode !== null || b.signalCode !== null)) throw new Error('a bare ffmpeg of the floor died');
    const floorMiB = (rssMiB(bare.map((b) => b.pid!)) + rssMiB(media()) - floorRss0) / n;
    await killBare(bare);
    out.push({ channels: n, stackPct: Math.max(0, stackPct), floorPct: Math.max(0, floorPct), ratio: floorPct < NOISE_PCT ? null : stackPct / floorPct, stackMiBPerChannel: stackMiB, floorMiBPerChannel: floorMiB });
    await sleep(1000);
  }
  return out;
}

async function fanOut(stack: Stack, viewers: number[], seconds: number) {
  await sleep(3100);
  const r = await stack.request('POST', '/v1/push/start', { roomId: 1001, userId: 'alice', srcType: 0, option: { encode: 2 } });
  const url = r.body.urls[0].playUrl as string;
  const media = () => [stack.procs.find((p) => p.name === 'media')!.child.pid!];
  const out: { viewers: number; mediaPct: number; mediaMiB: number; slowest: number }[] = [];
  for (const n of viewers) {
    const got = new Array<number>(n).fill(0);
    const reqs = Array.from({ length: n }, (_, i) => http.get(url, (res) => res.on('data', (d: Buffer) => { got[i]! += d.length; })));
    await sleep(2000);
    const before = [...got];
    const pctCpu = await cpuOver(media, seconds);
    // each viewer's rate over the window, as a fraction of the best viewer's
    const rates = got.map((g, i) => g - before[i]!);
    const best = Math.max(...rates);
    out.push({ viewers: n, mediaPct: pctCpu, mediaMiB: rssMiB(media()), slowest: best ? Math.min(...rates) / best : 0 });
    for (const q of reqs) q.destroy();
    await sleep(500);
  }
  await stack.request('POST', '/v1/push/stop', { channelIds: [r.body.channelId] });
  return out;
}

async function controlPlane(stack: Stack, records: number, cycles: number) {
  const pipe = stack.redis.pipeline();
  for (let i = 0; i < records; i++) {
    const id = 'ch_' + crypto.randomBytes(10).toString('hex');
    pipe.set(`${stack.prefix}:channel:${id}`, JSON.stringify({ channelId: id, sdkAppId: stack.sdkAppId, accountId: 'default', state: 'stopped', option: { rateTypes: [0] }, urls: [], history: [] }));
  }
  await pipe.exec();
  await stack.request('PUT', '/v1/rooms/3000/upstreams', { userId: 'cp', srcType: 0, url: fixture('video-only.mp4') });
  const start: number[] = [];
  const stop: number[] = [];
  const status: number[] = [];
  for (let i = 0; i < cycles; i++) {
    let t = Date.now();
    const r = await stack.request('POST', '/v1/push/start', { roomId: 3000, userId: 'cp', srcType: 0, option: { encode: 5 } });
    start.push(Date.now() - t);
    for (let j = 0; j < 5; j++) { t = Date.now(); await stack.request('GET', `/v1/push/${r.body.channelId}`); status.push(Date.now() - t); }
    t = Date.now();
    await stack.request('POST', '/v1/push/stop', { channelIds: [r.body.channelId] });
    stop.push(Date.now() - t);
    await sleep(3050);
  }
  return { records, cycles, startP50: pct(start, 50), startP99: pct(start, 99), stopP50: pct(stop, 50), stopP99: pct(stop, 99), statusP50: pct(status, 50), statusP99: pct(status, 99) };
}

// ---------------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const seconds = SHORT ? 3 : 20;
  const machine = `${os.cpus()[0]?.model ?? 'cpu'}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}`;
  const stack = await startStack({ env: { RELAY_LOG_LEVEL: 'warn', RELAY_WORKER_CONCURRENCY: '100', RELAY_MAX_CHANNELS_PER_ROOM: '4' } });
  try {
    await stack.request('PATCH', '/admin/v1/accounts/default', { channelLimit: 1000 }, { authorization: stack.adminAuth });
    await stack.publish({ roomId: 1001, userId: 'alice', srcType: 0 }, fixture('alice-camera.mp4'));
    const latency = await startLatency(stack, SHORT ? 2 : 20);
    const cost = await copyCost(stack, SHORT ? [1, 4] : [1, 10, 50], seconds);
    const fan = await fanOut(stack, SHORT ? [1, 20] : [1, 50, 200], seconds);
    const cp = await controlPlane(stack, 1000, SHORT ? 3 : 20);
    const results = { date: new Date().toISOString(), machine, short: SHORT, seconds, latency, cost, fanOut: fan, controlPlane: cp };
    const f1 = (x: number) => x.toFixed(1);
    console.log(`\nbypass live relay benchmark — ${results.date} — ${machine}${SHORT ? ' — SHORT run' : ''}\n`);
    console.log(`start latency (${latency.runs} starts, upstream already live)       relay p50 / p95      floor (bare ffmpeg) p50 / p95`);
    console.log(`  start call → first FLV video tag at a viewer       ${latency.relay.flvP50} / ${latency.relay.flvP95} ms       ${latency.floor.flvP50} / ${latency.floor.flvP95} ms (from spawn)`);
    console.log(`  start call → first HLS segment listed              ${latency.relay.hlsP50} / ${latency.relay.hlsP95} ms       ${latency.floor.hlsP50} / ${latency.floor.hlsP95} ms (from spawn)`);
    console.log(`  start API answer                                    ${latency.relay.apiP50} ms p50`);
    console.log(`\ncost of N copy channels (720p30 1.5 Mbit/s, RTMP + HLS out, ${seconds} s windows; CPU above the idle stack with every member publishing)`);
    console.log('  channels | whole stack CPU | floor CPU (bare ffmpeg + media server) | ratio | MiB/channel stack | floor');
    for (const c of cost) console.log(`  ${String(c.channels).padStart(8)} | ${f1(c.stackPct).padStart(14)}% | ${f1(c.floorPct).padStart(37)}% | ${(c.ratio === null ? 'n/a' : c.ratio.toFixed(2)).padStart(5)} | ${f1(c.stackMiBPerChannel).padStart(17)} | ${f1(c.floorMiBPerChannel)}`);
    console.log(`\nfan-out: HTTP-FLV viewers of one channel`);
    console.log('  viewers | media server CPU | media server MiB | slowest viewer ÷ fastest (bytes in the window)');
    for (const v of fan) console.log(`  ${String(v.viewers).padStart(7)} | ${f1(v.mediaPct).padStart(15)}% | ${f1(v.mediaMiB).padStart(16)} | ${v.slowest.toFixed(2)}`);
    console.log(`\ncontrol plane with ${cp.records} channel records: start p50/p99 ${cp.startP50}/${cp.startP99} ms (includes media start), stop ${cp.stopP50}/${cp.stopP99} ms, status ${cp.statusP50}/${cp.statusP99} ms`);
    const dir = path.join(path.dirname(new URL(import.meta.url).pathname), 'results');
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `suite-${results.date.slice(0, 10)}${SHORT ? '-short' : ''}.json`);
    fs.writeFileSync(file, JSON.stringify(results, null, 2) + '\n');
    console.log(`\nresults: ${path.relative(process.cwd(), file)}`);
  } finally {
    await stack.close();
  }
}

main().then(() => process.exit(0), (e: Error) => { console.error(e.stack ?? e.message); process.exit(1); });
