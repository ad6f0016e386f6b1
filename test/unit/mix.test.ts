import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { colourYuv, layoutTiles, validateMix, type MixSpec } from '../../src/mix/layout.js';
import { blit, Composer, frameBytes, scaleFrame, slateOf, solidFrame, type Frame } from '../../src/mix/composer.js';
import { CHUNK_BYTES, CHUNK_MS, mixChunks, PcmFifo } from '../../src/mix/audio.js';
import { feederArgs, feederFilter, imageFrameArgs } from '../../src/media/ffmpeg/feeder.js';
import { buildRelayArgs, inputArgs } from '../../src/media/ffmpeg/args.js';
import { mixSources, mixEncoding } from '../../src/worker/plan.js';
import { MIX_MEMBER_CORES, mixCost } from '../../src/channels/cost.js';
import { parseControlMessage } from '../../src/channels/messages.js';
import { RelayError } from '../../src/errors/index.js';
import { statsOf } from '../../src/media-server/ingest.js';
import { MixEngine } from '../../src/mix/engine.js';
import { MAX_BACKLOG_S, MixPump } from '../../src/mix/pump.js';
import { MixService } from '../../src/channels/mix.js';
import { resolveOption } from '../../src/channels/options.js';
import { loadConfig } from '../../src/config/index.js';
import type { WorkerHeartbeat } from '../../src/queue/heartbeat.js';
import { MixRun } from '../../src/worker/mix-run.js';
import { fakeLifecycle, recordingLogger, testChannel } from '../fakes/channels.js';

const canvas = { width: 320, height: 180, fps: 15 };
const m = (userId: string, extra: object = {}) => ({ userId, srcType: 0 as const, ...extra });
const spec = (members: MixSpec['members'], layout: MixSpec['layout'] = 'grid'): MixSpec => ({
  members,
  layout,
  canvas,
  version: 1,
});
const full = { x: 0, y: 0, width: 1, height: 1 };
const codeOf = (f: () => void) => {
  try {
    f();
  } catch (e) {
    return (e as RelayError).code;
  }
  return 0;
};

