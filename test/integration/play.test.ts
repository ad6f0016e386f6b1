/**
 * The client-side player (`npm run cli -- play`, `probePlayback`) against real streams: one relay channel of the
 * alice fixture on every protocol (figures within the fixture's own), the CLI with --json and --snapshot, A/V drift
 * read from flash/beep marks (in sync, and with the sound 500 ms late), an upstream killed mid-run (stalls, then the
 * server ends the stream: exit 7; HLS stays stalled: exit 6), a password channel (refused with the reason, plays with
 * --pwd), and a foreign server (nginx-rtmp, Debian's libnginx-mod-rtmp) whose publisher goes away.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PLAY_EXIT, type PlaybackStats, type PlaybackSummary } from '../../src/player/stats.js';
import { probePlayback, type ProbeOptions } from '../../src/player/probe.js';
import { NginxRtmp, nginxRtmpMissing } from '../helpers/nginx-rtmp.js';
import { FFPROBE } from '../helpers/outputs.js';
import { fetchText } from '../helpers/media.js';
import { eventually, FFMPEG, fixture, sleep, startStack, type Stack } from '../helpers/stack.js';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-play-'));
let stack: Stack;

/** The fixture's truth, from ffprobe: size, frame rate, bit rates (kbit/s). */
let truth: { width: number; height: number; fps: number; videoKbps: number; audioKbps: number };

/**
 * A sync test signal: 640x360 30 fps, the whole picture white for 100 ms every 2 s and a 1 kHz beep for the same
 * 100 ms, the beep delayed by `delayMs` (adelay), 10 s (the relay loops it).
 */
function syncFile(name: string, delayMs: number): void {
  const flash = "drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill:enable='lt(mod(t,2),0.1)'";
  const beep = "aevalsrc='if(lt(mod(t,2),0.1),0.5*sin(2*PI*1000*t),0)':s=48000:c=stereo";
  execFileSync(FFMPEG, [
    ...['-hide_banner', '-loglevel', 'error', '-y'],
    ...['-f', 'lavfi', '-i', `testsrc2=size=640x360:rate=30,${flash}`],
    ...['-f', 'lavfi', '-i', beep],
    ...['-af', delayMs ? `adelay=${delayMs}:all=1` : 'anull', '-t', '10'],
    ...['-c:v', 'libx264', '-preset', 'veryfast', '-g', '60', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '96k'],
    path.join(dir, name),
  ]);
}

beforeAll(async () => {
  fs.copyFileSync(fixture('alice-camera.mp4'), path.join(dir, 'alice.mp4'));
  syncFile('sync-0.mp4', 0);
  syncFile('sync-500.mp4', 500);
  const { stdout } = await run(FFPROBE, [
    ...['-v', 'error', '-show_entries', 'stream=codec_type,width,height,r_frame_rate,bit_rate', '-of', 'json'],
    fixture('alice-camera.mp4'),
  ]);
  const streams = JSON.parse(stdout).streams as Record<string, string | number>[];
  const v = streams.find((s) => s.codec_type === 'video')!;
  const a = streams.find((s) => s.codec_type === 'audio')!;
  const [num, den] = String(v.r_frame_rate).split('/').map(Number) as [number, number];
  truth = {
    width: Number(v.width),
    height: Number(v.height),
    fps: num / den,
    videoKbps: Number(v.bit_rate) / 1000,
    audioKbps: Number(a.bit_rate) / 1000,
  };
  stack = await startStack({
    env: {
      RELAY_FILE_UPSTREAM_DIR: dir,
      RELAY_WORKER_CAPACITY: '16',
      RELAY_START_RATE_LIMIT_MS: '0',
      RELAY_LIVE_ENDED_AFTER_MS: '3000',
    },
  });
}, 120_000);

