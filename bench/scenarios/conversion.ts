/**
 * 8. Conversion: what ORIGINAL's per-track conversion costs (README "Codec policy"), per converted kind — Opus → AAC
 * (audio only), VP8, HEVC, AV1 → H.264, a rotated H.264 made upright, video only with a silent AAC track — and a copied
 * H.264 + AAC as the reference. Each kind is a generated 720p30 file upstream (10 s, looped at its native rate) relayed
 * by a channel with ORIGINAL (RTMP + HLS out); the CPU of that channel's relay ffmpeg (utime + stime from /proc) is
 * measured beside a bare ffmpeg replaying the relay's exact argv (read from /proc: same encoders and settings, same
 * outputs, HLS into another folder). Relay and bare alternate within each run.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { FIXTURE_DIR } from '../../fixtures/make.js';
import { probeCapabilities } from '../../src/media/ffmpeg/capabilities.js';
import { FFMPEG, ffmpegsMentioning } from '../../test/helpers/stack.js';
import { argvOf, killBare, relayFfmpegOf, replayOf, spawnBare } from '../lib/floor.js';
import { measure, median, readStat } from '../lib/proc.js';
import { allInState, sleep, startPush, stopPush, type Bench } from '../lib/context.js';

interface Kind {
  key: string;
  label: string;
  file: string;
  /** Encoders the ffmpeg needs to make the upstream. */
  needs: string[];
  /** Output options after the lavfi inputs (0: video, 1: audio unless `videoOnly`). */
  make: string[];
  videoOnly?: boolean;
  /** Display rotation tag written afterwards (a stream copy). */
  rotate?: number;
}

const x264 = ['-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p', '-g', '60', '-b:v', '2M'];
const aac = ['-c:a', 'aac', '-b:a', '128k'];
const opus = ['-c:a', 'libopus', '-b:a', '64k'];
const AV1_ARGS: Record<string, string[]> = {
  libsvtav1: ['-preset', '12'],
  'libaom-av1': ['-cpu-used', '8', '-row-mt', '1', '-usage', 'realtime'],
  librav1e: ['-speed', '10'],
};

