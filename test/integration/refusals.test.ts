import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, ffmpegsMentioning, fixture, sleep, startStack, type Stack } from '../helpers/stack.js';

let stack: Stack;

beforeAll(async () => {
  stack = await startStack();
  await stack.publish({ roomId: 1001, userId: 'alice', srcType: 0 }, fixture('alice-camera.mp4'));
});

afterAll(async () => {
  await stack?.close();
});

const start = (roomId: number, userId: string, srcType: number, option: Record<string, unknown> = { encode: 3 }) =>
  stack.request('POST', '/v1/push/start', { roomId, userId, srcType, option });

/** Everything a start could leave behind: channel records, active slots, queued jobs, HLS folders, ffmpegs. */
async function traces(): Promise<{ channels: number; active: number; jobs: number; hlsDirs: number; ffmpegs: number }> {
  const hls = path.join(stack.dataDir, 'hls');
  return {
    channels: (await stack.redis.keys(`${stack.prefix}:channel:*`)).length,
    active: await stack.redis.scard(`${stack.prefix}:channels:active`),
    jobs: (await stack.redis.keys(`${stack.prefix}:bull:push:ch_*`)).length,
    hlsDirs: fs.existsSync(hls) ? fs.readdirSync(hls).length : 0,
    ffmpegs: ffmpegsMentioning(stack.dataDir).length,
  };
}

/** The job of a refused start ends a moment after the answer (the worker finishes its processor): allow for that. */
async function expectNoTraces(before: Awaited<ReturnType<typeof traces>>): Promise<void> {
  await eventually(async () => JSON.stringify(await traces()) === JSON.stringify(before), 3000).catch(() => undefined);
  expect(await traces()).toEqual(before);
}

async function register(roomId: number, userId: string, srcType: number, url: string): Promise<void> {
  const r = await stack.request('PUT', `/v1/rooms/${roomId}/upstreams`, { userId, srcType, url });
  expect(r.body.code, JSON.stringify(r.body)).toBe(0);
}

