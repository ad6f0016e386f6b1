import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decode, grabGray, meanDiff } from '../helpers/media.js';
import { memoryOf, pngOf, resetPeak } from '../helpers/png.js';
import { eventually, FFMPEG, fixture, startStack, type Stack } from '../helpers/stack.js';

const run = promisify(execFile);
/** RELAY_MAX_WATERMARKS_PER_APP of this stack. */
const LIMIT = 12;
let stack: Stack;
let tmp: string;
let png: Buffer;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-'));
  // plain white: far from the colour bars it is drawn on
  await run(FFMPEG, [
    '-hide_banner',
    '-loglevel',
    'error',
    '-f',
    'lavfi',
    '-i',
    'color=c=white:size=200x100',
    '-frames:v',
    '1',
    path.join(tmp, 'wm.png'),
  ]);
  png = fs.readFileSync(path.join(tmp, 'wm.png'));
  stack = await startStack({ env: { RELAY_MAX_WATERMARKS_PER_APP: String(LIMIT) } });
  await stack.publish({ roomId: 1001, userId: 'bob', srcType: 0 }, fixture('bob-camera.mp4'));
});

afterAll(async () => {
  await stack?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const upload = (body: Buffer, query = '', type = 'image/png') =>
  stack.request('POST', `/v1/watermarks${query}`, body, { 'content-type': type });

describe('watermarks', () => {
  it('refuses files that are not whole PNGs, and registers a real one with its size and placement', async () => {
    expect((await upload(Buffer.from('not a png at all'))).body.code).toBe(50002);
    expect((await upload(png.subarray(0, png.length - 20))).body.code).toBe(50002);
    const flipped = Buffer.from(png);
    flipped[40] = flipped[40]! ^ 0xff;
    expect((await upload(flipped)).body.message).toMatch(/CRC|not a valid PNG/);
    expect((await upload(Buffer.alloc(2 * 1024 * 1024, 1))).status).toBe(413);
    const ok = await upload(png, '?corner=top-right&relativeWidth=0.25&margin=0.02');
    expect(ok.body).toMatchObject({
      code: 0,
      width: 200,
      height: 100,
      placement: { corner: 'top-right', relativeWidth: 0.25, margin: 0.02 },
    });
    expect(Number.isInteger(ok.body.waterMarkId)).toBe(true);
    const list = await stack.request('GET', '/v1/watermarks');
    expect(list.body.watermarks.map((w: { waterMarkId: number }) => w.waterMarkId)).toContain(ok.body.waterMarkId);
  });

  it('an unknown waterMarkId is refused with 50002 and leaves nothing behind', async () => {
    const r = await stack.request('POST', '/v1/push/start', {
      roomId: 1001,
      userId: 'bob',
      srcType: 0,
      option: { encode: 2, waterMark: true, waterMarkId: 999999 },
    });
    expect(r.body.code).toBe(50002);
    expect(r.body.message).toMatch(/waterMarkId/);
  });

  it('draws the watermark in its corner of the decoded picture and leaves the rest of the frame as it was; it cannot be deleted while in use', async () => {
    const wm = await upload(png, '?corner=top-right&relativeWidth=0.25&margin=0.02');
    await new Promise((r) => setTimeout(r, 3100)); // start rate limit of the previous attempt
    const r = await stack.request('POST', '/v1/push/start', {
      roomId: 1001,
      userId: 'bob',
      srcType: 0,
      option: { encode: 2, waterMark: true, waterMarkId: wm.body.waterMarkId },
    });
    expect(r.body.code, JSON.stringify(r.body)).toBe(0);
    const flv = r.body.urls[0].playUrl;
    // ORIGINAL with a watermark is re-encoded at the upstream's own size
    const d = await decode(flv, { frames: 5 });
    expect([d.width, d.height]).toEqual([640, 360]);
    const [W, H] = [640, 360];
    const marked = await grabGray(flv, W, H);
    const plain = await grabGray(fixture('bob-camera.mp4'), W, H);
    // 25 % of 640 = 160 px wide, 80 px high, 2 % (12.8 px) from the top-right corner
    const box = { x: Math.round(W - 12.8 - 160) + 2, y: 13 + 2, w: 156, h: 76 };
    expect(meanDiff(marked, plain, W, box)).toBeGreaterThan(60);
    expect(meanDiff(marked, plain, W, { x: box.x - 6, y: box.y - 6, w: box.w + 12, h: box.h + 12 }, true)).toBeLessThan(
      6,
    );

    const del = await stack.request('DELETE', `/v1/watermarks/${wm.body.waterMarkId}`);
    expect(del.status).toBe(409);
    expect(del.body).toMatchObject({ code: 50002, channelId: r.body.channelId });
    await stack.request('POST', '/v1/push/stop', { channelIds: [r.body.channelId] });
    expect((await stack.request('DELETE', `/v1/watermarks/${wm.body.waterMarkId}`)).body.code).toBe(0);
    expect((await stack.request('DELETE', `/v1/watermarks/${wm.body.waterMarkId}`)).status).toBe(404);
  });

  it('ten concurrent uploads of 4096x4096 images hold no inflated image: 16-bit RGBA is refused by the pixel budget before inflating, 8-bit RGBA is inflated as a stream and stored; the API grows by < 150 MB', async () => {
    const pid = stack.procs.find((p) => p.name === 'api')!.child.pid!;
    const MB = 1024 * 1024;
    const deep = pngOf(4096, 4096, { bitDepth: 16, colorType: 6 }); // inflates to 134 MB
    const logo = pngOf(4096, 4096, { bitDepth: 8, colorType: 6 }); // inflates to 67 MB: 64 MiB decoded, the budget
    const measure = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
      const before = memoryOf(pid).rss;
      const reset = resetPeak(pid);
      let sampled = before;
      const sampler = setInterval(() => (sampled = Math.max(sampled, memoryOf(pid).rss)), 5);
      const t0 = Date.now();
      const out = await fn();
      clearInterval(sampler);
      const after = memoryOf(pid);
      const peak = Math.max(sampled, reset ? after.peak : 0);
      console.log(
        `${what}: ${Date.now() - t0} ms, API RSS ${(before / MB).toFixed(0)} → peak ${(peak / MB).toFixed(0)} → ` +
          `${(after.rss / MB).toFixed(0)} MB after (peak ${reset ? 'VmHWM' : 'sampled every 5 ms'})`,
      );
      expect(peak - before, `${what}: RSS growth`).toBeLessThan(150 * MB);
      return out;
    };
    const ten = (png: Buffer) => Promise.all(Array.from({ length: 10 }, () => upload(png)));

    const refused = await measure(`10 x ${deep.length} B 16-bit RGBA 4096x4096`, () => ten(deep));
    for (const r of refused) {
      expect(r.status).toBe(400);
      expect(r.body.code).toBe(50002);
      expect(r.body.message).toMatch(/decodes to 128 MiB.*budget of 64 MiB/);
    }
    const stored = await measure(`10 x ${logo.length} B 8-bit RGBA 4096x4096`, () => ten(logo));
    for (const r of stored)
      expect(r.body, JSON.stringify(r.body)).toMatchObject({ code: 0, width: 4096, height: 4096 });
    for (const r of stored) await stack.request('DELETE', `/v1/watermarks/${r.body.waterMarkId}`);
  });

  it(`an app holds at most RELAY_MAX_WATERMARKS_PER_APP watermarks (${LIMIT} here), also when uploads race: the rest are refused with 50002 (409) and leave no file`, async () => {
    const small = pngOf(16, 16);
    const held = (await stack.request('GET', '/v1/watermarks')).body.watermarks.length as number;
    const burst = await Promise.all(Array.from({ length: 16 }, () => upload(small)));
    const stored = burst.filter((r) => r.body.code === 0);
    const refused = burst.filter((r) => r.body.code !== 0);
    expect(stored).toHaveLength(LIMIT - held);
    for (const r of refused) {
      expect(r.status).toBe(409);
      expect(r.body).toMatchObject({
        code: 50002,
        message: `app ${stack.sdkAppId} already has ${LIMIT} watermarks, the limit per app`,
        maxWatermarks: LIMIT,
      });
      expect(r.body.hint).toMatch(/DELETE \/v1\/watermarks.*RELAY_MAX_WATERMARKS_PER_APP/);
    }
    expect((await stack.request('GET', '/v1/watermarks')).body.watermarks).toHaveLength(LIMIT);
    expect(fs.readdirSync(path.join(stack.dataDir, 'watermarks', stack.sdkAppId))).toHaveLength(LIMIT); // no .tmp
    // a deletion makes room again
    expect((await stack.request('DELETE', `/v1/watermarks/${stored[0]!.body.waterMarkId}`)).body.code).toBe(0);
    const again = await upload(small);
    expect(again.body.code).toBe(0);
    for (const r of [...stored.slice(1), again]) await stack.request('DELETE', `/v1/watermarks/${r.body.waterMarkId}`);
  });

  it("watermark images count in the account's storage: past storageQuotaMB an upload is refused with 20102, and the admin listing counts the stored images", async () => {
    const admin = (method: string, route: string, body?: unknown) =>
      stack.request(method, `/admin/v1${route}`, body, { authorization: stack.adminAuth });
    const dir = path.join(stack.dataDir, 'watermarks', stack.sdkAppId);
    const onDisk = () => fs.readdirSync(dir).reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
    expect((await admin('PATCH', '/accounts/default', { storageQuotaMB: 0 })).body.code).toBe(0);
    try {
      const before = fs.readdirSync(dir).length;
      const r = await upload(png);
      expect(r.status).toBe(409);
      expect(r.body).toMatchObject({ code: 20102, storageQuotaMB: 0, storageUsedBytes: onDisk() });
      expect(r.body.message).toMatch(/recordings and watermark images/);
      expect(r.body.hint).toMatch(/DELETE \/v1\/watermarks/);
      expect(fs.readdirSync(dir)).toHaveLength(before);
    } finally {
      await admin('PATCH', '/accounts/default', { storageQuotaMB: null });
    }
    expect((await upload(png)).body.code).toBe(0);
    const usage = async () =>
      (await admin('GET', '/accounts')).body.accounts.find((a: { accountId: string }) => a.accountId === 'default')
        .storageUsedBytes as number;
    await eventually(async () => (await usage()) === onDisk(), 8000); // the listing measures at most every 5 s
    expect(onDisk()).toBeGreaterThanOrEqual(png.length);
  });
});
