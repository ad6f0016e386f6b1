import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FfmpegProcess } from '../../src/media/ffmpeg/process.js';
import { RelayClient } from '../../src/client/index.js';
import { flvTimeline, timelineFaults } from '../helpers/outputs.js';
import { decode } from '../helpers/media.js';
import { NginxRtmp, nginxRtmpMissing } from '../helpers/nginx-rtmp.js';
import { freePorts } from '../../src/dev/redis.js';
import { eventually, FFMPEG, fixture, sleep, startStack, type Stack } from '../helpers/stack.js';

/*
 * A mix of four members publishing into the ingest, each a looped fixture with its own colour and tone, on a small
 * canvas: the composed picture (pixel checks on decoded FLV frames) and sound (Goertzel per tone), live layout
 * changes under an attached FLV viewer and HLS reader, a member leaving and coming back.
 */
const run = promisify(execFile);
const W = 320;
const H = 180;
const FPS = 15;
const ROOM = 4242;
const RETENTION_MS = 6000;
const MEMBERS = [
  { userId: 'red', rgb: [255, 0, 0], tone: 440 },
  { userId: 'green', rgb: [0, 255, 0], tone: 660 },
  { userId: 'blue', rgb: [0, 0, 255], tone: 880 },
  { userId: 'yellow', rgb: [255, 255, 0], tone: 1100 },
] as const;
type Name = (typeof MEMBERS)[number]['userId'] | 'grey' | 'black';

let stack: Stack;
let tmp: string;
const publishers = new Map<string, FfmpegProcess>();
const fileOf = (userId: string) => path.join(tmp, `${userId}.flv`);

/** The member colour (or grey, a placeholder) nearest to an RGB pixel. */
function nameOf(p: readonly number[]): Name | 'other' {
  const [r, g, b] = p as [number, number, number];
  // a placeholder is grey (a dimmed greyscale slate, or flat grey); the background is black
  if (Math.max(r, g, b) - Math.min(r, g, b) < 30) return r > 20 ? 'grey' : 'black';
  let best: Name | 'other' = 'other';
  let bestD = 120 ** 2;
  for (const m of MEMBERS) {
    const d = (r - m.rgb[0]) ** 2 + (g - m.rgb[1]) ** 2 + (b - m.rgb[2]) ** 2;
    if (d < bestD) [best, bestD] = [m.userId, d];
  }
  return best;
}

