import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decodedBytes, inspectPng, rawImageBytes } from '../../src/watermarks/png.js';
import { InspectionLine } from '../../src/watermarks/inspections.js';
import { MAX_WATERMARK_DECODED_BYTES } from '../../src/watermarks/registry.js';
import { RelayError } from '../../src/errors/index.js';
import { memoryOf, pngOf, resetPeak } from '../helpers/png.js';

const MB = 1024 * 1024;

describe('the pixel budget of a watermark', () => {
  it('decoded size is width × height × bytes per pixel: channels × 1 byte (2 at 16 bits), a palette pixel 4 bytes', () => {
    const px = (colorType: number, bitDepth: number) => decodedBytes({ width: 10, height: 10, bitDepth, colorType });
    expect([px(6, 8), px(6, 16), px(2, 8), px(0, 1), px(0, 16), px(4, 8), px(3, 4)]).toEqual([
      400, 800, 300, 100, 200, 200, 400,
    ]);
    expect(MAX_WATERMARK_DECODED_BYTES).toBe(decodedBytes({ width: 4096, height: 4096, bitDepth: 8, colorType: 6 }));
  });

  it('a 4096x4096 16-bit RGBA image (128 MiB decoded) is refused from its header, before anything is inflated', async () => {
    const deep = pngOf(4096, 4096, { bitDepth: 16 });
    const t0 = performance.now();
    expect(await inspectPng(deep, { maxSide: 4096, maxDecodedBytes: MAX_WATERMARK_DECODED_BYTES })).toEqual({
      error: '4096x4096 pixels of 8 bytes decodes to 128 MiB, over the budget of 64 MiB',
    });
    expect(performance.now() - t0).toBeLessThan(100); // inflating its 134 MB takes several times that
  });
});

