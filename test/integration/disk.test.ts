import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { recordingHasMedia } from '../../src/records/media-check.js';
import { decode, readFlv } from '../helpers/media.js';
import {
  eventually,
  FFMPEG,
  fixture,
  sleep,
  startStack,
  webhookReceiver,
  type ReceivedHook,
  type Stack,
} from '../helpers/stack.js';
import { Redis } from 'ioredis';
import { Keys } from '../../src/redis/index.js';
import { WatermarkRegistry } from '../../src/watermarks/registry.js';
import { RelayError } from '../../src/errors/index.js';

/*
 * A full disk with real components: small tmpfs mounts (root only) stand in for the records, HLS and watermarks
 * folders, so ffmpeg and the API meet a real ENOSPC.
 */

/** Whether this process may mount a tmpfs (root on Linux); else the reason, printed when the tests are skipped. */
function mountProbe(): string | null {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-mount-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { stdio: 'pipe' });
    execFileSync('umount', [dir], { stdio: 'pipe' });
    return null;
  } catch (e) {
    return `mounting a tmpfs is not permitted here (${String((e as { stderr?: Buffer }).stderr ?? e).trim()})`;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
const cannotMount = mountProbe();
if (cannotMount) console.log(`SKIPPED disk tests: ${cannotMount}`);

const mounted = new Set<string>();
function mountTmpfs(dir: string, size: string): void {
  fs.mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  mounted.add(dir);
}
function unmount(dir: string): void {
  if (!mounted.delete(dir)) return;
  try {
    execFileSync('umount', [dir], { stdio: 'pipe' });
  } catch {
    execFileSync('umount', ['-l', dir], { stdio: 'pipe' }); // still open somewhere: detach it now
  }
}
/** Fills a tmpfs until `leaveBytes` stay free. */
function fill(dir: string, leaveBytes: number): void {
  const st = fs.statfsSync(dir);
  fs.writeFileSync(path.join(dir, 'filler'), Buffer.alloc(Math.max(0, st.bavail * st.bsize - leaveBytes)));
}
const KIB = 1024;

let stack: Stack;
let png: Buffer;
let receiver: Awaited<ReturnType<typeof webhookReceiver>>;
const hooks: ReceivedHook[] = [];

beforeAll(async () => {
  if (cannotMount) return;
  // 600x400 of noise: a valid PNG of about 700 KiB that does not compress
  const file = path.join(os.tmpdir(), `relay-noise-${process.pid}.png`);
  await promisify(execFile)(FFMPEG, [
    '-hide_banner',
    '-loglevel',
    'error',
    '-y',
    '-f',
    'lavfi',
    '-i',
    'color=c=gray:size=600x400',
    '-vf',
    'noise=alls=100:allf=t',
    '-frames:v',
    '1',
    file,
  ]);
  png = fs.readFileSync(file);
  fs.rmSync(file);
  receiver = await webhookReceiver(hooks);
  stack = await startStack({
    env: {
      RELAY_MIN_FREE_MB: '1',
      RELAY_RECORD_MAX_SECONDS: '3',
      RELAY_START_RATE_LIMIT_MS: '0',
      RELAY_WEBHOOK_BACKOFF_MS: '200',
    },
  });
  expect((await stack.request('PUT', '/v1/webhook', { url: receiver.url })).body.code).toBe(0);
  await stack.publish({ roomId: 1001, userId: 'alice', srcType: 0 }, fixture('alice-camera.mp4'));
  await stack.publish({ roomId: 1001, userId: 'bob', srcType: 0 }, fixture('bob-camera.mp4'));
});

afterAll(async () => {
  if (cannotMount) return;
  await stack?.close().catch(() => undefined); // its data dir cannot go while mounts sit in it
  for (const dir of [...mounted]) unmount(dir);
  if (stack) fs.rmSync(stack.dataDir, { recursive: true, force: true });
  receiver?.close();
});

const records = () => path.join(stack.dataDir, 'records');
const start = (userId: string, option: Record<string, unknown>) =>
  stack.request('POST', '/v1/push/start', { roomId: 1001, userId, srcType: 0, option });
const channel = async (id: string) => (await stack.request('GET', `/v1/push/${id}`)).body.channel;
const stop = (id: string) => stack.request('POST', '/v1/push/stop', { channelIds: [id] });
const channelKeys = async () => (await stack.redis.keys(`${stack.prefix}:channel:*`)).length;

describe.skipIf(cannotMount)('a full disk', () => {
  it('a start with recording, and a watermark upload, are refused with 50007 below RELAY_MIN_FREE_MB, leaving nothing', async () => {
    mountTmpfs(records(), '4m');
    mountTmpfs(path.join(stack.dataDir, 'watermarks'), '1m');
    try {
      fill(records(), 512 * KIB);
      const before = await channelKeys();
      const r = await start('bob', { encode: 2, record: true });
      expect(r.status).toBe(507);
      expect(r.body.code).toBe(50007);
      expect(r.body.message).toMatch(/the disk of the recordings is below the relay's free-space threshold/);
      expect(r.body.hint).toMatch(/RELAY_MIN_FREE_MB/);
      // the tenant is not told the operator's figures; the operator's log has them
      expect(JSON.stringify(r.body)).not.toMatch(/MiB free|\d MiB|freeBytes/);
      const api = stack.procs.find((p) => p.name === 'api')!;
      // the API's log line reaches this process through its stdout pipe, possibly after the answer
      const logged = () =>
        api.output.some((l) => /"code":50007/.test(l) && /"freeBytes":\d+/.test(l) && /"minFreeMB":1/.test(l));
      expect(await eventually(async () => logged() || null, 5000).catch(() => false)).toBe(true);
      expect(await channelKeys()).toBe(before);
      expect(fs.readdirSync(records())).toEqual(['filler']);
      // without recording the same start goes live: the threshold guards recordings only
      const live = await start('bob', { encode: 2 });
      expect(live.body.code).toBe(0);
      await stop(live.body.channelId);

      fill(path.join(stack.dataDir, 'watermarks'), 100 * KIB);
      const up = await stack.request('POST', '/v1/watermarks', png, { 'content-type': 'image/png' });
      expect(up.status).toBe(507);
      expect(up.body.code).toBe(50007);
      expect(up.body.message).toMatch(/watermark images is below the relay's free-space threshold/);
      expect(up.body.hint).toMatch(/retry the upload later/);
      expect(up.body.hint).not.toMatch(/record/);
      expect(fs.readdirSync(path.join(stack.dataDir, 'watermarks'))).toEqual(['filler']);
    } finally {
      unmount(records());
      unmount(path.join(stack.dataDir, 'watermarks'));
    }
  });

  it('a watermark write that finds the disk full answers 50007 (HTTP 507) and leaves no .tmp file', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-wm-full-'));
    mountTmpfs(dir, '1m');
    try {
      fill(dir, 100 * KIB);
      // no free-space admission, so the write itself meets ENOSPC
      const registry = new WatermarkRegistry(stack.redis, new Keys(stack.prefix), dir);
      const e = await registry.add({ sdkAppId: stack.sdkAppId, accountId: 'default' }, png).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(RelayError);
      expect((e as RelayError).code).toBe(50007);
      expect((e as RelayError).status).toBe(507);
      expect((e as RelayError).message).toMatch(/no space left/);
      expect((e as RelayError).hint).toMatch(/retry the upload later/);
      expect(fs.readdirSync(path.join(dir, stack.sdkAppId))).toEqual([]);
      expect(await registry.list(stack.sdkAppId)).toEqual([]);
    } finally {
      unmount(dir);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("an account's storage quota: 20102 once reached, usage in the admin listing; a recording that reaches it stops and the channel plays on", async () => {
    const admin = (method: string, route: string, body?: unknown) =>
      stack.request(method, route, body, { authorization: stack.adminAuth });
    expect((await admin('PATCH', '/admin/v1/accounts/default', { storageQuotaMB: 0 })).body.account).toMatchObject({
      storageQuotaMB: 0,
    });
    const refused = await start('bob', { encode: 2, record: true });
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ code: 20102, storageQuotaMB: 0 });
    expect(refused.body.hint).toMatch(/storageQuotaMB/);

    await admin('PATCH', '/admin/v1/accounts/default', { storageQuotaMB: 1 });
    const r = await start('alice', { encode: 2, record: true, recordFileType: 4 });
    const id = r.body.channelId as string;
    try {
      await quotaReached(r, id);
    } finally {
      await stop(id);
      await admin('PATCH', '/admin/v1/accounts/default', { storageQuotaMB: null });
    }
    const files = (await stack.request('GET', `/v1/records/${r.body.recordTaskId}`)).body.files as { name: string }[];
    expect(files.length).toBeGreaterThan(0);
    const dir = path.join(records(), stack.sdkAppId, String(r.body.recordTaskId));
    let seconds = 0;
    for (const f of files) seconds += (await decode(path.join(dir, f.name))).seconds;
    expect(seconds).toBeGreaterThan(3); // what was recorded until the quota plays
  });

  /** A channel recording against a 1 MiB quota: its recording stops, it stays live, and its files grow no more. */
  async function quotaReached(r: { body: Record<string, any> }, id: string): Promise<void> {
    const admin = (method: string, route: string) =>
      stack.request(method, route, undefined, { authorization: stack.adminAuth });
    expect(r.body.code, JSON.stringify(r.body)).toBe(0);
    const t0 = Date.now();
    const ch = await eventually(async () => {
      const c = await channel(id);
      return c.recordStopped ? c : null;
    }, 40000);
    console.log(`quota of 1 MiB: recording stopped ${Date.now() - t0} ms after the start`);
    expect(ch.recordStopped.code).toBe(20102);
    expect(ch.recordStopped.message).toMatch(/storage quota/);
    expect(ch.state).toBe('live');
    const listed = (await admin('GET', '/admin/v1/accounts')).body.accounts.find(
      (a: { accountId: string }) => a.accountId === 'default',
    );
    expect(listed.storageQuotaMB).toBe(1);
    expect(listed.storageUsedBytes).toBeGreaterThanOrEqual(1024 * 1024);
    // it plays on, and records no more
    expect((await readFlv(r.body.urls[0].playUrl, { timeoutMs: 8000 })).summary.keyframe).toBe(true);
    const dir = path.join(records(), stack.sdkAppId, String(r.body.recordTaskId));
    const bytes = () => fs.readdirSync(dir).reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
    const before = bytes();
    await sleep(3000);
    expect(bytes()).toBe(before);
    expect((await channel(id)).state).toBe('live');
  }

  it('a recording that fills its disk stops with 50007 while the channel stays live (no retries); no file without media is kept, listed or announced; its HLS recording ends', async () => {
    mountTmpfs(records(), '4m');
    let started: string | undefined;
    try {
      const r = await start('alice', { encode: 3, record: true, recordFileType: 7 });
      expect(r.body.code, JSON.stringify(r.body)).toBe(0);
      const id = (started = r.body.channelId as string);
      const task = r.body.recordTaskId as number;
      const t0 = Date.now();
      const ch = await eventually(
        async () => {
          const c = await channel(id);
          return c.recordStopped || c.state !== 'live' ? c : null;
        },
        40000,
        250,
      );
      console.log(`4 MiB records disk: recording stopped ${Date.now() - t0} ms after the start`);
      expect(ch.state).toBe('live');
      expect(ch.recordStopped.code).toBe(50007);
      expect(ch.recordStopped.message).toMatch(/disk full: no space left on the disk of the recordings/);
      expect(ch.restarts).toBe(0);
      expect((await readFlv(r.body.urls[1].playUrl, { timeoutMs: 8000 })).summary.keyframe).toBe(true);
      expect((await channel(id)).state).toBe('live');
      expect((await stop(id)).body.results[0].code).toBe(0);

      const dir = path.join(records(), stack.sdkAppId, String(task));
      const files = fs.readdirSync(dir).filter((n) => /\.(mp4|flv)$/.test(n));
      expect(fs.readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
      for (const name of files) {
        expect(fs.statSync(path.join(dir, name)).size, name).toBeGreaterThan(0);
        expect(await recordingHasMedia(path.join(dir, name)), name).toBe(true);
      }
      const playlist = fs.readFileSync(path.join(dir, 'hls', 'index.m3u8'), 'utf8');
      expect(playlist).toMatch(/#EXT-X-ENDLIST\n$/);
      const segments = playlist.split('\n').filter((l) => l.endsWith('.ts'));
      expect(segments.length).toBeGreaterThan(0);
      for (const seg of segments) {
        const size = fs.statSync(path.join(dir, 'hls', seg)).size;
        expect(size > 0 && size % 188 === 0, `${seg}: ${size} bytes`).toBe(true);
      }
      expect(
        fs
          .readdirSync(path.join(dir, 'hls'))
          .filter((n) => n.endsWith('.ts'))
          .sort(),
      ).toEqual(segments.sort());

      const listed = (await stack.request('GET', `/v1/records/${task}`)).body.files as {
        name: string;
        bytes: number;
      }[];
      expect(listed.map((f) => f.name).sort()).toEqual([...files, 'hls/index.m3u8'].sort());
      // each plays; the last may be short (the recording stops when the disk fills, maybe just after a cut)
      for (const f of listed.filter((x) => x.name.endsWith('.mp4') || x.name.endsWith('.flv'))) {
        const d = await decode(path.join(dir, f.name));
        expect(d.frames > 0 && d.seconds > 0, `${f.name}: ${JSON.stringify(d)}`).toBe(true);
      }
      console.log(`4 MiB records disk: ${ch.recordStopped.message}`);
      // every file announced is one of those, and each of those is announced
      const announced = () =>
        hooks.filter((h) => h.type === 'record.file_ready' && h.channelId === id).map((h) => h.data.name as string);
      await eventually(async () => new Set(announced()).size === files.length, 15000);
      expect(new Set(announced())).toEqual(new Set(files));
    } finally {
      if (started) await stop(started); // already stopped unless the test failed: then the next tests find alice free
      unmount(records());
    }
  });

  it('a channel whose live HLS disk fills fails at once with 50007, without restarts', async () => {
    const hls = path.join(stack.dataDir, 'hls');
    mountTmpfs(hls, '4m');
    try {
      fill(hls, 1536 * KIB);
      const r = await start('alice', { encode: 1 });
      expect(r.body.code, JSON.stringify(r.body)).toBe(0);
      const id = r.body.channelId as string;
      onTestFinished(() => stop(id).then(() => undefined));
      const ch = await eventually(async () => {
        const c = await channel(id);
        return c.state === 'failed' ? c : null;
      }, 40000);
      expect(ch.error.code).toBe(50007);
      expect(ch.error.message).toMatch(/disk full: no space left on the disk of the live HLS/);
      expect(ch.restarts).toBe(0);
      expect(ch.history.map((h: { state: string }) => h.state)).toEqual(['starting', 'live', 'failed']);
      await eventually(async () =>
        hooks.some((h) => h.type === 'push.failed' && h.channelId === id && h.data.code === 50007),
      );
    } finally {
      unmount(hls);
    }
  });
});