describe('mix layouts', () => {
  it('grid: one member full canvas, two side by side, three or four in a 2×2 grid', () => {
    expect(layoutTiles(spec([m('a')]))).toMatchObject([{ x: 0, y: 0, w: 320, h: 180 }]);
    expect(layoutTiles(spec([m('a'), m('b')])).map((t) => [t.x, t.y, t.w, t.h])).toEqual([
      [0, 0, 160, 180],
      [160, 0, 160, 180],
    ]);
    const four = layoutTiles(spec([m('a'), m('b'), m('c'), m('d')]));
    expect(four.map((t) => [t.key, t.x, t.y, t.w, t.h, t.fit])).toEqual([
      ['a/camera', 0, 0, 160, 90, 'letterbox'],
      ['b/camera', 160, 0, 160, 90, 'letterbox'],
      ['c/camera', 0, 90, 160, 90, 'letterbox'],
      ['d/camera', 160, 90, 160, 90, 'letterbox'],
    ]);
  });

  it('float: the main member full canvas below, the others small on top at the right (or bottom)', () => {
    const t = layoutTiles(spec([m('a'), m('b', { main: true }), m('c')], 'float'));
    expect(t[0]).toMatchObject({ key: 'b/camera', x: 0, y: 0, w: 320, h: 180, z: 0 });
    expect(t.slice(1).map((x) => [x.key, x.x, x.y, x.w, x.h])).toEqual([
      ['a/camera', 236, 4, 80, 46],
      ['c/camera', 236, 54, 80, 46],
    ]);
    const bottom = layoutTiles({ ...spec([m('a'), m('b')], 'float'), floatPosition: 'bottom' });
    expect(bottom[1]).toMatchObject({ x: 4, y: 130 });
  });

  it('custom: pixels or fractions, even, in zOrder', () => {
    const t = layoutTiles(
      spec(
        [
          m('a', { x: 0.5, y: 0.5, width: 0.5, height: 0.5, zOrder: 2, fit: 'crop' }),
          m('b', { x: 0, y: 0, width: 320, height: 180, zOrder: 1 }),
          m('c', { x: 11, y: 13, width: 101, height: 51, zOrder: 3 }),
        ],
        'custom',
      ),
    );
    expect(t.map((x) => [x.key, x.x, x.y, x.w, x.h, x.fit])).toEqual([
      ['b/camera', 0, 0, 320, 180, 'letterbox'],
      ['a/camera', 160, 90, 160, 90, 'crop'],
      ['c/camera', 10, 12, 102, 52, 'letterbox'],
    ]);
  });

  it('custom: fractions only when all four of x, y, width, height are ≤ 1, otherwise integer pixels', () => {
    const one = (extra: object) => layoutTiles(spec([m('a', extra)], 'custom'))[0]!;
    // x 1 is pixel 1 once any value is > 1 (was read as the fraction 1: the whole canvas width)
    expect(one({ x: 1, y: 1, width: 101, height: 57 })).toMatchObject({ x: 0, y: 0, w: 102, h: 58 });
    expect(codeOf(() => validateMix(spec([m('a', { x: 1, y: 1, width: 101, height: 57 })], 'custom'), 4))).toBe(0);
    expect(one({ x: 0.5, y: 0, width: 0.5, height: 1 })).toMatchObject({ x: 160, y: 0, w: 160, h: 180 });
    // equal zOrder: list order, the later on top
    const t = layoutTiles(spec([m('p', { ...full, zOrder: 1 }), m('q', { ...full, zOrder: 1 })], 'custom'));
    expect(t.map((x) => x.key)).toEqual(['p/camera', 'q/camera']);
    const refused = (extra: object) => {
      try {
        validateMix(spec([m('a', extra)], 'custom'), 4);
      } catch (e) {
        return [(e as RelayError).code, (e as RelayError).message, (e as RelayError).hint];
      }
      return [0];
    };
    for (const bad of [
      { x: 0, y: 0, width: 0, height: 0 },
      { x: 0, y: 0, width: 1.5, height: 100 },
      { x: 0.5, y: 0, width: 100, height: 100 },
      { x: 0, y: 0, width: 0.001, height: 0.5 },
    ])
      expect(refused(bad), JSON.stringify(bad)).toEqual([50002, expect.any(String), expect.stringMatching(/fraction/)]);
  });

  it('validation refuses with 50002 and a hint', () => {
    const ok = spec([m('a'), m('b')]);
    expect(codeOf(() => validateMix(ok, 4))).toBe(0);
    expect(codeOf(() => validateMix(spec([m('a'), m('a')]), 4))).toBe(50002);
    expect(codeOf(() => validateMix(spec([m('a'), m('b'), m('c')]), 2))).toBe(50002);
    expect(codeOf(() => validateMix({ ...ok, canvas: { ...canvas, width: 321 } }, 4))).toBe(50002);
    expect(codeOf(() => validateMix({ ...ok, canvas: { ...canvas, fps: 60 } }, 4))).toBe(50002);
    expect(codeOf(() => validateMix({ ...ok, canvas: { ...canvas, background: 'red' } }, 4))).toBe(50002);
    expect(codeOf(() => validateMix(spec([m('a', { x: 200, y: 0, width: 200, height: 100 })], 'custom'), 4))).toBe(
      50002,
    );
    expect(codeOf(() => validateMix(spec([m('a', { x: 0, y: 0 })], 'custom'), 4))).toBe(50002);
    expect(codeOf(() => validateMix(spec([m('a', { volume: 250 })]), 4))).toBe(50002);
    try {
      validateMix(spec([m('a'), m('a')]), 4);
    } catch (e) {
      expect((e as RelayError).hint).toBeTruthy();
    }
  });

  it('colours in BT.601 limited range', () => {
    expect(colourYuv('#000000')).toEqual([16, 128, 128]);
    expect(colourYuv('#ffffff')).toEqual([235, 128, 128]);
    expect(colourYuv('#ff0000')).toEqual([82, 90, 240]);
  });
});

const px = (f: Frame, x: number, y: number) => [
  f.data[y * f.w + x],
  f.data[f.w * f.h + (y >> 1) * (f.w / 2) + (x >> 1)],
  f.data[(f.w * f.h * 5) / 4 + (y >> 1) * (f.w / 2) + (x >> 1)],
];

