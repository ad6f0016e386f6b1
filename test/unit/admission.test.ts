import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PushService, type PushServiceDeps, type StartRequest } from '../../src/channels/service.js';
import { loadConfig } from '../../src/config/index.js';
import { RelayError } from '../../src/errors/index.js';
import type { Account } from '../../src/tenants/accounts.js';
import type { Upstream } from '../../src/rooms/model.js';
import type { Watermark } from '../../src/watermarks/registry.js';
import type { WorkerHeartbeat } from '../../src/queue/heartbeat.js';
import type { Channel } from '../../src/channels/types.js';
import { fakeLifecycle, testChannel } from '../fakes/channels.js';
import { capsOf } from './ffmpeg-output/captured.js';

const APP = { sdkAppId: '1400000001', accountId: 'acc' };
const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) fs.rmSync(r, { recursive: true, force: true });
});

const upstream = (userId: string, roomId = 1001): Upstream => ({
  sdkAppId: APP.sdkAppId,
  roomId,
  userId,
  srcType: 0,
  source: 'external',
  url: 'rtmp://cam.example/live/' + userId,
  registeredAt: 1,
});
const WORKER: WorkerHeartbeat = { workerId: 'w1', channels: 0, concurrency: 10, load: 0, capacity: 2, at: Date.now() };
const WATERMARK: Watermark = {
  waterMarkId: 3,
  sdkAppId: APP.sdkAppId,
  width: 200,
  height: 100,
  bytes: 10,
  placement: { corner: 'top-right', relativeWidth: 0.2, margin: 0.02 },
  createdAt: 1,
};

/** A push service over fakes; `world` is what the test changes between starts, `worker` what the fake worker does with a job. */
function setup(extra: Partial<PushServiceDeps> = {}) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'admission-'));
  roots.push(root);
  const config = {
    ...loadConfig({ RELAY_DATA_DIR: root, RELAY_UPSTREAM_ALLOW: 'cam.example' }),
    maxChannelsPerRoom: 4,
    startRateLimitMs: 3000,
  };
  const h = fakeLifecycle({ layout: config, maxPerRoom: config.maxChannelsPerRoom });
  const world = {
    account: { accountId: 'acc', name: 'acc', channelLimit: 10, state: 'active', createdAt: 1 } as Account | null,
    upstreams: [upstream('alice')],
    rateLimited: false,
    watermarks: new Map<number, Watermark>([[3, WATERMARK]]),
    workers: [WORKER],
    worker: 'live' as 'live' | 'fail' | 'hold' | 'none',
  };
  h.queue.onAdd = async (id) => {
    const ch = (await h.records.get(id))!;
    if (world.worker === 'live')
      await h.lifecycle.markLive(ch, { workerId: 'w1', resumed: ch.startedAt !== undefined });
    if (world.worker === 'fail')
      await h.lifecycle.fail(ch, { code: 40000004, message: 'the upstream has no video track' });
    if (world.worker === 'hold') await h.lifecycle.patch(id, { worker: 'w1' });
  };
  const push = new PushService({
    config,
    store: h.records,
    lifecycle: h.lifecycle,
    bus: h.bus,
    queue: h.queue,
    logger: h.logger,
    rooms: { list: async (_app, roomId) => world.upstreams.filter((u) => u.roomId === roomId) },
    waiter: {
      until: async (id, states) => {
        const ch = await h.records.get(id);
        return { channel: ch, reached: !ch || states.includes(ch.state) };
      },
    },
    rateLimit: { take: async () => (world.rateLimited ? 1200 : null) },
    workers: async () => world.workers,
    accounts: { get: async () => world.account },
    watermarks: { get: async (_app, id) => world.watermarks.get(id) ?? null, file: (_app, id) => `/wm/${id}.png` },
    records: {
      root: path.join(root, 'records'),
      create: async (sdkAppId, channelId, fileType) => ({
        recordTaskId: 1,
        sdkAppId,
        channelId,
        fileType,
        createdAt: 1,
      }),
      remove: async () => undefined,
    },
    ...extra,
  });
  return { push, world, h };
}

const request = (over: Partial<StartRequest['option']> = {}): StartRequest => ({
  roomId: 1001,
  userId: 'alice',
  srcType: 0,
  option: { ...testChannel().option, ...over },
});

async function refusal(p: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await p;
  } catch (e) {
    if (e instanceof RelayError) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('the start was not refused');
}

/** A channel of another start, admitted into the fake store. */
async function other(h: ReturnType<typeof setup>['h'], over: Partial<Channel>): Promise<Channel> {
  const ch = testChannel({ accountId: 'others', ...over });
  expect(await h.records.admit(ch, 100, 100)).toEqual({ ok: true });
  return ch;
}