/** Decodes an HTTP-FLV stream to RGB frames of the canvas size, keeping the latest with its arrival time. */
class FrameWatch {
  readonly child: ChildProcess;
  latest: { at: number; rgb: Buffer } | null = null;
  private pending = Buffer.alloc(0);
  constructor(url: string) {
    this.child = spawn(
      FFMPEG,
      ['-loglevel', 'error', '-fflags', 'nobuffer', '-i', url, '-an'].concat([
        '-vf',
        `scale=${W}:${H}`,
        '-pix_fmt',
        'rgb24',
        '-f',
        'rawvideo',
        'pipe:1',
      ]),
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    this.child.stdout!.on('data', (d: Buffer) => {
      this.pending = Buffer.concat([this.pending, d]);
      while (this.pending.length >= W * H * 3) {
        this.latest = { at: Date.now(), rgb: this.pending.subarray(0, W * H * 3) };
        this.pending = this.pending.subarray(W * H * 3);
      }
    });
  }
  get open(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
  at(x: number, y: number): Name | 'other' {
    const i = (y * W + x) * 3;
    return nameOf([...this.latest!.rgb.subarray(i, i + 3)]);
  }
  /** Waits for a frame arriving after `since` on which every point shows its name; answers its arrival time. */
  async until(points: [number, number, Name][], since = 0, timeoutMs = 15000): Promise<number> {
    let seen = '';
    const at = await eventually(
      async () => {
        if (!this.latest || this.latest.at < since) return null;
        seen = points.map(([x, y]) => this.at(x, y)).join(',');
        return points.every(([x, y, n]) => this.at(x, y) === n) ? this.latest.at : null;
      },
      timeoutMs,
      10,
    ).catch((e: Error) => {
      throw new Error(`${e.message}; want ${points.map((p) => p[2]).join(',')}, saw ${seen}`);
    });
    return at;
  }
  close(): void {
    this.child.kill('SIGKILL');
  }
}

/** The power of `freq` in mono PCM (Goertzel), normalised by the length. */
function goertzel(pcm: Int16Array, freq: number, rate = 48000): number {
  const k = 2 * Math.cos((2 * Math.PI * freq) / rate);
  let s1 = 0;
  let s2 = 0;
  for (const x of pcm) {
    const s = x + k * s1 - s2;
    s2 = s1;
    s1 = s;
  }
  return (s1 * s1 + s2 * s2 - k * s1 * s2) / pcm.length ** 2;
}

/** How far above the floor (550 Hz, 1500 Hz: no member's tone) each tone is in 2 s of the stream's sound. */
async function toneRatios(url: string, tones: readonly number[]): Promise<number[]> {
  const { stdout } = await run(
    FFMPEG,
    ['-loglevel', 'error', '-i', url, '-vn', '-ss', '1', '-t', '2', '-ac', '1', '-ar', '48000', '-f', 's16le', '-'],
    { encoding: 'buffer', maxBuffer: 1 << 24, timeout: 20000 },
  );
  const pcm = new Int16Array(stdout.buffer, stdout.byteOffset, Math.floor(stdout.length / 2));
  const floor = Math.max(goertzel(pcm, 550), goertzel(pcm, 1500));
  return tones.map((f) => goertzel(pcm, f) / floor);
}

/** When the worker applied layout `version` of mix `id`: the time of its log line in the stack's output. */
function appliedAt(id: string, version: number): number | null {
  for (const line of stack.procs.flatMap((p) => p.output)) {
    if (!line.includes('mix layout applied') || !line.includes(id)) continue;
    try {
      const j = JSON.parse(line) as { version?: number; time?: number };
      if (j.version === version && typeof j.time === 'number') return j.time;
    } catch {
      // not a JSON line
    }
  }
  return null;
}

async function makeFixture(m: (typeof MEMBERS)[number]): Promise<void> {
  const hex = m.rgb.map((v) => v.toString(16).padStart(2, '0')).join('');
  await run(
    FFMPEG,
    ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', `color=c=0x${hex}:s=320x240:r=15`]
      .concat(['-f', 'lavfi', '-i', `sine=f=${m.tone}:sample_rate=48000`, '-t', '4', '-c:v', 'libx264'])
      .concat([
        '-preset',
        'ultrafast',
        '-g',
        '15',
        '-pix_fmt',
        'yuv420p',
        '-c:a',
        'aac',
        '-f',
        'flv',
        fileOf(m.userId),
      ]),
  );
}

const publish = async (userId: string) =>
  publishers.set(userId, await stack.publish({ roomId: ROOM, userId, srcType: 0 }, fileOf(userId)));

let channelId = '';
let flvUrl = '';
let hlsUrl = '';
let recordTaskId = 0;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mix-'));
  await Promise.all(MEMBERS.map(makeFixture));
  // a short retention: the last test waits for a mix whose members are all away to stop by itself
  stack = await startStack({ env: { RELAY_RETENTION_MS: String(RETENTION_MS) } });
  for (const m of MEMBERS) await publish(m.userId);
}, 90_000);