describe('mix composer', () => {
  it('draws tiles over the background in zOrder, clipped to their tile', () => {
    const bg = solidFrame(8, 8, [16, 128, 128]);
    const c = new Composer(8, 8, bg);
    const tiles = [
      { key: 'a', x: 0, y: 0, w: 8, h: 8, z: 0, fit: 'crop' as const },
      { key: 'b', x: 4, y: 4, w: 4, h: 4, z: 1, fit: 'crop' as const },
      { key: 'c', x: 0, y: 4, w: 2, h: 2, z: 2, fit: 'crop' as const },
    ];
    const frames: Record<string, Frame> = {
      a: solidFrame(8, 8, [100, 1, 2]),
      b: solidFrame(4, 4, [200, 3, 4]),
      c: solidFrame(4, 4, [50, 5, 6]), // an older, larger frame: clipped to its 2×2 tile
    };
    const out = { w: 8, h: 8, data: c.compose(tiles, (k) => ({ frame: frames[k]!, placeholder: false })) };
    expect(px(out, 0, 0)).toEqual([100, 1, 2]);
    expect(px(out, 6, 6)).toEqual([200, 3, 4]);
    expect(px(out, 1, 5)).toEqual([50, 5, 6]);
    expect(px(out, 2, 6)).toEqual([100, 1, 2]); // outside c's tile
    expect(out.data.length).toBe(frameBytes(8, 8));
  });

  it('a frame smaller than its tile leaves the background around it', () => {
    const c = new Composer(8, 8, solidFrame(8, 8, [16, 128, 128]));
    const tiles = [{ key: 'a', x: 0, y: 0, w: 8, h: 8, z: 0, fit: 'crop' as const }];
    const data = c.compose(tiles, () => ({ frame: solidFrame(4, 4, [99, 9, 9]), placeholder: false }));
    expect(px({ w: 8, h: 8, data }, 2, 2)).toEqual([99, 9, 9]);
    expect(px({ w: 8, h: 8, data }, 6, 6)).toEqual([16, 128, 128]);
  });

  it('blits at odd-free offsets and scales by nearest neighbour', () => {
    const dst = solidFrame(4, 4, [0, 0, 0]);
    blit(dst, solidFrame(2, 2, [9, 8, 7]), 2, 0, { x: 0, y: 0, w: 4, h: 4 });
    expect(px(dst, 3, 1)).toEqual([9, 8, 7]);
    expect(px(dst, 1, 1)).toEqual([0, 0, 0]);
    const big = scaleFrame(solidFrame(2, 2, [9, 8, 7]), 6, 4);
    expect([big.w, big.h, px(big, 5, 3)]).toEqual([6, 4, [9, 8, 7]]);
  });

  it('the placeholder is the last frame dimmed to grey, or flat grey', () => {
    const slate = slateOf(solidFrame(4, 4, [216, 10, 240]), 4, 4);
    expect(px(slate, 1, 1)).toEqual([116, 128, 128]);
    expect(px(slateOf(null, 4, 2), 0, 0)).toEqual([80, 128, 128]);
  });
});

const tone = (value: number) => {
  const b = Buffer.alloc(CHUNK_BYTES);
  for (let i = 0; i < CHUNK_BYTES / 2; i++) b.writeInt16LE(value, i * 2);
  return b;
};