describe('refused starts and stops', () => {
  it('a room nobody publishes in is 40000410; a member without that upstream is 40000411', async () => {
    const none = await start(987654, 'nobody', 0);
    expect(none.status).toBe(404);
    expect(none.body).toMatchObject({ code: 40000410 });
    expect(none.body.hint).toBeTruthy();
    const stranger = await start(1001, 'mallory', 0);
    expect(stranger.body.code).toBe(40000411);
    const noScreen = await start(1001, 'alice', 1);
    expect(noScreen.body.code).toBe(40000411);
    expect(noScreen.body.message).toMatch(/no screen upstream/);
  });

  it('the same user again within 3 s is 40000500; after 3 s a running upstream is 40000415 with its channelId; a second stop is 40000412', async () => {
    const first = await start(1001, 'alice', 0);
    expect(first.body.code).toBe(0);
    const again = await start(1001, 'alice', 0);
    expect(again.status).toBe(429);
    expect(again.body.code).toBe(40000500);
    expect(again.body.retryAfterMs).toBeGreaterThan(0);
    await sleep(again.body.retryAfterMs + 100);
    const dup = await start(1001, 'alice', 0);
    expect(dup.status).toBe(409);
    expect(dup.body).toMatchObject({ code: 40000415, channelId: first.body.channelId });
    const stop1 = await stack.request('POST', '/v1/push/stop', { channelIds: [first.body.channelId] });
    expect(stop1.body.results[0].code).toBe(0);
    const stop2 = await stack.request('POST', '/v1/push/stop', {
      channelIds: [first.body.channelId, 'ch_00000000000000000000'],
    });
    expect(stop2.body.results).toEqual([
      expect.objectContaining({ channelId: first.body.channelId, code: 40000412 }),
      expect.objectContaining({ channelId: 'ch_00000000000000000000', code: 50002 }),
    ]);
    const unknown = await stack.request('GET', '/v1/push/ch_00000000000000000000');
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe(50002);
  });

  it('an upstream without video is refused with 40000004 and leaves nothing behind', async () => {
    await register(3003, 'radio', 0, fixture('audio-only.mp4'));
    const before = await traces();
    const r = await start(3003, 'radio', 0);
    expect(r.status).toBe(400);
    expect(r.body.code).toBe(40000004);
    expect(r.body.message).toMatch(/no video/);
    await expectNoTraces(before);
  });

  it('upstreams that are not media or are truncated are refused with 50009 quoting ffmpeg (no retry hint); one that does not answer is 6012 (retry after 30 s); nothing is left behind', async () => {
    const silent = net.createServer(() => undefined); // accepts TCP, never speaks RTMP
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    try {
      await register(3004, 'junk', 0, fixture('not-media.mp4'));
      await register(3004, 'cut', 0, 'truncated.mp4');
      await register(3004, 'mute', 0, `rtmp://127.0.0.1:${(silent.address() as net.AddressInfo).port}/live/x`);
      const before = await traces();
      const said: Record<string, RegExp> = { junk: /moov atom not found|Invalid data/, cut: /moov atom not found/ };
      for (const user of ['junk', 'cut']) {
        const r = await start(3004, user, 0);
        expect(r.status, JSON.stringify(r.body)).toBe(422);
        expect(r.body.code).toBe(50009);
        expect(r.body.message).toMatch(said[user]!);
        expect(r.body.message).not.toContain(path.dirname(fixture('x'))); // a file is named as it was registered
        expect(r.body.hint).not.toMatch(/retry/);
      }
      const mute = await start(3004, 'mute', 0);
      expect(mute.body.code).toBe(6012);
      expect(mute.status).toBe(504);
      expect(mute.body.hint).toMatch(/30 s/);
      await expectNoTraces(before);
      const worker = stack.procs.find((p) => p.name.startsWith('worker'))!;
      const logged = worker.output.filter((l) => l.includes('ffmpeg did not start')).join('\n');
      expect(logged).toMatch(/"reason":"\[mov,mp4[^"]*\] moov atom not found"/);
    } finally {
      silent.close();
    }
  });

  it('a file upstream that does not exist is refused at registration with 50002 naming it', async () => {
    const r = await stack.request('PUT', '/v1/rooms/3005/upstreams', {
      userId: 'ghost',
      srcType: 0,
      url: 'no-such.mp4',
    });
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ code: 50002, message: 'upstream file no-such.mp4 does not exist' });
    expect((await stack.request('GET', '/v1/rooms/3005')).body.code).toBe(40000410);
  });

  it('a room runs at most 4 channels: the 5th is refused with 20101 and the 4 keep running', async () => {
    const users = ['u1', 'u2', 'u3', 'u4', 'u5'];
    for (const u of users) await register(5005, u, 0, fixture('video-only.mp4'));
    const ids: string[] = [];
    for (const u of users.slice(0, 4)) {
      const r = await start(5005, u, 0, { encode: 5 });
      expect(r.body.code, JSON.stringify(r.body)).toBe(0);
      ids.push(r.body.channelId);
    }
    const before = await traces();
    const fifth = await start(5005, 'u5', 0, { encode: 5 });
    expect(fifth.status).toBe(409);
    expect(fifth.body.code).toBe(20101);
    expect(fifth.body.message).toMatch(/4 bypass channels/);
    await expectNoTraces(before);
    for (const id of ids) expect((await stack.request('GET', `/v1/push/${id}`)).body.channel.state).toBe('live');
    const stop = await stack.request('POST', '/v1/push/stop', { channelIds: ids });
    expect(stop.body.results.map((r: { code: number }) => r.code)).toEqual([0, 0, 0, 0]);
    // a freed slot admits a new channel (u5 itself is rate limited for 3 s: its refused start counted)
    await register(5005, 'u6', 0, fixture('video-only.mp4'));
    const now = await start(5005, 'u6', 0, { encode: 5 });
    expect(now.body.code).toBe(0);
    await stack.request('POST', '/v1/push/stop', { channelIds: [now.body.channelId] });
    await eventually(async () => (await traces()).ffmpegs === 0);
  });

  it('registering hostile upstream URLs is refused with 50002', async () => {
    for (const url of [
      'concat:/etc/passwd|/etc/hosts',
      'file:///etc/passwd',
      '/etc/passwd',
      '../../etc/passwd',
      'subfile:,,start,0,end,0,,:/etc/passwd',
      'gopher://x/y',
      `rtmp://host/a\nb`,
    ]) {
      const r = await stack.request('PUT', '/v1/rooms/3005/upstreams', { userId: 'evil', srcType: 0, url });
      expect(r.body.code, url).toBe(50002);
    }
    const room = await stack.request('GET', '/v1/rooms/3005');
    expect(room.body.code).toBe(40000410);
  });

  it('a flood of starts from one user is rate limited (40000500) without hurting another user', async () => {
    await register(6006, 'flood', 0, fixture('video-only.mp4'));
    await register(6006, 'calm', 0, fixture('video-only.mp4'));
    const flood = await Promise.all(Array.from({ length: 20 }, () => start(6006, 'flood', 0, { encode: 5 })));
    const codes = flood.map((r) => r.body.code);
    expect(codes.filter((c) => c === 40000500)).toHaveLength(19);
    expect(codes.filter((c) => c === 0)).toHaveLength(1);
    const calm = await start(6006, 'calm', 0, { encode: 5 });
    expect(calm.body.code).toBe(0);
    const ids = [...flood.filter((r) => r.body.code === 0), calm].map((r) => r.body.channelId);
    await stack.request('POST', '/v1/push/stop', { channelIds: ids });
  });
});