describe('the image data is inflated as a stream and dropped', () => {
  it('ten concurrent inspections of 4096x4096 16-bit images (134 MB inflated each) hold no image: RSS grows < 150 MB', async () => {
    const deep = pngOf(4096, 4096, { bitDepth: 16 });
    global.gc?.();
    const before = memoryOf(process.pid).rss;
    const reset = resetPeak(process.pid);
    let sampled = before;
    const sampler = setInterval(() => (sampled = Math.max(sampled, memoryOf(process.pid).rss)), 5);
    const t0 = performance.now();
    const infos = await Promise.all(Array.from({ length: 10 }, () => inspectPng(deep)));
    clearInterval(sampler);
    const peak = Math.max(sampled, reset ? memoryOf(process.pid).peak : 0);
    console.log(
      `10 concurrent inspections of 4096x4096 16-bit RGBA: ${Math.round(performance.now() - t0)} ms, ` +
        `RSS ${(before / MB).toFixed(0)} → peak ${(peak / MB).toFixed(0)} MB`,
    );
    for (const info of infos) expect(info).toEqual({ width: 4096, height: 4096, bitDepth: 16, colorType: 6 });
    expect(peak - before).toBeLessThan(150 * MB);
  });

  // 9x9 RGBA rows: 1 filter byte + 36 pixel bytes
  const rows = (filters: number[]) =>
    Buffer.concat(filters.map((f) => Buffer.concat([Buffer.from([f]), Buffer.alloc(36, 7)])));

  it('every scanline filter type 0–4 passes; another is refused, wherever its row falls in the inflated pieces', async () => {
    expect(await inspectPng(pngOf(9, 9, { raw: rows([0, 1, 2, 3, 4, 0, 1, 2, 3]) }))).toMatchObject({ width: 9 });
    const bad = pngOf(9, 9, { raw: rows([0, 1, 2, 3, 4, 0, 1, 2, 5]) });
    for (const chunkBytes of [64, 100, 333, 64 * 1024]) {
      expect(await inspectPng(bad, { chunkBytes })).toEqual({
        error: 'bad scanline filter type 5',
      });
    }
  });

  it('an interlaced image has its filter bytes checked in every Adam7 pass', async () => {
    // 9x9 RGBA: passes of 2x2, 1x2, 3x1, 2x3, 5x2, 4x5 and 9x4 pixels
    const passes = [
      [2, 2],
      [1, 2],
      [3, 1],
      [2, 3],
      [5, 2],
      [4, 5],
      [9, 4],
    ] as const;
    const raw = (badRow: number) => {
      let row = 0;
      return Buffer.concat(
        passes.flatMap(([w, h]) =>
          Array.from({ length: h }, () =>
            Buffer.concat([Buffer.from([row++ === badRow ? 9 : 1]), Buffer.alloc(w * 4)]),
          ),
        ),
      );
    };
    const size = rawImageBytes({ width: 9, height: 9, bitDepth: 8, colorType: 6 }, true);
    expect(raw(-1).length).toBe(size);
    expect(await inspectPng(pngOf(9, 9, { interlace: 1, raw: raw(-1) }))).toMatchObject({ width: 9, height: 9 });
    for (const bad of [0, 4, 5, 11, 18])
      // rows of passes 1, 3, 4, 6 and the last row of pass 7
      expect(await inspectPng(pngOf(9, 9, { interlace: 1, raw: raw(bad) }))).toEqual({
        error: 'bad scanline filter type 9',
      });
  });

  it('image data shorter than the header promises, or cut mid-stream, is refused', async () => {
    expect(await inspectPng(pngOf(9, 9, { raw: rows([0, 0, 0, 0, 0, 0, 0, 0]) }))).toEqual({
      error: 'image data size does not match the header',
    });
    // an IDAT of the first 8 bytes of the deflate stream only (with its CRC): the stream ends early
    const whole = pngOf(64, 64);
    const at = whole.indexOf('IDAT');
    const typeAndData = Buffer.concat([Buffer.from('IDAT'), whole.subarray(at + 4, at + 12)]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(typeAndData));
    const idat = Buffer.concat([Buffer.from([0, 0, 0, 8]), typeAndData, crc]);
    const truncated = Buffer.concat([whole.subarray(0, at - 4), idat, whole.subarray(whole.length - 12)]);
    expect(await inspectPng(truncated)).toEqual({ error: 'image data does not decompress' });
  });
});

describe('the line of image inspections', () => {
  it('runs 2 at once and 16 waiting in arrival order; one more is refused with 50005 and a retry delay', async () => {
    const line = new InspectionLine(2, 16);
    const releases: (() => void)[] = [];
    const started: number[] = [];
    const checks = Array.from({ length: 18 }, (_, i) =>
      line.run(async () => {
        started.push(i);
        await new Promise<void>((r) => releases.push(r));
        return i;
      }),
    );
    await new Promise((r) => setImmediate(r));
    expect(line.load()).toEqual({ running: 2, waiting: 16 });
    expect(started).toEqual([0, 1]);
    const refused = await line.run(async () => 'ran').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RelayError);
    expect(refused).toMatchObject({ code: 50005, status: 503, details: { retryAfterMs: 1000 } });
    for (let n = 0; n < 18; n++) {
      while (releases.length === 0) await new Promise((r) => setImmediate(r));
      expect(line.load().running).toBeLessThanOrEqual(2);
      releases.shift()!();
      await new Promise((r) => setImmediate(r));
    }
    expect(await Promise.all(checks)).toEqual(Array.from({ length: 18 }, (_, i) => i));
    expect(started).toEqual(Array.from({ length: 18 }, (_, i) => i));
    expect(line.load()).toEqual({ running: 0, waiting: 0 });
  });

  it('a check that throws frees its place', async () => {
    const line = new InspectionLine(1, 0);
    await expect(line.run(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await line.run(async () => 'next')).toBe('next');
    expect(line.load()).toEqual({ running: 0, waiting: 0 });
  });
});