describe('mix audio', () => {
  it('sums members with their volume, clamped to int16; none is silence', () => {
    expect(
      mixChunks([
        { pcm: tone(1000), gain: 1 },
        { pcm: tone(500), gain: 0.5 },
      ]).readInt16LE(0),
    ).toBe(1250);
    expect(
      mixChunks([
        { pcm: tone(30000), gain: 1 },
        { pcm: tone(30000), gain: 1 },
      ]).readInt16LE(2),
    ).toBe(32767);
    expect(mixChunks([{ pcm: tone(-30000), gain: 2 }]).readInt16LE(2)).toBe(-32768);
    expect(
      mixChunks([
        { pcm: tone(1000), gain: 0 },
        { pcm: null, gain: 1 },
      ]).equals(Buffer.alloc(CHUNK_BYTES)),
    ).toBe(true);
  });

  it('a FIFO waits for its jitter target, is silent on underrun, and drops beyond its cap', () => {
    const f = new PcmFifo(CHUNK_BYTES * 3, CHUNK_BYTES * 10);
    f.push(tone(1));
    f.push(tone(2));
    expect(f.pull()).toBeNull(); // 40 ms < 60 ms target
    f.push(tone(3));
    expect(f.pull()!.readInt16LE(0)).toBe(1);
    expect(f.pull()!.readInt16LE(0)).toBe(2);
    expect(f.pull()!.readInt16LE(0)).toBe(3);
    expect(f.pull()).toBeNull(); // underrun: buffers up again
    f.push(tone(4).subarray(0, 1000)); // chunks of any size
    f.push(Buffer.concat([tone(4).subarray(1000), tone(5), tone(6)]));
    expect(f.pull()!.readInt16LE(CHUNK_BYTES - 2)).toBe(4);
    for (let i = 0; i < 12; i++) f.push(tone(7));
    expect(f.bytes).toBeLessThanOrEqual(CHUNK_BYTES * 10);
    expect(f.dropped).toBeGreaterThan(0);
  });
});

describe('mix engine', () => {
  it('a feeder that keeps failing right after its start backs off (0.5 s, 1 s, 2 s …), logged once with the reason', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mix-unit-'));
    const failing = path.join(dir, 'ffmpeg');
    fs.writeFileSync(failing, '#!/bin/sh\necho "rtmp://x: Connection refused" >&2\nexit 1\n', { mode: 0o755 });
    const warns: unknown[][] = [];
    const logger = {
      info: () => undefined,
      debug: () => undefined,
      error: () => undefined,
      trace: () => undefined,
      warn: (...a: unknown[]) => warns.push(a),
      child: () => logger,
    };
    const spawns: number[] = [];
    const resolve = async () => {
      spawns.push(performance.now());
      return { source: { member: 'a/camera', url: 'rtmp://127.0.0.1:1/x/y', protocolWhitelist: 'rtmp,tcp' } };
    };
    const engine = new MixEngine(
      { ffmpegPath: failing, logger: logger as never, resolve },
      spec([m('a')]),
      solidFrame(320, 180, [16, 128, 128]),
    );
    try {
      await new Promise((r) => setTimeout(r, 3200));
    } finally {
      await engine.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
    // at 0, 0.5, 1.5 s (then 3.5 s): the gaps grow (each at least its delay), whatever the load of the machine
    const gaps = spawns.slice(1).map((t, i) => t - spawns[i]!);
    expect(gaps.length).toBeGreaterThanOrEqual(1);
    gaps.forEach((g, i) => expect(g).toBeGreaterThanOrEqual(450 * 2 ** i)); // 0.5 s, 1 s, 2 s: never a fixed 0.5 s
    const failed = warns.filter((w) => /right after its start/.test(String(w[1])));
    expect(failed).toHaveLength(1);
    expect(failed[0]![0]).toMatchObject({ member: 'a/camera', reason: expect.stringMatching(/Connection refused/) });
  });
});

describe('mix engine: an unreadable member', () => {
  it('a member whose lookup throws backs off like a failing feeder, warned once per streak', async () => {
    const log = recordingLogger();
    const calls: number[] = [];
    const resolve = async () => {
      calls.push(performance.now());
      throw new Error('egress refused: 403');
    };
    const engine = new MixEngine(
      { ffmpegPath: '/nonexistent/ffmpeg', logger: log, resolve },
      spec([m('a')]),
      solidFrame(320, 180, [16, 128, 128]),
    );
    await new Promise((r) => setTimeout(r, 1700));
    await engine.stop();
    // at 0, 0.5, 1.5 s: not every 0.5 s (4 calls in 1.7 s)
    expect(calls.length).toBeLessThanOrEqual(3);
    const gaps = calls.slice(1).map((t, i) => t - calls[i]!);
    gaps.forEach((g, i) => expect(g).toBeGreaterThanOrEqual(450 * 2 ** i));
    expect(log.warnings).toHaveLength(1);
    expect(log.warnings[0]![0]).toMatchObject({ member: 'a/camera', reason: 'egress refused: 403' });
  });
});