afterAll(async () => {
  if (channelId) await stack?.request('POST', '/v1/push/stop', { channelIds: [channelId] });
  if (process.env.MIX_TEST_LOG)
    fs.writeFileSync(process.env.MIX_TEST_LOG, stack.procs.flatMap((p) => p.output).join('\n'));
  await stack?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const members = (names: string[]) => names.map((userId) => ({ userId, srcType: 0 }));
/** POST /v1/mix/start of a grid of `names` in `roomId` on the test canvas, FLV only: the raw answer. */
const startGridMix = (names: string[], roomId = ROOM) =>
  stack.request('POST', '/v1/mix/start', {
    roomId,
    members: members(names),
    layout: 'grid',
    canvas: { width: W, height: H, fps: FPS },
    option: { encode: 2 },
  });
// the centre of each grid quadrant (letterboxed 4:3 pictures: the centres are picture)
const GRID: [number, number, Name][] = [
  [80, 45, 'red'],
  [240, 45, 'green'],
  [80, 135, 'blue'],
  [240, 135, 'yellow'],
];

describe('mixing', () => {
  it('refuses a mix of a room that does not exist, and a bad layout, with SPEC codes', async () => {
    const canvas = { width: W, height: H, fps: FPS };
    const none = await startGridMix(['red'], 999);
    expect(none.body.code).toBe(40000410);
    const twice = await startGridMix(['red', 'red']);
    expect(twice.body).toMatchObject({ code: 50002 });
    expect(twice.body.hint).toBeTruthy();
    const image = await stack.request('POST', '/v1/mix/start', {
      roomId: ROOM,
      members: members(['red']),
      layout: 'grid',
      canvas: { ...canvas, backgroundImageId: 77 },
      option: { encode: 2 },
    });
    expect(image.body).toMatchObject({ code: 50002, message: expect.stringMatching(/background image/) });
    // field errors carry the push start's codes
    const base = { roomId: ROOM, members: members(['red']), layout: 'grid', canvas, option: { encode: 2 } };
    for (const [body, code] of [
      [{ ...base, option: {} }, 40000003],
      [{ ...base, option: { encode: 9 } }, 50004],
      [{ ...base, roomId: 0 }, 40000007],
      [{ ...base, members: [{ userId: 'red', srcType: 2 }] }, 40000004],
      [{ ...base, members: [{ userId: '$mix', srcType: 0 }] }, 40000006],
      [{ ...base, members: [{ userId: 'red', srcType: 0, x: 1, y: 0, width: 0, height: 0 }], layout: 'custom' }, 50002],
    ] as const)
      expect((await stack.request('POST', '/v1/mix/start', body)).body, JSON.stringify(body)).toMatchObject({ code });
  });

  it('grid of 4: each quadrant shows its member, the sound carries every tone', async () => {
    // through the SDK
    const client = new RelayClient({ baseUrl: stack.api, sdkAppId: stack.sdkAppId, secretKey: stack.secretKey });
    const res = await client.startMix(
      {
        roomId: ROOM,
        members: MEMBERS.map((m) => ({ userId: m.userId, srcType: 0 })),
        layout: 'grid',
        canvas: { width: W, height: H, fps: FPS, background: '#000000' },
      },
      { encode: 3, record: true, recordFileType: 4 },
    );
    channelId = res.channelId;
    recordTaskId = res.recordTaskId!;
    flvUrl = res.urls.find((u) => u.type === 2)!.playUrl;
    hlsUrl = res.urls.find((u) => u.type === 1)!.playUrl;
    expect((await client.getChannel(channelId)).upstream).toEqual({ source: 'mix' });
    const watch = new FrameWatch(flvUrl);
    try {
      await watch.until(GRID);
    } finally {
      watch.close();
    }
    const ratios = await toneRatios(
      flvUrl,
      MEMBERS.map((m) => m.tone),
    );
    MEMBERS.forEach((m, k) => expect(ratios[k], `${m.userId} ${m.tone} Hz`).toBeGreaterThan(50));
  }, 60_000);

  it('layout updates (float, custom) show within a second while an FLV viewer and an HLS reader stay on', async () => {
    // one mix per room at a time: its channel identity ($mix) is taken
    const again = await startGridMix(['red']);
    expect(again.body.code).toBe(40000415);
    expect(JSON.stringify(again.body)).toContain(channelId);
    const viewer = flvTimeline(flvUrl, 12);
    const watch = new FrameWatch(flvUrl);
    const segments = new Set<number>();
    let discontinuity = false;
    const reading = setInterval(() => {
      void fetch(hlsUrl)
        .then((r) => r.text())
        .then((text) => {
          if (text.includes('#EXT-X-DISCONTINUITY')) discontinuity = true;
          for (const m of text.matchAll(/seg_(\d+)\.ts/g)) segments.add(Number(m[1]));
        })
        .catch(() => undefined);
    }, 500);
    try {
      await watch.until(GRID);
      // the time from the worker applying a layout (its log line) to the first decoded frame showing it: the
      // relay's part (composition, encoder, FLV), apart from the API's and the decoding viewer's scheduling on a busy
      // machine; the API to the worker is measured on its own
      const times: number[] = [];
      const toWorker: number[] = [];
      const measure = async (points: [number, number, Name][], t0: number, version: number) => {
        const shown = await watch.until(points, t0);
        const applied = appliedAt(channelId, version);
        expect(applied, `layout ${version} applied (log line)`).not.toBeNull();
        toWorker.push(applied! - t0);
        times.push(shown - applied!);
      };
      // float: red full canvas, the others small in a column at the right
      let t0 = Date.now();
      const r = await stack.request('POST', `/v1/mix/${channelId}/layout`, {
        members: members(MEMBERS.map((m) => m.userId)),
        layout: 'float',
      });
      expect(r.body).toMatchObject({ code: 0, version: 2 });
      const FLOAT: [number, number, Name][] = [
        [60, 40, 'red'],
        [276, 27, 'green'],
        [276, 77, 'blue'],
        [276, 127, 'yellow'],
      ];
      await measure(FLOAT, t0, 2);
      await watch.until([...FLOAT, [160, 150, 'red']], t0); // the main tile at its full size (its new feeder)
      // custom: yellow full canvas below, red top-left and green bottom-right over it, blue removed
      t0 = Date.now();
      const client = new RelayClient({ baseUrl: stack.api, sdkAppId: stack.sdkAppId, secretKey: stack.secretKey });
      const updated = await client.updateMixLayout(channelId, {
        layout: 'custom',
        members: [
          { userId: 'yellow', srcType: 0, x: 0, y: 0, width: 1, height: 1, zOrder: 0, fit: 'crop' },
          { userId: 'red', srcType: 0, x: 0, y: 0, width: 0.5, height: 0.5, zOrder: 1, fit: 'crop' },
          { userId: 'green', srcType: 0, x: 160, y: 90, width: 160, height: 90, zOrder: 2, fit: 'crop' },
        ],
      });
      expect(updated).toEqual({ version: 3 });
      // tile centres: a tile whose feeder of the new size has not delivered yet shows its old frames scaled
      const CUSTOM: [number, number, Name][] = [
        [60, 30, 'red'],
        [240, 135, 'green'],
        [240, 45, 'yellow'],
        [80, 135, 'yellow'],
      ];
      await measure(CUSTOM, t0, 3);
      await watch.until([...CUSTOM, [20, 10, 'red'], [300, 170, 'green']], t0); // every tile at its size and fit
      console.log(`layout applied ${toWorker.join(', ')} ms after the request, seen ${times.join(', ')} ms after`);
      for (const t of times) expect(t).toBeLessThan(1000);
      for (const t of toWorker) expect(t).toBeLessThan(1000);
      const timeline = await viewer;
      // the encoder stamps by count: a gap or tracks apart is a restart or drift, not a slow machine (1 s: the default)
      expect(timelineFaults(timeline, { audio: true })).toEqual([]);
      expect(watch.open).toBe(true);
    } finally {
      clearInterval(reading);
      watch.close();
    }
    const seq = [...segments].sort((a, b) => a - b);
    expect(discontinuity).toBe(false);
    expect(seq.length).toBeGreaterThan(4);
    expect(seq.at(-1)! - seq[0]! + 1).toBe(seq.length); // every segment numbered in turn: no gap
  }, 90_000);

  it('a member that leaves shows a placeholder, and its picture again when it returns; the mix stays live, one recording', async () => {
    const watch = new FrameWatch(flvUrl);
    try {
      await watch.until([[20, 10, 'red']]);
      await publishers.get('red')!.close();
      const left = Date.now();
      await watch.until([[20, 10, 'grey']], left);
      console.log(`placeholder seen ${Date.now() - left} ms after the member stopped publishing`);
      await sleep(1500);
      expect((await stack.request('GET', `/v1/push/${channelId}`)).body).toMatchObject({ state: 'live' });
      const back = Date.now();
      await publish('red');
      await watch.until([[20, 10, 'red']], back, 20000);
      console.log(`member's picture back ${Date.now() - back} ms after it published again`);
      expect((await stack.request('GET', `/v1/push/${channelId}`)).body).toMatchObject({ state: 'live' });
    } finally {
      watch.close();
    }
    const stop = await stack.request('POST', '/v1/push/stop', { channelIds: [channelId] });
    expect(stop.body.results[0]).toMatchObject({ code: 0 });
    channelId = '';
    // the recording went on through every layout change and the member's absence: one file
    const files = await eventually(async () => {
      const listed = (await stack.request('GET', `/v1/records/${recordTaskId}`)).body.files as { durationMs: number }[];
      return listed?.length ? listed : null;
    });
    expect(files).toHaveLength(1);
    expect(files[0]!.durationMs).toBeGreaterThan(15000);
  }, 60_000);

  it('an external upstream (a registered file, checked as for a channel) is a member like one of the ingest', async () => {
    const reg = await stack.request('PUT', `/v1/rooms/${ROOM}/upstreams`, {
      userId: 'bars',
      srcType: 0,
      url: fixture('bob-camera.mp4'), // SMPTE colour bars
    });
    expect(reg.body.code).toBe(0);
    const res = await startGridMix(['bars', 'green']);
    expect(res.body).toMatchObject({ code: 0 });
    const watch = new FrameWatch(res.body.urls.find((u: { type: number }) => u.type === 2).playUrl);
    try {
      // the left half: the bars letterboxed (picture rows 45–135), several colours across; the right half: green
      await watch.until([[240, 90, 'green']]);
      await eventually(async () => {
        const across = new Set(Array.from({ length: 16 }, (_, i) => watch.at(5 + i * 10, 65)));
        return ['yellow', 'green', 'blue'].every((c) => across.has(c as Name)) && watch.at(80, 20) === 'black';
      });
    } finally {
      watch.close();
      await stack.request('POST', '/v1/push/stop', { channelIds: [res.body.channelId] });
      await stack.request('DELETE', `/v1/rooms/${ROOM}/upstreams/bars/0`);
    }
  }, 40_000);

  it.skipIf(nginxRtmpMissing() !== null)(
    'a mix started with option.pushTargets relays its canvas, with the mixed sound, to a CDN (nginx-rtmp)',
    async () => {
      const [port] = await freePorts(1);
      const nginx = new NginxRtmp(port!);
      await nginx.start();
      let id = '';
      try {
        const client = new RelayClient({ baseUrl: stack.api, sdkAppId: stack.sdkAppId, secretKey: stack.secretKey });
        const res = await client.startMix(
          {
            roomId: ROOM,
            members: [{ userId: 'green', srcType: 0 }],
            layout: 'grid',
            canvas: { width: W, height: H, fps: FPS },
          },
          { encode: 2, pushTargets: [{ url: `rtmp://127.0.0.1:${port}/live2/mix-key` }] },
        );
        id = res.channelId;
        const [target] = await eventually(async () => {
          const listed = await client.listPushTargets(id);
          return listed[0]?.state === 'live' ? listed : null;
        }, 20_000);
        expect(target!.bytesSent).toBeGreaterThan(0);
        const back = await decode(`rtmp://127.0.0.1:${port}/live2/mix-key`, { frames: 15, timeoutMs: 20_000 });
        expect(back).toMatchObject({ videoCodec: 'h264', width: W, height: H, audioCodec: 'aac' });
        const stop = await stack.request('POST', '/v1/push/stop', { channelIds: [id] });
        expect(stop.body.results[0]).toMatchObject({ code: 0 });
        // the mix's stream ending under its target is no failure of the destination
        await sleep(1000);
        const dropped = stack.procs.flatMap((p) => p.output).filter((l) => l.includes(id) && /target dropped/.test(l));
        console.log(
          stack.procs
            .flatMap((p) => p.output)
            .filter((l) => l.includes(id) && /target|ending/.test(l))
            .join('\n'),
        );
        expect(dropped).toEqual([]);
        const [after] = await client.listPushTargets(id);
        expect(after).toMatchObject({ state: 'stopped' });
        id = '';
      } finally {
        if (id) await stack.request('POST', '/v1/push/stop', { channelIds: [id] });
        await nginx.close();
      }
    },
    60_000,
  );

  it('an audio-only member is heard, its tile shows the placeholder, and its feeder is not respawned in a loop', async () => {
    const TONE = 1320;
    await run(
      FFMPEG,
      ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', `sine=f=${TONE}:sample_rate=48000`, '-t', '4'].concat(
        ['-c:a', 'aac', '-f', 'flv', fileOf('aonly')],
      ),
    );
    await publish('aonly');
    const res = await startGridMix(['red', 'aonly']);
    expect(res.body).toMatchObject({ code: 0 });
    const id = res.body.channelId as string;
    const url = res.body.urls.find((u: { type: number }) => u.type === 2).playUrl as string;
    try {
      const watch = new FrameWatch(url);
      try {
        await watch.until([
          [80, 90, 'red'],
          [240, 90, 'grey'],
        ]);
      } finally {
        watch.close();
      }
      // its feeder ffmpegs (the member's stream, PCM on fd 3) over 6 s: one, not one a second
      const pids = new Set<string>();
      for (const end = Date.now() + 6000; Date.now() < end; await sleep(200)) {
        const { stdout } = await run('pgrep', ['-f', `_aonly_camera.*pipe:3`]).catch(() => ({ stdout: '' }));
        for (const pid of stdout.split(/\s+/).filter(Boolean)) pids.add(pid);
      }
      console.log(`audio-only member: ${pids.size} feeder pid(s) in 6 s`);
      expect(pids.size).toBeGreaterThanOrEqual(1);
      expect(pids.size).toBeLessThanOrEqual(2);
      const [aonly, red] = await toneRatios(url, [TONE, 440]);
      expect(aonly, `aonly ${TONE} Hz`).toBeGreaterThan(50);
      expect(red, 'red 440 Hz').toBeGreaterThan(50);
      const log = stack.procs.flatMap((p) => p.output).join('\n');
      expect(log).toMatch(/mix member has no video/);
    } finally {
      await stack.request('POST', '/v1/push/stop', { channelIds: [id] });
      await publishers.get('aonly')?.close();
    }
  }, 60_000);

  it('a member not publishing yet shows the placeholder; a mix whose members are all away stops after the retention', async () => {
    const res = await startGridMix(['ghost']);
    expect(res.body).toMatchObject({ code: 0 });
    const id = res.body.channelId as string;
    const watch = new FrameWatch(res.body.urls.find((u: { type: number }) => u.type === 2).playUrl);
    try {
      await watch.until([[160, 90, 'grey']]);
    } finally {
      watch.close();
    }
    const ended = await eventually(async () => {
      const ch = (await stack.request('GET', `/v1/push/${id}`)).body;
      return ch.state === 'stopped' ? ch : null;
    }, RETENTION_MS + 10_000);
    expect(ended.startedAt).toBeGreaterThan(0);
    expect(ended.history.at(-1)).toMatchObject({
      state: 'stopped',
      reason: 'every member away for the retention time',
    });
  }, 40_000);
});
