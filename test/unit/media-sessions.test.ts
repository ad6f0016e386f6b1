import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../src/log.js';
import { PublisherIdleWatch } from '../../src/media-server/idle.js';
import { PlaylistWait } from '../../src/media-server/hls-wait.js';
import { mediaPacketsOf, patchSessions, rtmpOnStream } from '../../src/media-server/session-patch.js';
import type { NmsBroadcast, NmsContext, NmsSession } from '../../src/media-server/nms.js';
import { unsuffixedStream, withFlvStream } from '../../src/media-server/routes.js';

const require = createRequire(import.meta.url);
/** node-media-server's own RTMP message builder (what its broadcasts send viewers). */
const Rtmp = require('node-media-server/src/protocol/rtmp.js') as {
  createMessage(p: { codec_type: number; flags: number; dts: number; pts: number; size: number; data: Buffer }): Buffer;
};
const message = (codecType: number, size: number, dts = 40) =>
  Rtmp.createMessage({ codec_type: codecType, flags: 1, dts, pts: dts, size, data: Buffer.alloc(size, 7) });

describe('RTMP media on the viewer’s message stream', () => {
  it('nms addresses media to stream 0; the copy goes to the stream createStream answered, one copy for all viewers', () => {
    for (const [type, size] of [
      [9, 100],
      [8, 10],
      [18, 50],
      [9, 200_000], // several chunks: only the first (type 0) chunk carries the stream id
    ] as const) {
      const m = message(type, size);
      expect(m.readUInt32LE(8)).toBe(0);
      const out = rtmpOnStream(m, 1);
      expect(out).not.toBe(m);
      expect(out.readUInt32LE(8)).toBe(1);
      // everything else byte for byte the same
      expect(Buffer.concat([out.subarray(0, 8), out.subarray(12)])).toEqual(
        Buffer.concat([m.subarray(0, 8), m.subarray(12)]),
      );
      expect(rtmpOnStream(m, 1)).toBe(out);
      expect(rtmpOnStream(m, 0)).toBe(m);
      expect(rtmpOnStream(m, 3).readUInt32LE(8)).toBe(3);
    }
  });

  it('leaves other buffers alone (commands, continuation chunks, short buffers)', () => {
    const command = Buffer.from('030000000000050100000000aabbccddee', 'hex'); // chunk stream 3
    const continuation = Buffer.concat([Buffer.from([0xc6]), Buffer.alloc(20)]); // type 3 on chunk stream 6
    for (const b of [command, continuation, Buffer.alloc(5)]) expect(rtmpOnStream(b, 1)).toBe(b);
  });
});

/** A fake nms session, as the patches and the idle watch see it. */
function fakeSession(id: string, streamPath: string) {
  const onPacket = vi.fn();
  const socket = { destroy: vi.fn(), listeners: () => [], removeListener: vi.fn(), on: vi.fn() };
  return {
    id,
    ip: '127.0.0.1:5000',
    protocol: 'rtmp',
    streamPath,
    streamApp: streamPath.split('/')[1],
    streamName: streamPath.split('/')[2],
    streamQuery: {},
    isPublisher: true,
    inBytes: 0,
    outBytes: 0,
    close: vi.fn(),
    socket,
    onPacket,
    rtmp: { onPacketCallback: onPacket, streamId: 1 },
  } as unknown as NmsSession & {
    socket: typeof socket;
    rtmp: { onPacketCallback: (p: object) => void; onPlay?: (i: { streamName: string }) => void };
  };
}

function context(): NmsContext {
  return { broadcasts: new Map(), sessions: new Map() } as unknown as NmsContext;
}