describe('mix pump', () => {
  // A pipe that takes nothing until `open`, then everything at once.
  class SlowPipe extends Writable {
    open = false;
    bytes = 0;
    maxPending = 0;
    private held: (() => void)[] = [];
    override _write(chunk: Buffer, _enc: string, done: () => void): void {
      this.bytes += chunk.length;
      this.maxPending = Math.max(this.maxPending, this.writableLength);
      if (this.open) done();
      else this.held.push(done);
    }
    release(): void {
      this.open = true;
      for (const d of this.held.splice(0)) d();
    }
  }

  it('a slow encoder holds a few frames at most, and video and audio skip the same media time', async () => {
    const log = recordingLogger();
    const [w, h, fps] = [64, 36, 30];
    const size = frameBytes(w, h);
    const pump = new MixPump(
      { width: w, height: h, fps, logger: log },
      () => Buffer.alloc(size),
      () => Buffer.alloc(CHUNK_BYTES),
    );
    const video = new SlowPipe({ highWaterMark: size });
    const audio = new SlowPipe();
    audio.open = true; // the audio pipe is read: only the video waits
    video.open = true;
    pump.attach({ stdin: video, fd3: audio });
    await new Promise((r) => setTimeout(r, 1200)); // it runs (its start is never warned of)
    video.open = false;
    await new Promise((r) => setTimeout(r, 1500)); // then the encoder reads no video for 1.5 s
    // the encoder may be waiting on its audio (it opens its inputs in turn): audio goes on while the video is stalled
    expect(audio.bytes / CHUNK_BYTES).toBeGreaterThan(40);
    video.release();
    await new Promise((r) => setTimeout(r, 2000)); // the audio written meanwhile is paid back once video flows
    pump.detach();
    const cap = Math.ceil(MAX_BACKLOG_S * fps) + 1;
    expect(video.maxPending).toBeLessThanOrEqual(cap * size); // not 2 s of canvas (60 frames)
    expect(video.bytes / size).toBeGreaterThan(cap + 8); // it went on once the encoder read again
    // the encoder stamps by count: the video written and the audio written are the same media time (within a chunk)
    const videoMs = (video.bytes / size) * (1000 / fps);
    const audioMs = (audio.bytes / CHUNK_BYTES) * CHUNK_MS;
    expect(Math.abs(videoMs - audioMs)).toBeLessThanOrEqual(CHUNK_MS + 1000 / fps);
    const behind = log.warnings.filter((x) => /encoder behind/.test(String(x[1])));
    expect(behind).toHaveLength(1);
  });
});