afterAll(async () => {
  await stack?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

type Url = { type: number; playUrl: string };
let nextRoom = 7100;

/** Starts a channel of `file` (a file upstream), or of an ingest member already publishing when `file` is null. */
async function channel(
  file: string | null,
  option: Record<string, unknown> = { encode: 3 },
  roomId = nextRoom++,
): Promise<{ id: string; flv: string; hls: string; ws: string; rtmp: string }> {
  if (file) {
    const reg = await stack.request('PUT', `/v1/rooms/${roomId}/upstreams`, { userId: 'u', srcType: 0, url: file });
    expect(reg.body.code, JSON.stringify(reg.body)).toBe(0);
  }
  const r = await stack.request('POST', '/v1/push/start', { roomId, userId: 'u', srcType: 0, option });
  expect(r.body.code, JSON.stringify(r.body)).toBe(0);
  const urls = r.body.urls as Url[];
  const id = r.body.channelId as string;
  const flv = urls.find((u) => u.type === 2)?.playUrl ?? `http://127.0.0.1:${stack.httpPort}/live/${id}.flv`;
  const hls = urls.find((u) => u.type === 1)?.playUrl ?? `http://127.0.0.1:${stack.httpPort}/hls/${id}/index.m3u8`;
  return { id, flv, hls, ws: flv.replace(/^http/, 'ws'), rtmp: `rtmp://127.0.0.1:${stack.rtmpPort}/live/${id}` };
}

/** Plays `url` with probePlayback to the end: every second's stats and the summary. */
async function probe(url: string, o: ProbeOptions): Promise<{ seconds: PlaybackStats[]; summary: PlaybackSummary }> {
  const p = probePlayback(url, { relayHttp: `http://127.0.0.1:${stack.httpPort}`, ...o });
  const seconds: PlaybackStats[] = [];
  for await (const s of p) seconds.push(s);
  return { seconds, summary: await p.summary };
}

/** Runs the CLI's play command; its exit code, the JSON lines it printed and its stderr. */
function cli(args: string[], during?: (lines: any[]) => void): Promise<{ code: number; lines: any[]; stderr: string }> {
  return new Promise((resolve) => {
    const env = { ...process.env };
    delete env.DISPLAY; // --display must say there is none
    delete env.WAYLAND_DISPLAY;
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/relay.ts', 'play', ...args], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: any[] = [];
    let out = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const parts = out.split('\n');
      out = parts.pop()!;
      for (const l of parts) if (l.startsWith('{')) lines.push(JSON.parse(l));
      during?.(lines);
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code: code ?? -1, lines, stderr }));
  });
}

const within = (value: number | null, expected: number, tolerance: number) => {
  expect(value).not.toBeNull();
  expect(Math.abs(value! - expected), `${value} vs ${expected}`).toBeLessThanOrEqual(tolerance);
};

