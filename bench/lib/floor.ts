/**
 * The floor: bare ffmpeg processes started by hand with the relay's own arguments, publishing into the same
 * node-media-server, for channel records the bench writes itself (so the media server lets viewers play them).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../src/config/index.js';
import { planFor } from '../../src/worker/plan.js';
import { buildRelayArgs } from '../../src/media/ffmpeg/args.js';
import { playUrls } from '../../src/channels/urls.js';
import type { Channel } from '../../src/channels/types.js';
import { FFMPEG, ffmpegsMentioning, sleep, type Stack } from '../../test/helpers/stack.js';
import { resolveOption } from '../../src/channels/options.js';
import { runTokenQuery } from '../../src/auth/run-tokens.js';

/**
 * A channel record for a bare ffmpeg relaying a member's ingest stream in copy mode (RTMP + HLS out); its arguments
 * carry single-use run tokens: spawn it at once, once.
 */
export async function floorChannel(
  stack: Stack,
  userId: string,
  roomId = 1001,
): Promise<{ ch: Channel; args: readonly string[] }> {
  const cfg = loadConfig(stack.env);
  const channelId = 'ch_' + crypto.randomBytes(10).toString('hex');
  const ch: Channel = {
    channelId,
    sdkAppId: stack.sdkAppId,
    accountId: 'default',
    roomId,
    userId,
    srcType: 0,
    option: resolveOption({ encode: 3 }),
    input: { kind: 'ingest', streamName: `${stack.sdkAppId}_${roomId}_${userId}_camera` },
    urls: playUrls({ publicHost: '127.0.0.1', httpPort: stack.httpPort, rtmpPort: stack.rtmpPort }, channelId, 3, [0]),
    hls: true,
    state: 'live',
    createdAt: Date.now(),
    runGen: 1,
    history: [],
  };
  await stack.redis.set(`${stack.prefix}:channel:${channelId}`, JSON.stringify(ch));
  const secret = (await stack.redis.get(`${stack.prefix}:internal-secret`))!;
  // single-use tokens of run 1, valid for 30 s: spawn the ffmpeg at once
  const plan = planFor(ch, cfg, { secret, gen: 1 });
  for (const s of plan.tiers.flatMap((t) => t.sinks)) if (s.kind === 'hls') fs.mkdirSync(s.dir, { recursive: true });
  return { ch, args: buildRelayArgs(plan) };
}

/**
 * The relay ffmpeg's arguments with fresh run tokens in its internal URLs: the ones it was started with were used up
 * when it connected (single use), so a bare ffmpeg replaying its command line needs its own, signed with the internal
 * secret for the same channel and generation (`read` for the ingest, `publish` for the channel streams).
 */
export async function withFreshRunTokens(stack: Stack, args: string[]): Promise<string[]> {
  const secret = (await stack.redis.get(`${stack.prefix}:internal-secret`))!;
  // anywhere in an argument: the tiers' URLs sit inside tee muxer specifications
  const url = /(rtmp:\/\/[^/|\]]+)(\/[^?|\]]+)\?ch=([^&]+)&gen=(\d+)&exp=\d+&nonce=[0-9a-f]+&token=[0-9a-f]+/g;
  return args.map((a) =>
    a.replace(url, (_m, origin: string, streamPath: string, channelId: string, gen: string) => {
      const kind = streamPath.startsWith('/ingest/') ? 'read' : 'publish';
      return `${origin}${streamPath}?${runTokenQuery(secret, kind, streamPath, { channelId, gen: Number(gen) })}`;
    }),
  );
}

/**
 * Marks a stopped channel's record live again while a bare ffmpeg replays its run (the media server drops publishes
 * of ended channels); answers the function that puts the record back.
 */
export async function standInRun(stack: Stack, channelId: string): Promise<() => Promise<void>> {
  const key = `${stack.prefix}:channel:${channelId}`;
  const saved = (await stack.redis.get(key))!;
  await stack.redis.set(key, JSON.stringify({ ...(JSON.parse(saved) as Channel), state: 'live' }));
  return async () => void (await stack.redis.set(key, saved));
}