describe('mix layout updates', () => {
  const config = { ...loadConfig({}), mixMaxMembers: 8 };
  const roomy: WorkerHeartbeat = { workerId: 'w1', channels: 2, concurrency: 8, load: 0, capacity: 2, at: 0 };
  const harness = (workers: WorkerHeartbeat[] = [roomy]) => {
    const h = fakeLifecycle({ layout: { hlsDir: os.tmpdir(), recordsDir: os.tmpdir() } });
    // a slow read: two updates at once both read before either writes (as two API processes would)
    const store = {
      get: async (id: string) => {
        const ch = structuredClone(await h.records.get(id)); // a copy, as Redis answers
        await new Promise((r) => setTimeout(r, 20));
        return ch;
      },
    };
    const mix: MixSpec = { members: [m('a')], layout: 'float', floatPosition: 'bottom', canvas, version: 1 };
    const option = resolveOption({ encode: 2 });
    const ch = testChannel({ userId: '$mix', state: 'live', worker: 'w1', mix, option, input: { kind: 'mix' } });
    ch.cost = mixCost(mix, ch, config.costs);
    h.records.records.set(ch.channelId, structuredClone(ch));
    const deps = { config, store, lifecycle: h.lifecycle, bus: h.bus, workers: async () => workers };
    const service = new MixService(deps as never, null as never);
    return { ...h, ch, service };
  };

  it('concurrent updates each get their own version; the worker ends on the last one written', async () => {
    const { ch, service, records, bus } = harness();
    const rooms = { get: async () => null };
    const deps = { config, store: records, rooms, logger: recordingLogger(), secret: 's' };
    const run = await MixRun.start(deps as never, ch, 1, () => undefined);
    try {
      const layouts = ['grid', 'float', 'grid', 'float', 'grid'] as const;
      const answers = await Promise.all(
        layouts.map((layout, i) => service.updateLayout(ch.sdkAppId, ch.channelId, { members: [m(`u${i}`)], layout })),
      );
      const versions = answers.map((a) => a.version);
      expect(new Set(versions).size).toBe(layouts.length);
      expect([...versions].sort()).toEqual([2, 3, 4, 5, 6]);
      const rec = await records.get(ch.channelId);
      expect(rec!.mix!.version).toBe(6);
      const last = versions.indexOf(6); // the update written last is the one the record holds
      expect(rec!.mix!.members).toEqual([m(`u${last}`)]);
      expect(rec!.mix!.layout).toBe(layouts[last]);
      for (const _ of bus.control) await run.refresh(); // the control messages the worker hears
      expect(run.engine.version).toBe(rec!.mix!.version);
    } finally {
      await run.stop();
    }
  });

  it('the worker applies a rewrite of the record under the version it shows (the last write shows)', async () => {
    const { ch, records } = harness();
    const info: unknown[][] = [];
    const logger = { ...recordingLogger(), info: (...a: unknown[]) => info.push(a) };
    const deps = { config, store: records, rooms: { get: async () => null }, logger, secret: 's' };
    const run = await MixRun.start(deps as never, ch, 1, () => undefined);
    try {
      const rec = records.records.get(ch.channelId)!;
      rec.mix = { ...rec.mix!, members: [m('b')], version: 1 };
      await run.refresh();
      expect(info.some((x) => /mix layout applied/.test(String(x[1])))).toBe(true);
    } finally {
      await run.stop();
    }
  });

  it('an update replaces the layout whole: no floatPosition is the default again', async () => {
    const { ch, service, records } = harness();
    await service.updateLayout(ch.sdkAppId, ch.channelId, { members: [m('a'), m('b')], layout: 'float' });
    expect((await records.get(ch.channelId))!.mix!.floatPosition).toBeUndefined();
  });

  it("growing a mix is charged: the record's cost follows, refused with 50005 when its worker has no room", async () => {
    const full: WorkerHeartbeat = { workerId: 'w1', channels: 2, concurrency: 8, load: 1, capacity: 1.1, at: 0 };
    const { ch, service, records } = harness([full]);
    const four = [m('a'), m('b'), m('c'), m('d')];
    const err = await service
      .updateLayout(ch.sdkAppId, ch.channelId, { members: four, layout: 'grid' })
      .catch((e) => e);
    expect(err).toMatchObject({ code: 50005 });
    expect((await records.get(ch.channelId))!.cost).toBe(ch.cost); // nothing written
    const two = [m('a'), m('b')];
    await service.updateLayout(ch.sdkAppId, ch.channelId, { members: two, layout: 'grid' }); // +0.08 fits
    const grown = (await records.get(ch.channelId))!;
    expect(grown.cost).toBeCloseTo(ch.cost! + MIX_MEMBER_CORES, 4);
    expect(grown.cost).toBe(mixCost(grown.mix!, grown, config.costs));
    // shrinking always fits
    await service.updateLayout(ch.sdkAppId, ch.channelId, { members: [m('a')], layout: 'grid' });
    expect((await records.get(ch.channelId))!.cost).toBe(ch.cost);
  });
});

describe('ingest stats', () => {
  it('an audio-only publisher has no video codec nor video bitrate (not the string "undefined")', () => {
    const audioOnly = { inBytes: 16_000, audioCodec: 10, audioDatarate: 128 } as never;
    const s = statsOf(audioOnly, 0, 1);
    expect(s).toMatchObject({ videoCodec: null, videoKbps: 0, audioCodec: 'aac', width: 0, height: 0 });
    const av = { inBytes: 160_000, videoCodec: 7, videoWidth: 320, videoHeight: 180, videoFramerate: 15 };
    expect(statsOf({ ...av, audioCodec: 0 } as never, 0, 1)).toMatchObject({ videoCodec: 'h264', audioCodec: null });
  });
});

