import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import zlib from 'node:zlib';
import { inspectPng, rawImageBytes } from '../../src/watermarks/png.js';
import { checkPlay, hashChannelPassword, playTokenOf, tokenisePlaylist } from '../../src/channels/password.js';
import { bestFirst, tierEncoding } from '../../src/channels/tiers.js';
import { recordSinks } from '../../src/records/index.js';
import { masterVariants } from '../../src/worker/plan.js';
import { masterPlaylist } from '../../src/media/hls.js';
import { planTracks } from '../../src/channels/tracks.js';
import { loadConfig } from '../../src/config/index.js';
import type { Channel } from '../../src/channels/types.js';

function png(width: number, height: number): Buffer {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'png-'));
  try {
    execFileSync(loadConfig({}).ffmpegPath, [
      '-hide_banner',
      '-loglevel',
      'error',
      '-f',
      'lavfi',
      '-i',
      `color=c=blue:size=${width}x${height}`,
      '-frames:v',
      '1',
      path.join(dir, 'a.png'),
    ]);
    return fs.readFileSync(path.join(dir, 'a.png'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The master playlist as forecast before any segment is read (MasterPlaylistWriter then measures). */
const masterFor = (...args: Parameters<typeof masterVariants>) =>
  masterPlaylist(masterVariants(...args).map((v) => v.forecast));

describe('PNG checks', () => {
  const good = png(64, 32);
  it('a whole PNG gives its size', async () => {
    expect(await inspectPng(good)).toMatchObject({ width: 64, height: 32 });
  });
  it.each([
    ['a text file', Buffer.from('hello world, not an image at all, really not')],
    ['a truncated file', good.subarray(0, good.length - 12)],
    [
      'a file with a flipped byte',
      (() => {
        const b = Buffer.from(good);
        b[b.length - 20] = b[b.length - 20]! ^ 0x55;
        return b;
      })(),
    ],
    ['a JPEG-like header', Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), good.subarray(4)])],
  ])('%s is refused with a reason', async (_n, buf) => {
    expect(await inspectPng(buf)).toHaveProperty('error');
  });

  // A PNG of the given header whose image data is `raw` deflated.
  const built = (w: number, h: number, raw: Buffer, interlace = 0) => {
    const chunk = (type: string, data: Buffer) => {
      const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
      const len = Buffer.alloc(4);
      len.writeUInt32BE(data.length);
      const crc = Buffer.alloc(4);
      crc.writeUInt32BE(zlib.crc32(td));
      return Buffer.concat([len, td, crc]);
    };
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(w, 0);
    ihdr.writeUInt32BE(h, 4);
    ihdr.set([8, 6, 0, 0, interlace], 8);
    const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    return Buffer.concat([
      sig,
      chunk('IHDR', ihdr),
      chunk('IDAT', zlib.deflateSync(raw, { level: 9 })),
      chunk('IEND', Buffer.alloc(0)),
    ]);
  };

  it('a decompression bomb (16x16 header, 256 MiB of data) is refused quickly, without inflating it', async () => {
    const bomb = built(16, 16, Buffer.alloc(256 << 20));
    const t0 = Date.now();
    expect(await inspectPng(bomb)).toEqual({ error: 'image data inflates past the size the header promises' });
    expect(Date.now() - t0).toBeLessThan(5000); // inflating it all takes far longer; generous for a busy machine
  });

  it('interlaced PNGs are checked against the size of their seven passes', async () => {
    const rows = (w: number, h: number) => h * (1 + w * 4);
    const passes = rows(2, 2) + rows(1, 2) + rows(3, 1) + rows(2, 3) + rows(5, 2) + rows(4, 5) + rows(9, 4); // 81 pixels
    expect(rawImageBytes({ width: 9, height: 9, bitDepth: 8, colorType: 6 }, true)).toBe(passes);
    expect(await inspectPng(built(9, 9, Buffer.alloc(passes), 1))).toMatchObject({ width: 9, height: 9 });
    expect(await inspectPng(built(9, 9, Buffer.alloc(passes + 4096), 1))).toHaveProperty('error');
  });

  it('a header larger than the limit is refused before its data is inflated', async () => {
    expect(await inspectPng(built(5000, 10, Buffer.alloc(10)), { maxSide: 4096 })).toEqual({
      error: 'larger than 4096x4096 pixels',
    });
  });
});

describe('channel password', () => {
  const hash = hashChannelPassword('ch_1', 's3cret');
  it.each([
    [{}, 'missing'],
    [{ pwd: 's3cret' }, 'ok'],
    [{ pwd: 'S3cret' }, 'wrong'],
    [{ token: playTokenOf(hash) }, 'ok'],
    [{ token: 'x' }, 'wrong'],
    [{ pwd: ['s3cret'] }, 'missing'],
  ])('query %j → %s', (q, want) => {
    expect(checkPlay('ch_1', hash, q)).toBe(want);
  });
  it('an open channel needs nothing, and the hash depends on the channel', () => {
    expect(checkPlay('ch_1', undefined, {})).toBe('ok');
    expect(hashChannelPassword('ch_2', 's3cret')).not.toBe(hash);
  });
  it('a served playlist carries the token on every URI line and nowhere else', () => {
    expect(tokenisePlaylist('#EXTM3U\n#EXTINF:2,\nseg_1.ts\nr0/index.m3u8\n', 'abc')).toBe(
      '#EXTM3U\n#EXTINF:2,\nseg_1.ts?token=abc\nr0/index.m3u8?token=abc\n',
    );
  });
});