describe('play: a relay channel on every protocol', () => {
  it('RTMP, HTTP-FLV, WS-FLV and HLS each decode the fixture: its size, fps ±5 %, bit rates ±25 %, A/V within ±100 ms, a latency', async () => {
    const ch = await channel('alice.mp4');
    await eventually(async () => /#EXTINF/.test((await fetchText(ch.hls)) ?? ''), 20_000);
    const results = await Promise.all(
      (['rtmp', 'flv', 'ws', 'hls'] as const).map(async (k) => [k, await probe(ch[k], { durationMs: 9000 })] as const),
    );
    for (const [k, { summary: s, seconds }] of results) {
      const at = `${k}: ${JSON.stringify(s)}`;
      expect(s.outcome, at).toMatch(/^(played|stalled)$/);
      expect(s.stalls, at).toBeLessThanOrEqual(1);
      expect(s.decodeErrors, at).toBe(0);
      expect([s.width, s.height], at).toEqual([truth.width, truth.height]);
      within(s.fps, truth.fps, truth.fps * 0.05);
      within(s.videoKbps, truth.videoKbps, truth.videoKbps * 0.25);
      within(s.audioKbps, truth.audioKbps, truth.audioKbps * 0.25);
      within(s.avDriftMs, 0, 100);
      expect(s.latencyMs, at).toBeGreaterThan(0);
      expect(s.latencyMs, at).toBeLessThan(15_000);
      expect(s.latencySource, at).toBe(k === 'hls' ? 'program-date-time' : 'relay-clock');
      expect(seconds.length, at).toBeGreaterThanOrEqual(7);
      expect(seconds.at(-1)!.state, at).toBe('playing');
      if (k === 'hls') {
        expect(seconds.at(-1)!.hls?.mediaSequence, at).toBeGreaterThanOrEqual(0);
        expect(seconds.at(-1)!.hls?.fetchMs, at).not.toBeNull();
      }
    }
    await stack.request('POST', '/v1/push/stop', { channelIds: [ch.id] });
  }, 90_000);

  it('the CLI: --json prints a line a second and the summary, its exit code; --snapshot writes a decoded frame of the right size', async () => {
    const ch = await channel('alice.mp4', { encode: 2 });
    const png = path.join(dir, 'snap.png');
    const r = await cli([ch.flv, '--for', '5s', '--json', '--snapshot', png, '--display']);
    expect(r.stderr).toMatch(
      /--display: no display here \(DISPLAY and WAYLAND_DISPLAY are unset\): measuring without a window/,
    );
    // played (0), or played with a stall (6) when the machine is busy with other tests: the exit code says which
    const summary = r.lines.at(-1);
    expect(r.code, r.stderr).toBe(summary.stalls === 0 ? PLAY_EXIT.played : PLAY_EXIT.stalled);
    expect(summary).toMatchObject({ summary: true, exitCode: r.code, snapshot: png, width: 1280 });
    expect(summary.outcome).toBe(summary.stalls === 0 ? 'played' : 'stalled');
    expect(r.lines.slice(0, -1).length).toBeGreaterThanOrEqual(5);
    for (const s of r.lines.slice(0, -1)) expect(s).toHaveProperty('avDriftMs');
    const { stdout } = await run(FFPROBE, [
      '-v',
      'error',
      '-show_entries',
      'stream=width,height',
      '-of',
      'csv=p=0',
      png,
    ]);
    expect(stdout.trim()).toBe(`${truth.width},${truth.height}`);
    await stack.request('POST', '/v1/push/stop', { channelIds: [ch.id] });
  }, 60_000);
});

describe('play: HLS master playlists and damaged streams', () => {
  it('a tiered channel: --variant picks the tier of the master playlist, decoded at the RESOLUTION it declares', async () => {
    const ch = await channel('alice.mp4', { encode: 1, rateTypes: [0, 10] });
    const master = await eventually(async () => {
      const t = await fetchText(ch.hls);
      return t && /RESOLUTION=\d+x360/.test(t) ? t : null;
    }, 30_000);
    const declared = /RESOLUTION=(\d+)x360[^\n]*\n([^\n]+)/.exec(master)!;
    const [low, best] = await Promise.all([
      probe(ch.hls, { durationMs: 7000, variant: 'r10' }),
      probe(ch.hls, { durationMs: 7000 }),
    ]);
    expect(low.seconds.at(-1)!.hls?.variant?.uri, JSON.stringify(low.seconds.at(-1))).toBe(declared[2]);
    expect([low.summary.width, low.summary.height]).toEqual([Number(declared[1]), 360]);
    expect(low.summary.videoKbps).toBeLessThan(600);
    expect([best.summary.width, best.summary.height]).toEqual([truth.width, truth.height]);
    expect(best.seconds.at(-1)!.hls?.variant?.uri).toMatch(/r0\//);
    const none = await probe(ch.hls, { durationMs: 3000, variant: 'r99' });
    expect(none.summary.outcome).toBe('refused');
    expect(none.summary.reason).toMatch(/no variant "r99".*r10/);
    await stack.request('POST', '/v1/push/stop', { channelIds: [ch.id] });
  }, 60_000);

  it('damaged video data is counted as decode errors', async () => {
    // 4 s of the fixture as FLV, the slice data of every 10th inter frame overwritten, served at once over HTTP
    const flv = execFileSync(FFMPEG, [
      ...[
        '-hide_banner',
        '-loglevel',
        'error',
        '-i',
        fixture('alice-camera.mp4'),
        '-t',
        '4',
        '-c',
        'copy',
        '-f',
        'flv',
        '-',
      ],
    ]);
    let off = 13;
    let inter = 0;
    let damaged = 0;
    while (off + 11 < flv.length) {
      const size = flv.readUIntBE(off + 1, 3);
      const body = off + 11;
      if (flv[off] === 9 && flv[body] === 0x27 && flv[body + 1] === 1 && size > 200 && ++inter % 10 === 0) {
        for (let i = body + 40; i < body + size - 20; i += 7) flv[i] = (flv[i]! * 31 + 17) & 0xff;
        damaged++;
      }
      off += 11 + size + 4;
    }
    expect(damaged).toBeGreaterThan(5);
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'video/x-flv' });
      res.end(flv);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const { summary } = await probe(`http://127.0.0.1:${port}/damaged.flv`, { durationMs: 20_000 });
      expect(summary.frames, JSON.stringify(summary)).toBeGreaterThan(100);
      expect(summary.decodeErrors, JSON.stringify(summary)).toBeGreaterThan(0);
      expect(summary.outcome).toBe('ended');
    } finally {
      server.close();
    }
  }, 60_000);
});