describe('mix ffmpeg arguments', () => {
  it('a feeder decodes to its tile size with its fit, raw video on stdout and PCM on fd 3', () => {
    expect(feederFilter({ width: 160, height: 90, fps: 15, fit: 'crop', padColour: '#000000' })).toBe(
      'fps=15,scale=160:90:force_original_aspect_ratio=increase,crop=160:90,setsar=1,format=yuv420p',
    );
    expect(feederFilter({ width: 160, height: 90, fps: 15, fit: 'letterbox', padColour: '#102030' })).toContain(
      'force_original_aspect_ratio=decrease,pad=160:90:(ow-iw)/2:(oh-ih)/2:color=0x102030',
    );
    const src = { member: 'a/camera', url: 'rtmp://127.0.0.1/ingest/x', protocolWhitelist: 'rtmp,tcp' };
    const spec = { width: 160, height: 90, fps: 15, fit: 'crop' as const, padColour: '#000000', audio: true };
    const args = feederArgs(src, spec).join(' ');
    expect(args).toContain('-map 0:v:0 -vf fps=15,');
    expect(args).toContain('-f rawvideo pipe:1');
    expect(args).toMatch(/-map 0:a:0 .*-ar 48000 -ac 2 -f s16le pipe:3$/);
    expect(feederArgs(src, { ...spec, audio: false }).join(' ')).not.toContain('pipe:3');
    // an audio-only member: no picture output, its PCM only
    const audioOnly = feederArgs(src, { ...spec, video: false }).join(' ');
    expect(audioOnly).not.toContain('pipe:1');
    expect(audioOnly).not.toContain('0:v:0');
    expect(audioOnly).toContain('-map 0:a:0');
    expect(imageFrameArgs('/x.png', 320, 180).join(' ')).toContain('scale=320:180,setsar=1,format=yuv420p');
  });

  it("the encoder reads the canvas and the mixed audio; every tier is encoded and maps input 1's audio", () => {
    const sources = mixSources(canvas);
    expect(inputArgs(sources[0]!).join(' ')).toBe(
      '-f rawvideo -pix_fmt yuv420p -video_size 320x180 -framerate 15 -thread_queue_size 64 -i pipe:0',
    );
    expect(inputArgs(sources[1]!).join(' ')).toBe('-thread_queue_size 256 -f s16le -ar 48000 -ac 2 -i pipe:3');
    const sink = { kind: 'rtmp' as const, url: 'rtmp://127.0.0.1/live/x' };
    const encode = mixEncoding(0, canvas, 2);
    expect(encode.videoKbps).toBe(300);
    expect(mixEncoding(0, { width: 1280, height: 720, fps: 30 }, 2).videoKbps).toBe(2765);
    const args = buildRelayArgs({ sources, tiers: [{ sinks: [sink], encode }], audioInput: 1 }).join(' ');
    expect(args).toContain('-map [v0] -map 1:a:0? -c:v libx264');
    expect(() => buildRelayArgs({ sources, tiers: [{ sinks: [sink] }], audioInput: 1 })).toThrow(/encoded/);
    expect(() => buildRelayArgs({ sources: [...sources, sources[0]!], tiers: [{ sinks: [sink], encode }] })).toThrow();
  });

  it('admission charges a mix by members, canvas and fps', () => {
    const costs = { copy: 0.0125, rate550: 0.24, rate900: 0.34, originalEncode: 0.3, watermark: 0.03 };
    const option = { rateTypes: [0] } as never;
    const small = mixCost({ members: [1, 2], canvas }, { option }, costs);
    const big = mixCost({ members: [1, 2, 3, 4], canvas: { width: 1280, height: 720, fps: 30 } }, { option }, costs);
    expect(big).toBeGreaterThan(small * 3);
  });

  it('the layout control message parses', () => {
    const channelId = 'ch_0123456789abcdef0123';
    expect(parseControlMessage(JSON.stringify({ type: 'mix-layout', channelId }))).toEqual({
      type: 'mix-layout',
      channelId,
    });
    expect(parseControlMessage(JSON.stringify({ type: 'other', channelId }))).toBeNull();
  });
});