function kinds(av1: string | undefined): Kind[] {
  return [
    {
      key: 'copy',
      label: 'H.264 + AAC copied (reference)',
      file: 'h264-aac.mp4',
      needs: ['libx264'],
      make: [...x264, ...aac],
    },
    {
      key: 'opus',
      label: 'Opus → AAC (H.264 copied)',
      file: 'h264-opus.mkv',
      needs: ['libx264', 'libopus'],
      make: [...x264, ...opus],
    },
    {
      key: 'vp8',
      label: 'VP8 + Opus → H.264 + AAC',
      file: 'vp8-opus.webm',
      needs: ['libvpx', 'libopus'],
      make: ['-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '2M', '-g', '60', ...opus],
    },
    {
      key: 'hevc',
      label: 'HEVC + AAC → H.264 + AAC',
      file: 'hevc-aac.mp4',
      needs: ['libx265'],
      make: [
        '-c:v',
        'libx265',
        '-preset',
        'ultrafast',
        '-b:v',
        '2M',
        '-x265-params',
        'keyint=60:log-level=error',
        ...aac,
      ],
    },
    {
      key: 'av1',
      label: 'AV1 + Opus → H.264 + AAC',
      file: 'av1-opus.webm',
      needs: [av1 ?? 'an AV1 (libsvtav1, libaom-av1 or librav1e)', 'libopus'],
      make: ['-c:v', av1 ?? '', ...(AV1_ARGS[av1 ?? ''] ?? []), '-b:v', '1500k', '-g', '60', ...opus],
    },
    {
      key: 'rotated',
      label: 'rotated 90° H.264 → upright H.264 + AAC',
      file: 'h264-rotated.mp4',
      needs: ['libx264'],
      make: [...x264, ...aac],
      rotate: 90,
    },
    {
      key: 'silent',
      label: 'video only: H.264 copied + silent AAC',
      file: 'h264-only.mp4',
      needs: ['libx264'],
      make: [...x264],
      videoOnly: true,
    },
  ];
}

export interface ConversionResult {
  key: string;
  label: string;
  /** ORIGINAL's plan as the channel view says it: `<video mode>/<audio mode>`. */
  tracks: string;
  /** The encoders of the relay's argv, e.g. `libx264 veryfast + aac`. */
  encoders: string;
  /** CPU of the relay ffmpeg and of the bare one, % of one core (medians). */
  relayPct: number;
  barePct: number;
  ratio: number;
  relayFps: number;
  bareFps: number;
  runs: { relayPct: number; barePct: number }[];
}

const WARMUP_MS = 3000;
const DIR = path.join(FIXTURE_DIR, 'bench-conversion');

// encoders that log to stderr whatever -loglevel says (SVT-AV1) stay quiet; an error still reaches the thrown message
const QUIET = { stdio: ['ignore', 'ignore', 'pipe'] as ('ignore' | 'pipe')[] };

/** Makes a kind's upstream (720p30, 10 s, a 440 Hz tone) once; later runs reuse it. */
function upstreamFile(k: Kind): string {
  const out = path.join(DIR, k.file);
  if (fs.existsSync(out)) return out;
  fs.mkdirSync(DIR, { recursive: true });
  const plain = k.rotate ? path.join(DIR, `plain-${k.file}`) : out;
  execFileSync(
    FFMPEG,
    [
      ...[
        '-hide_banner',
        '-loglevel',
        'error',
        '-y',
        '-f',
        'lavfi',
        '-i',
        'testsrc2=size=1280x720:rate=30:duration=10',
      ],
      ...(k.videoOnly ? [] : ['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000:duration=10']),
      ...k.make,
      `${plain}.part${path.extname(k.file)}`,
    ],
    QUIET,
  );
  fs.renameSync(`${plain}.part${path.extname(k.file)}`, plain);
  if (k.rotate) {
    execFileSync(
      FFMPEG,
      [
        ...['-hide_banner', '-loglevel', 'error', '-y', '-i', plain, '-c', 'copy'],
        ...['-metadata:s:v:0', `rotate=${k.rotate}`, out],
      ],
      QUIET,
    );
    fs.rmSync(plain);
  }
  return out;
}

/** The encoders an argv runs (`-c:v libx264 -preset veryfast` → `libx264 veryfast`), or `copy`. */
function encodersOf(argv: readonly string[]): string {
  const used: string[] = [];
  argv.forEach((a, i) => {
    if (!/^-c(?::[va])?$/.test(a) || argv[i + 1] === 'copy') return;
    const preset = argv[i + 1] === 'libx264' && argv[i + 2] === '-preset' ? ` ${argv[i + 3]}` : '';
    const name = `${argv[i + 1]}${preset}`;
    if (!used.includes(name)) used.push(name);
  });
  return used.length ? used.join(' + ') : 'copy';
}

export async function conversionCosts(b: Bench, keys?: readonly string[]): Promise<ConversionResult[]> {
  const { stack } = b;
  const encoders = (await probeCapabilities(FFMPEG))?.encoders ?? new Map<string, string>();
  const av1 = ['libsvtav1', 'libaom-av1', 'librav1e'].find((e) => encoders.has(e));
  const out: ConversionResult[] = [];
  const all = kinds(av1).filter((k) => !keys || keys.includes(k.key));
  for (const [i, k] of all.entries()) {
    const lacking = k.needs.filter((e) => !encoders.has(e));
    if (lacking.length) {
      b.log(`  SKIP ${k.label}: ${FFMPEG} lacks the ${lacking.join(', ')} encoder`);
      continue;
    }
    const t0 = Date.now();
    upstreamFile(k);
    if (Date.now() - t0 > 1000) b.log(`  made the ${k.key} upstream in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    const member = { roomId: 6000 + i, userId: `conv-${k.key}`, srcType: 0 as const };
    const url = path.relative(FIXTURE_DIR, path.join(DIR, k.file));
    const reg = await stack.request('PUT', `/v1/rooms/${member.roomId}/upstreams`, {
      userId: member.userId,
      srcType: 0,
      url,
    });
    if (reg.body?.code !== 0) throw new Error(`upstream ${url} refused: ${JSON.stringify(reg.body)}`);
    const runs: { relayPct: number; barePct: number; relayFps: number; bareFps: number }[] = [];
    let tracks = '?';
    let used = '?';
    for (let run = 0; run < b.runs; run++) {
      // relay: the channel live (a re-planned start's first ffmpeg gone), then its one ffmpeg measured
      const { channelId } = await startPush(stack, { ...member, option: { encode: 6, rateType: 0 } });
      let argv: string[];
      let relayPct: number;
      let relayFps = NaN;
      try {
        await allInState(stack, [channelId], 'live', 30_000);
        const view = (await stack.request('GET', `/v1/push/${channelId}`)).body.channel;
        tracks = `${view.tracks?.video.mode ?? '?'}/${view.tracks?.audio?.mode ?? '?'}`;
        const pid = await relayFfmpegOf(channelId);
        argv = argvOf(pid);
        used = encodersOf(argv);
        await sleep(WARMUP_MS);
        const stats = async () =>
          (
            JSON.parse((await stack.redis.get(`${stack.prefix}:channel:${channelId}`))!) as {
              stats?: { frames: number; updatedAt: number };
            }
          ).stats;
        const f0 = await stats();
        const w = await measure({ ff: () => [pid] }, b.seconds, () => {
          if (!readStat(pid)) throw new Error(`relay ffmpeg of ${channelId} died during the measurement`);
        });
        relayPct = w.percent('ff');
        const f1 = await stats();
        if (f0 && f1 && f1.updatedAt > f0.updatedAt)
          relayFps = (f1.frames - f0.frames) / ((f1.updatedAt - f0.updatedAt) / 1000);
      } finally {
        await stopPush(stack, [channelId]);
        await allInState(stack, [channelId], 'stopped', 15000);
      }
      while (ffmpegsMentioning(channelId).length) await sleep(100);

      // bare: the same argv by hand
      const replay = await replayOf(stack, channelId, argv);
      const bare = spawnBare(replay.args, argv[0]);
      let barePct: number;
      let bareFps = NaN;
      try {
        const died = () => {
          if (!bare.alive()) throw new Error(`bare ffmpeg exited:\n${bare.stderr.slice(-8).join('\n')}`);
        };
        await sleep(WARMUP_MS);
        died();
        const fr0 = bare.progress.frame;
        const tb = performance.now();
        const barePid = bare.child.pid!;
        const w = await measure({ ff: () => [barePid] }, b.seconds, died);
        barePct = w.percent('ff');
        bareFps = (bare.progress.frame - fr0) / ((performance.now() - tb) / 1000);
      } finally {
        await killBare(bare.child);
        await replay.restore();
      }
      runs.push({ relayPct, barePct, relayFps, bareFps });
      b.log(
        `  ${k.label}${b.runs > 1 ? ` run ${run + 1}/${b.runs}` : ''} [${tracks}, ${used}]: relay ffmpeg ${relayPct.toFixed(1)} %, bare ${barePct.toFixed(1)} %, fps ${relayFps.toFixed(1)} / ${bareFps.toFixed(1)}`,
      );
    }
    const m = (f: (r: (typeof runs)[number]) => number) => median(runs.map(f));
    out.push({
      key: k.key,
      label: k.label,
      tracks,
      encoders: used,
      relayPct: m((r) => r.relayPct),
      barePct: m((r) => r.barePct),
      ratio: m((r) => r.relayPct / r.barePct),
      relayFps: m((r) => r.relayFps),
      bareFps: m((r) => r.bareFps),
      runs: runs.map(({ relayPct, barePct }) => ({ relayPct, barePct })),
    });
  }
  return out;
}