describe('PushService.start refuses in a fixed order, and a refused start leaves nothing', () => {
  it('each fix reveals the next refusal, until the start goes live', async () => {
    const { push, world, h } = setup();
    world.account = null;
    world.upstreams = [];
    world.rateLimited = true;
    world.watermarks.clear();
    world.workers = [];
    const mine = await other(h, { userId: 'alice', accountId: 'acc', roomId: 1001 });
    h.records.records.get(mine.channelId)!.state = 'live';
    const roommates = await Promise.all(['r1', 'r2', 'r3', 'r4'].map((userId) => other(h, { userId, roomId: 1001 })));
    await other(h, { userId: 'far', accountId: 'acc', roomId: 2002 });

    const steps: [number, RegExp, () => Promise<void> | void][] = [
      [
        1002,
        /account acc/,
        () => {
          world.account = { accountId: 'acc', name: 'acc', channelLimit: 1, state: 'not-enabled', createdAt: 1 };
        },
      ],
      [
        20318,
        /not enabled/,
        () => {
          world.account!.state = 'arrears';
        },
      ],
      [
        20406,
        /arrears/,
        () => {
          world.account!.state = 'active';
        },
      ],
      [
        40000410,
        /room 1001/,
        () => {
          world.upstreams = [upstream('bob')];
        },
      ],
      [
        40000411,
        /user alice/,
        () => {
          world.upstreams.push(upstream('alice'));
        },
      ],
      [
        40000500,
        /rate/i,
        () => {
          world.rateLimited = false;
        },
      ],
      [
        50002,
        /waterMarkId 3/,
        () => {
          world.watermarks.set(3, WATERMARK);
        },
      ],
      [
        50005,
        /no worker/,
        () => {
          world.workers = [WORKER];
        },
      ],
      [
        40000415,
        new RegExp(mine.channelId),
        async () => {
          await h.lifecycle.finishStop(mine, 'stopped by request');
        },
      ],
      [
        20101,
        /room 1001 already has 4/,
        async () => {
          await h.lifecycle.finishStop(roommates[0]!, 'stopped by request');
        },
      ],
      [
        20101,
        /account acc has reached its limit of 1/,
        () => {
          world.account!.channelLimit = 2;
        },
      ],
    ];
    for (const [code, message, fix] of steps) {
      const before = { store: h.records.dump(), events: h.bus.events.length };
      expect(await refusal(push.start(APP, request({ waterMark: true, waterMarkId: 3 }))), `refusal ${code}`).toEqual({
        code,
        message: expect.stringMatching(message),
      });
      expect({ store: h.records.dump(), events: h.bus.events.length }).toEqual(before);
      expect(h.queue.jobs.size).toBe(0);
      await fix();
    }
    const started = await push.start(APP, request({ waterMark: true, waterMarkId: 3 }));
    expect(await h.records.get(started.channelId)).toMatchObject({
      state: 'live',
      watermark: { id: 3, file: '/wm/3.png' },
      option: { waterMarkPosition: WATERMARK.placement },
    });
  });

  it('a start for an upstream whose channel is retained resumes that channel (same id and URLs)', async () => {
    const { push, h } = setup();
    const first = await push.start(APP, request());
    await h.lifecycle.interrupt((await h.records.get(first.channelId))!, 'upstream lost');
    const again = await push.start(APP, request());
    expect(again).toEqual(first);
    expect(h.records.records.size).toBe(1);
    const ch = (await h.records.get(first.channelId))!;
    expect(ch.history.map((t) => t.state)).toEqual(['starting', 'live', 'interrupted', 'starting', 'live']);
    expect(ch.history.at(-2)!.reason).toBe('resumed by a start within the retention time');
  });

  it('a start the worker fails answers the failure and leaves nothing', async () => {
    const { push, world, h } = setup();
    world.worker = 'fail';
    const empty = h.records.dump();
    expect(await refusal(push.start(APP, request()))).toEqual({
      code: 40000004,
      message: 'the upstream has no video track',
    });
    expect(h.records.dump()).toEqual(empty);
    expect(h.queue.jobs.size).toBe(0);
  });

  it("an upstream the relay's ffmpeg cannot read (srt:// on 4.1), or a file gone since, is refused at start and leaves nothing", async () => {
    const caps41 = { path: '/nm/ffmpeg', version: { text: 'N-47683', major: 4, minor: 1 }, caps: capsOf('4.1') };
    const { push, world, h } = setup({ ffmpeg: async () => caps41 });
    world.upstreams = [{ ...upstream('alice'), url: 'srt://cam.example:9000?mode=caller' }];
    const empty = h.records.dump();
    expect(await refusal(push.start(APP, request()))).toEqual({
      code: 50008,
      message: "srt:// upstreams need the srt protocol, which the relay's ffmpeg 4.1 lacks",
    });
    world.upstreams = [{ ...upstream('bob'), url: 'gone-since-registration.mp4' }];
    const gone = await refusal(push.start(APP, { ...request(), userId: 'bob' }));
    expect(gone).toEqual({ code: 50002, message: 'upstream file gone-since-registration.mp4 does not exist' });
    expect(h.records.dump()).toEqual(empty);
    expect(h.queue.jobs.size).toBe(0);
  });

  it('a start no worker takes answers 50005 and leaves nothing', async () => {
    const { push, world, h } = setup();
    world.worker = 'none';
    const empty = h.records.dump();
    expect((await refusal(push.start(APP, request()))).code).toBe(50005);
    expect(h.records.dump()).toEqual(empty);
  });

  it('a start a worker holds without media answers 6012, tells the worker to stop, and leaves nothing', async () => {
    const { push, world, h } = setup();
    world.worker = 'hold';
    h.queue.removable = false;
    const empty = h.records.dump();
    expect((await refusal(push.start(APP, request()))).code).toBe(6012);
    expect(h.bus.control).toEqual([{ type: 'stop', channelId: expect.stringMatching(/^ch_/) }]);
    expect(h.records.dump()).toEqual(empty);
  });
});