describe('play: an answer that is no stream', () => {
  it('an HTML page at an FLV URL and a text at an .m3u8 URL are said to be no stream (never started)', async () => {
    const server = http.createServer((req, res) => {
      const html = req.url!.endsWith('.flv');
      res.writeHead(200, { 'content-type': html ? 'text/html; charset=utf-8' : 'application/octet-stream' });
      res.end(html ? '<html><body>a web page</body></html>' : 'hello, no playlist here');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const [page, text] = await Promise.all(
        [`http://127.0.0.1:${port}/page.flv`, `http://127.0.0.1:${port}/x.m3u8`].map(async (url) => {
          const p = probePlayback(url, { durationMs: 5000 });
          for await (const s of p) void s;
          return p.summary;
        }),
      );
      expect(page).toMatchObject({ outcome: 'never-started', exitCode: PLAY_EXIT['never-started'] });
      expect(page!.reason).toMatch(/the server answered text\/html, not a stream/);
      expect(text).toMatchObject({ outcome: 'never-started' });
      expect(text!.reason).toMatch(/not an HLS playlist/);
    } finally {
      server.close();
    }
  }, 30_000);
});

describe('play: A/V sync', () => {
  it('flash/beep marks in sync read about 0 ms; the same with the sound 500 ms late reads about +500 ms (FLV and HLS)', async () => {
    const inSync = await channel('sync-0.mp4');
    const late = await channel('sync-500.mp4');
    await eventually(async () => /#EXTINF/.test((await fetchText(late.hls)) ?? ''), 20_000);
    const [a, b, c] = await Promise.all([
      probe(inSync.flv, { durationMs: 9000 }),
      probe(late.flv, { durationMs: 9000 }),
      probe(late.hls, { durationMs: 9000 }),
    ]);
    expect(a.summary.avDriftSource, JSON.stringify(a.summary)).toBe('marks');
    within(a.summary.avDriftMs, 0, 100);
    for (const s of [b.summary, c.summary]) {
      expect(s.avDriftSource, JSON.stringify(s)).toBe('marks');
      within(s.avDriftMs, 500, 100);
      // the clocks themselves agree: the offset is in the content, as a publisher's would be
      expect(Math.abs(b.seconds.at(-1)!.avClockMs ?? 0)).toBeLessThan(150);
    }
    await stack.request('POST', '/v1/push/stop', { channelIds: [inSync.id, late.id] });
  }, 90_000);
});

describe('play: an upstream killed mid-run', () => {
  it('FLV: stalls are counted while the channel is interrupted, then the relay ends the stream: exit 7; HLS stays stalled: exit 6', async () => {
    const roomId = nextRoom++;
    const feeder = await stack.publish({ roomId, userId: 'u', srcType: 0 }, fixture('alice-camera.mp4'));
    const ch = await channel(null, { encode: 3 }, roomId);
    await eventually(async () => /#EXTINF/.test((await fetchText(ch.hls)) ?? ''), 20_000);
    let killed = false;
    const hls = probe(ch.hls, { durationMs: 16_000 });
    const flv = cli([ch.flv, '--for', '40s', '--json'], (lines) => {
      if (!killed && lines.filter((l) => l.state === 'playing').length >= 3) {
        killed = true;
        void feeder.close();
      }
    });
    const r = await flv;
    expect(killed).toBe(true);
    expect(r.code, r.stderr).toBe(PLAY_EXIT.ended);
    const summary = r.lines.at(-1);
    expect(summary).toMatchObject({ outcome: 'ended', exitCode: PLAY_EXIT.ended });
    expect(summary.stalls).toBeGreaterThanOrEqual(1);
    // the relay ends a lost live after RELAY_LIVE_ENDED_AFTER_MS (3 s here): the stall lasted about that long
    expect(summary.stallMs).toBeGreaterThan(2000);
    expect(r.lines.some((l) => l.state === 'stalled')).toBe(true);
    const h = await hls;
    expect(h.summary.outcome, JSON.stringify(h.summary)).toBe('stalled');
    expect(h.summary.exitCode).toBe(PLAY_EXIT.stalled);
    expect(h.seconds.at(-1)!.state).toBe('stalled');
    await stack.request('POST', '/v1/push/stop', { channelIds: [ch.id] });
  }, 90_000);
});

describe('play: a password channel', () => {
  it('is refused without --pwd on every protocol (401 with the reason) and plays with it', async () => {
    const ch = await channel('alice.mp4', { encode: 3, channelPassword: 'sesame' });
    await eventually(async () => (await fetch(ch.hls + '?pwd=sesame')).status === 200, 20_000);
    const r = await cli([ch.flv, '--for', '3s']);
    expect(r.code).toBe(PLAY_EXIT.refused);
    expect(r.stderr).toMatch(/refused: 401 password required/);
    for (const k of ['rtmp', 'ws', 'hls'] as const) {
      const { summary } = await probe(ch[k], { durationMs: 3000 });
      expect(summary, k).toMatchObject({ outcome: 'refused', status: 401 });
      expect(summary.reason, k).toMatch(/password/);
    }
    const wrong = await probe(ch.flv, { durationMs: 3000, pwd: 'nope' });
    expect(wrong.summary).toMatchObject({ outcome: 'refused', status: 403 });
    const ok = await cli([ch.flv, '--for', '4s', '--pwd', 'sesame', '--json']);
    expect([PLAY_EXIT.played, PLAY_EXIT.stalled], ok.stderr).toContain(ok.code);
    expect(ok.lines.at(-1)).toMatchObject({ outcome: ok.code === 0 ? 'played' : 'stalled', width: 1280 });
    await stack.request('POST', '/v1/push/stop', { channelIds: [ch.id] });
  }, 60_000);
});

const noNginx = nginxRtmpMissing();
if (noNginx) console.log(`SKIP play against nginx-rtmp: ${noNginx}`);

describe.skipIf(!!noNginx)('play: a foreign server (nginx-rtmp)', () => {
  it('plays its RTMP stream with the fixture figures, and reports the end when its publisher goes away', async () => {
    const port = 20000 + Math.floor(Math.random() * 20000);
    const nginx = new NginxRtmp(port);
    await nginx.start();
    const publisher = spawn(FFMPEG, [
      ...['-hide_banner', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', fixture('alice-camera.mp4')],
      ...['-c', 'copy', '-f', 'flv', `rtmp://127.0.0.1:${port}/play/cam`],
    ]);
    try {
      await sleep(1500);
      let killed = false;
      const p = probePlayback(`rtmp://127.0.0.1:${port}/play/cam`, { durationMs: 30_000 });
      const seconds: PlaybackStats[] = [];
      for await (const s of p) {
        seconds.push(s);
        if (!killed && seconds.filter((x) => x.state === 'playing').length >= 6) {
          killed = true;
          publisher.kill('SIGKILL');
        }
      }
      const s = await p.summary;
      expect(killed).toBe(true);
      expect(s.outcome, JSON.stringify(s)).toBe('ended');
      // nginx ends its players with the publisher: what was buffered plays out, no freeze before the end is counted
      // (the summary measured to the end, not to when it was noticed: up to a second later). nginx keeps no GOP
      // cache, so the player has no buffer: a hiccup of a busy machine may still be one short stall.
      expect(s.stallMs, JSON.stringify(s)).toBeLessThan(500);
      expect([s.width, s.height]).toEqual([truth.width, truth.height]);
      within(s.fps, truth.fps, truth.fps * 0.05);
      within(s.videoKbps, truth.videoKbps, truth.videoKbps * 0.25);
      within(s.avDriftMs, 0, 100);
      expect(s.latencySource).toBe('arrival');
      expect(s.decodeErrors).toBe(0);
    } finally {
      publisher.kill('SIGKILL');
      await nginx.close();
    }
  }, 60_000);
});