describe('publisher idle watch (RELAY_INGEST_IDLE_MS)', () => {
  const logger = createLogger('silent', 'test');

  it('drops a publisher that sent no media for idleMs, not one that goes on sending', () => {
    const ctx = context();
    patchSessions(ctx, logger, { playName: (_a, n) => n });
    const silent = fakeSession('a', '/ingest/1400000001_1_a_camera');
    const busy = fakeSession('b', '/live/ch_00000000000000000001');
    for (const s of [silent, busy]) {
      ctx.sessions.set(s.id, s);
      ctx.broadcasts.set(s.streamPath, { publisher: s, subscribers: new Map() } as unknown as NmsBroadcast);
    }
    const watch = new PublisherIdleWatch(ctx, logger, 3000);
    expect(watch.intervalMs).toBe(750);
    const packet = () => ({ codec_type: 9, flags: 1, dts: 0, pts: 0 });
    silent.rtmp.onPacketCallback(packet());
    expect(watch.check(0)).toEqual([]);
    for (const t of [1000, 2000, 2999]) {
      busy.rtmp.onPacketCallback(packet());
      expect(watch.check(t)).toEqual([]);
    }
    busy.rtmp.onPacketCallback(packet());
    expect(watch.check(3000)).toEqual([silent]);
    expect(silent.socket.destroy).toHaveBeenCalledTimes(1);
    // destroyed, not marked refused: nms ends the publish as a disconnect (the ingest unregisters the member)
    expect(silent.relayRejected).toBeUndefined();
    expect(busy.socket.destroy).not.toHaveBeenCalled();
    expect(mediaPacketsOf(busy)).toBe(4);
  });

  it('skips publishers already gone or refused, and 0 turns the watch off', () => {
    const ctx = context();
    const gone = fakeSession('g', '/ingest/x');
    const refused = Object.assign(fakeSession('r', '/ingest/y'), { relayRejected: true });
    ctx.sessions.set(refused.id, refused);
    for (const s of [gone, refused])
      ctx.broadcasts.set(s.streamPath, { publisher: s, subscribers: new Map() } as unknown as NmsBroadcast);
    const watch = new PublisherIdleWatch(ctx, logger, 1000);
    watch.check(0);
    expect(watch.check(60_000)).toEqual([]);
    const off = new PublisherIdleWatch(ctx, logger, 0);
    off.start();
    off.close();
  });
});

describe('RTMP play names', () => {
  it('go through the hook before nms resolves the broadcast (the query kept)', () => {
    const ctx = context();
    patchSessions(ctx, createLogger('silent', 'test'), {
      playName: (app, name) => (app === 'live' && name === 'ch_1' ? 'ch_1_r0' : name),
    });
    const seen: string[] = [];
    const s = fakeSession('p', '');
    Object.assign(s.rtmp, { streamApp: 'live', onPlay: (i: { streamName: string }) => seen.push(i.streamName) });
    ctx.sessions.set(s.id, s);
    s.rtmp.onPlay!({ streamName: 'ch_1?pwd=x' });
    s.rtmp.onPlay!({ streamName: 'ch_2' });
    expect(seen).toEqual(['ch_1_r0?pwd=x', 'ch_2']);
  });

  it('the unsuffixed name of a tiered channel is its best tier: ORIGINAL, else the highest bitrate', () => {
    expect(unsuffixedStream('ch_1', [0])).toBe('ch_1');
    expect(unsuffixedStream('ch_1', [10, 0, 20])).toBe('ch_1_r0');
    expect(unsuffixedStream('ch_1', [10, 20])).toBe('ch_1_r20');
    expect(withFlvStream('/live/ch_1.flv?pwd=a&b=c', 'ch_1_r0')).toBe('/live/ch_1_r0.flv?pwd=a&b=c');
    expect(withFlvStream('/live/ch_1.flv', 'ch_1_r20')).toBe('/live/ch_1_r20.flv');
  });
});

describe('playlist wait', () => {
  it('answers as soon as the file exists, false after the timeout or when the viewer goes away', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wait-'));
    try {
      const wait = new PlaylistWait(10);
      const file = path.join(dir, 'index.m3u8');
      expect(await wait.until(file, 50)).toBe(false);
      const gone = new AbortController();
      const early = wait.until(file, 5000, gone.signal);
      const waiting = [wait.until(file, 5000), wait.until(file, 5000)];
      await new Promise((r) => setTimeout(r, 30));
      expect(wait.waiting).toBe(3);
      gone.abort();
      expect(await early).toBe(false);
      const t0 = Date.now();
      fs.writeFileSync(file, '#EXTM3U\n');
      expect(await Promise.all(waiting)).toEqual([true, true]);
      expect(Date.now() - t0).toBeLessThan(500);
      expect(wait.waiting).toBe(0);
      expect(await wait.until(file, 0)).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