/** The pid of a channel's relay ffmpeg, once exactly one runs (a re-planned start's first ffmpeg is gone). */
export async function relayFfmpegOf(channelId: string, timeoutMs = 10000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pids = ffmpegsMentioning(channelId);
    if (pids.length === 1) return pids[0]!;
    if (Date.now() > deadline) throw new Error(`expected one relay ffmpeg for ${channelId}, found ${pids.length}`);
    await sleep(100);
  }
}

/** A process's argv, read from /proc (the relay ffmpeg's exact command line). */
export const argvOf = (pid: number): string[] =>
  fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);

/**
 * A stopped channel's relay argv made ready for a bare ffmpeg to replay: fresh run tokens, HLS into a separate folder
 * (with the same tier folders), the record live again meanwhile. `restore` puts the record back and removes the folder.
 */
export async function replayOf(
  stack: Stack,
  channelId: string,
  argv: readonly string[],
): Promise<{ args: string[]; restore(): Promise<void> }> {
  const hlsRoot = path.join(stack.dataDir, 'hls') + path.sep;
  const bareRoot = path.join(stack.dataDir, 'bare-hls') + path.sep;
  const args = (await withFreshRunTokens(stack, argv.slice(1))).map((a) => a.split(hlsRoot).join(bareRoot));
  const mirror = (from: string, to: string) => {
    fs.mkdirSync(to, { recursive: true });
    for (const e of fs.readdirSync(from, { withFileTypes: true }))
      if (e.isDirectory()) mirror(path.join(from, e.name), path.join(to, e.name));
  };
  mirror(path.join(hlsRoot, channelId), path.join(bareRoot, channelId));
  const restoreRecord = await standInRun(stack, channelId);
  return {
    args,
    async restore() {
      await restoreRecord();
      fs.rmSync(bareRoot, { recursive: true, force: true });
    },
  };
}

/** A bare ffmpeg and the latest figures of its `-progress pipe:1` output. */
export interface Bare {
  child: ChildProcess;
  /** `at`: when out_time last came (ms since the epoch) */
  progress: { frame: number; fps: number; speed: number; outTimeMs: number; at: number };
  stderr: string[];
  alive(): boolean;
}

const children = new Set<ChildProcess>();

/** Spawns ffmpeg by hand; with setpriv it dies with the bench even if the bench is killed hard. */
export function spawnBare(args: readonly string[], ffmpegPath = FFMPEG): Bare {
  const child = fs.existsSync('/usr/bin/setpriv')
    ? spawn('/usr/bin/setpriv', ['--pdeathsig', 'SIGKILL', '--', ffmpegPath, ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
      })
    : spawn(ffmpegPath, [...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const progress = { frame: 0, fps: 0, speed: 0, outTimeMs: 0, at: 0 };
  const stderr: string[] = [];
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    const lines = buf.split('\n');
    buf = lines.pop() ?? '';
    for (const l of lines) {
      const m = /^(frame|fps|speed|out_time_us)=\s*([\d.]+)/.exec(l.trim());
      if (!m) continue;
      if (m[1] === 'out_time_us') {
        progress.outTimeMs = Number(m[2]) / 1000;
        progress.at = Date.now();
      } else progress[m[1] as 'frame' | 'fps' | 'speed'] = Number(m[2]);
    }
  });
  child.stderr!.on('data', (d: Buffer) => {
    for (const l of d.toString().split('\n'))
      if (l.trim()) {
        stderr.push(l);
        if (stderr.length > 30) stderr.shift();
      }
  });
  return { child, progress, stderr, alive: () => child.exitCode === null && child.signalCode === null };
}

export function killBare(c: ChildProcess, graceMs = 3000): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      try {
        c.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }, graceMs);
    c.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    try {
      c.kill('SIGINT');
    } catch {
      /* gone */
    }
  });
}

/** Every bare ffmpeg still running (the bench's cleanup). */
export async function killAllBare(): Promise<void> {
  await Promise.all([...children].map((c) => killBare(c)));
}