describe('tiers, recordings and the master playlist', () => {
  it('ORIGINAL copies unless a watermark must be drawn; 550 and 900 have their sizes and bitrates', () => {
    expect(tierEncoding(0, false, 2)).toBeUndefined();
    expect(tierEncoding(0, true, 2, 1500)).toEqual({ videoKbps: 1500, audioKbps: 128, keyframeSeconds: 2 });
    expect(tierEncoding(10, false, 2)).toEqual({ maxHeight: 360, videoKbps: 486, audioKbps: 64, keyframeSeconds: 2 });
    expect(tierEncoding(20, false, 2)).toEqual({ maxHeight: 540, videoKbps: 836, audioKbps: 64, keyframeSeconds: 2 });
    expect(bestFirst([10, 0, 20])).toEqual([0, 20, 10]);
  });

  it('record file types map to sinks by their bits', () => {
    expect(recordSinks('/r', 'ch_1', 7, 4, 5400, 2).map((s) => s.kind + ('format' in s ? `:${s.format}` : ''))).toEqual(
      ['record:mp4'],
    );
    expect(recordSinks('/r', 'ch_1', 7, 7, 5400, 2).map((s) => s.kind + ('format' in s ? `:${s.format}` : ''))).toEqual(
      ['record:mp4', 'record:flv', 'record-hls'],
    );
    expect(recordSinks('/r', 'ch_1', 7, 3, 60, 2)).toEqual([
      { kind: 'record', format: 'flv', pattern: '/r/ch_1_7_%Y%m%d-%H%M%S', maxSeconds: 60 },
      { kind: 'record-hls', dir: '/r/hls', segmentSeconds: 2 },
    ]);
  });

  it('the forecast master lists tiers best first, never larger than the upstream, encoded tiers at their cap', () => {
    const ch = { option: { rateTypes: [10, 0, 20] }, watermark: undefined } as unknown as Channel;
    const text = masterFor(ch, { codec: 'h264', profile: 'High', width: 854, height: 480 }, 1200);
    expect(text.split('\n').filter((l) => l.startsWith('#EXT-X-STREAM-INF'))).toEqual([
      '#EXT-X-STREAM-INF:BANDWIDTH=1442400,RESOLUTION=854x480,CODECS="avc1.640028,mp4a.40.2"',
      '#EXT-X-STREAM-INF:BANDWIDTH=1168560,RESOLUTION=854x480,CODECS="avc1.4d401f,mp4a.40.2"',
      '#EXT-X-STREAM-INF:BANDWIDTH=727560,RESOLUTION=640x360,CODECS="avc1.4d401f,mp4a.40.2"',
    ]);
  });

  it('the master of a rotated upstream gives the displayed size, every tier encoded upright', () => {
    const tracks = planTracks({ video: 'h264', audio: 'aac', rotation: 90 });
    const ch = { option: { rateTypes: [0, 10] }, watermark: undefined, tracks } as unknown as Channel;
    const text = masterFor(ch, { codec: 'h264', profile: 'High', width: 640, height: 360 }, 1200, { rotation: 90 });
    expect(text.split('\n').filter((l) => l.startsWith('#EXT-X-STREAM-INF'))).toEqual([
      '#EXT-X-STREAM-INF:BANDWIDTH=1442400,RESOLUTION=360x640,CODECS="avc1.4d401f,mp4a.40.2"',
      '#EXT-X-STREAM-INF:BANDWIDTH=727560,RESOLUTION=202x360,CODECS="avc1.4d401f,mp4a.40.2"',
    ]);
  });
});

describe('channel cost', () => {
  const costs = loadConfig({}).costs;
  it("adds each tier's kind, and a watermark's decode and the re-encoded ORIGINAL", async () => {
    const { channelCost } = await import('../../src/channels/cost.js');
    const ch = (rateTypes: number[], wm = false) =>
      ({
        option: { rateTypes },
        ...(wm ? { watermark: { id: 1, file: 'x', width: 1, height: 1 } } : {}),
      }) as unknown as Channel;
    expect(channelCost(ch([0]), costs)).toBe(costs.copy);
    expect(channelCost(ch([10, 20]), costs)).toBeCloseTo(costs.rate550 + costs.rate900);
    expect(channelCost(ch([0, 10, 20], true), costs)).toBeCloseTo(
      costs.watermark + costs.originalEncode + costs.rate550 + costs.rate900,
    );
  });
  it('capacity and costs are configurable and checked', () => {
    expect(loadConfig({ RELAY_WORKER_CAPACITY: '1.5', RELAY_COST_900: '0.3' })).toMatchObject({
      workerCapacity: 1.5,
      costs: { rate900: 0.3 },
    });
    expect(() => loadConfig({ RELAY_COST_COPY: 'cheap' })).toThrow(/RELAY_COST_COPY/);
  });
});
