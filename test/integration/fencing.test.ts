/**
 * Single runner per channel, always (issue 10, item 4): a worker process stalled (SIGSTOP) past its job lock while its
 * ffmpeg goes on publishing. Another worker (or the same one, once it runs again) takes the job and begins a newer run
 * of the channel (its run generation in the record goes up); the media server hands the stream key to the newer run's
 * ffmpeg and drops the stale one's, and the stale runner, when it runs again, ends without touching the channel.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlvWatcher } from '../helpers/media.js';
import {
  eventually,
  ffmpegsMentioning,
  fixture,
  REDIS_URL,
  sleep,
  startStack,
  type Proc,
  type Stack,
} from '../helpers/stack.js';
import { ChannelStore } from '../../src/channels/store.js';
import { loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/log.js';
import { startWorker } from '../../src/wiring/index.js';
import { Keys } from '../../src/redis/index.js';

/** How long the worker is stopped: well past the 3 s job lock and the 0.5 s stalled-job check. */
const STALL_MS = 7000;

const alive = (p: Proc) => p.child.exitCode === null && p.child.signalCode === null;
const parentOf = (pid: number) => Number(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
const record = async (stack: Stack, id: string) => (await stack.request('GET', `/v1/push/${id}`)).body.channel;
const runGen = async (stack: Stack, id: string) =>
  JSON.parse((await stack.redis.get(`${stack.prefix}:channel:${id}`))!).runGen as number;

/** Starts a channel of alice (HLS + FLV) and returns its id, FLV URL and the worker process that runs it. */
async function startChannel(stack: Stack): Promise<{ id: string; flv: string; owner: Proc }> {
  const r = await stack.request('POST', '/v1/push/start', {
    roomId: 1001,
    userId: 'alice',
    srcType: 0,
    option: { encode: 3 },
  });
  expect(r.body.code, JSON.stringify(r.body)).toBe(0);
  const id = r.body.channelId as string;
  const worker = (await record(stack, id)).worker as string;
  const owner = stack.procs.find((p) => p.name.startsWith('worker') && worker.endsWith(`:${p.child.pid}`))!;
  expect(owner, `worker process of ${worker}`).toBeTruthy();
  return { id, flv: r.body.urls.find((u: { type: number }) => u.type === 2).playUrl, owner };
}

/**
 * After the stall, once the channel is in run `gen`: for 5 s it has one ffmpeg (the same process throughout, not the
 * one of before the stall, a child of the worker the record names), stays live in that run without a restart, and
 * its FLV viewer keeps receiving video.
 */
async function assertOneSteadyRunner(
  stack: Stack,
  id: string,
  viewer: FlvWatcher,
  gen: number,
  staleFfmpeg: number,
): Promise<void> {
  const settled = await eventually(async () => {
    const ch = await record(stack, id);
    const ff = ffmpegsMentioning(id);
    const owner = Number(String(ch.worker).split(':').pop());
    const settled = ch.state === 'live' && (await runGen(stack, id)) === gen && ff.length === 1;
    return settled && ff[0] !== staleFfmpeg && parentOf(ff[0]!) === owner ? { ch, ff: ff[0]! } : null;
  }, 20000);
  const from = Date.now();
  while (Date.now() - from < 5000) {
    expect(ffmpegsMentioning(id)).toEqual([settled.ff]);
    await sleep(250);
  }
  const ch = await record(stack, id);
  expect(ch.state).toBe('live');
  expect(ch.worker).toBe(settled.ch.worker);
  expect(ch.restarts ?? 0).toBe(settled.ch.restarts ?? 0);
  expect(await runGen(stack, id)).toBe(gen);
  expect(viewer.maxGapSince(from + 1000)).toBeLessThan(1500);
}

describe('a worker stalled past its job lock (SIGSTOP), with another worker', () => {
  let stack: Stack;
  const stopped: Proc[] = [];

  beforeAll(async () => {
    stack = await startStack({ workers: 2 });
    await stack.publish({ roomId: 1001, userId: 'alice', srcType: 0 }, fixture('alice-camera.mp4'));
  });

  afterAll(async () => {
    for (const p of stopped) if (alive(p)) process.kill(p.child.pid!, 'SIGCONT');
    await stack?.close();
  });

  it("the other worker's newer run takes the stream key at once; the stale run ends without a move: one publisher, the channel live, no ffmpeg left", async () => {
    const { id, flv, owner } = await startChannel(stack);
    const viewer = new FlvWatcher(flv);
    await eventually(async () => viewer.videoTimes.length > 10, 10000);
    const [staleFfmpeg] = ffmpegsMentioning(id);
    expect(staleFfmpeg).toBeTruthy();
    const gen0 = await runGen(stack, id);
    process.kill(owner.child.pid!, 'SIGSTOP');
    stopped.push(owner);
    const stalledAt = Date.now();
    // while the stale worker is still stopped: the newer run is live, and its ffmpeg is the only one left publishing
    const other = await eventually(async () => {
      const ch = await record(stack, id);
      const ff = ffmpegsMentioning(id);
      return ch.state === 'live' && !String(ch.worker).endsWith(`:${owner.child.pid}`) && ff.length === 1
        ? { ch, ff }
        : null;
    }, STALL_MS - 500);
    const tookOverMs = Date.now() - stalledAt;
    expect(other.ff).not.toContain(staleFfmpeg);
    expect(await runGen(stack, id)).toBe(gen0 + 1);
    const media = stack.procs.find((p) => p.name === 'media')!;
    expect(media.output.join('\n')).toMatch(
      /dropped: (its channel is published by a newer run|run \d+ of the channel is stale)/,
    );
    await sleep(Math.max(0, stalledAt + STALL_MS - Date.now()));
    process.kill(owner.child.pid!, 'SIGCONT');
    await assertOneSteadyRunner(stack, id, viewer, gen0 + 1, staleFfmpeg!);
    // the stale worker lives on and moved nothing: no failure, stop or interruption in the channel's history
    expect(alive(owner)).toBe(true);
    const history = (await record(stack, id)).history as { state: string; reason: string; at: number }[];
    expect(history.filter((h) => h.at >= stalledAt).map((h) => h.state)).toEqual(['live']);
    console.log(
      `SIGSTOP ${STALL_MS} ms with another worker: newer run live and sole publisher after ${tookOverMs} ms; largest FLV gap ${viewer.maxGapSince(stalledAt)} ms`,
    );
    viewer.close();
    const stop = await stack.request('POST', '/v1/push/stop', { channelIds: [id] });
    expect(stop.body.results[0].code).toBe(0);
    await eventually(async () => ffmpegsMentioning(id).length === 0, 10000);
  });
});

describe('a worker stalled past its job lock (SIGSTOP), alone', () => {
  let stack: Stack;
  let worker: Proc;

  beforeAll(async () => {
    stack = await startStack({ workers: 1 });
    worker = stack.procs.find((p) => p.name.startsWith('worker'))!;
    await stack.publish({ roomId: 1001, userId: 'alice', srcType: 0 }, fixture('alice-camera.mp4'));
  });

  afterAll(async () => {
    if (worker && alive(worker)) process.kill(worker.child.pid!, 'SIGCONT');
    await stack?.close();
  });

  it('takes its job again in one new run: the older run and its ffmpeg end first; one publisher, the channel live, no ffmpeg left', async () => {
    const { id, flv } = await startChannel(stack);
    const viewer = new FlvWatcher(flv);
    await eventually(async () => viewer.videoTimes.length > 10, 10000);
    const gen0 = await runGen(stack, id);
    const [staleFfmpeg] = ffmpegsMentioning(id);
    process.kill(worker.child.pid!, 'SIGSTOP');
    const stalledAt = Date.now();
    await sleep(STALL_MS);
    process.kill(worker.child.pid!, 'SIGCONT');
    await assertOneSteadyRunner(stack, id, viewer, gen0 + 1, staleFfmpeg!);
    const history = (await record(stack, id)).history as { state: string; at: number }[];
    expect(history.filter((h) => h.at >= stalledAt).map((h) => h.state)).toEqual(['live']);
    const path = worker.output.some((l) => /taken again while its older run lives/.test(l))
      ? 'taken again while the older run lived'
      : 'lock lost first, then taken again';
    console.log(`SIGSTOP ${STALL_MS} ms, one worker: ${path}; largest FLV gap ${viewer.maxGapSince(stalledAt)} ms`);
    viewer.close();
    const stop = await stack.request('POST', '/v1/push/stop', { channelIds: [id] });
    expect(stop.body.results[0].code).toBe(0);
    await eventually(async () => ffmpegsMentioning(id).length === 0, 10000);
  });
});

describe('one worker process takes the job of a channel whose run still lives there', () => {
  let stack: Stack;
  let part: Awaited<ReturnType<typeof startWorker>>;
  const lines: string[] = [];

  beforeAll(async () => {
    stack = await startStack({ workers: 0 });
    await stack.publish({ roomId: 1001, userId: 'alice', srcType: 0 }, fixture('alice-camera.mp4'));
    // this test's own process runs the worker, so that it can hand it the same job a second time
    const sink = { write: (l: string) => void lines.push(l) };
    part = await startWorker(loadConfig(stack.env), createLogger('info', 'worker', sink));
  });

  afterAll(async () => {
    await part?.close();
    await stack?.close();
  });

  it('the older run and its ffmpeg end before the newer one starts: never two ffmpegs, the channel live in the newer run, the older run moved nothing', async () => {
    const r = await stack.request('POST', '/v1/push/start', {
      roomId: 1001,
      userId: 'alice',
      srcType: 0,
      option: { encode: 3 },
    });
    expect(r.body.code, JSON.stringify(r.body)).toBe(0);
    const id = r.body.channelId as string;
    const [older] = ffmpegsMentioning(id);
    expect(older).toBeTruthy();
    const gen0 = await runGen(stack, id);
    const takenAt = Date.now();
    let most = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        most = Math.max(most, ffmpegsMentioning(id).length);
        await sleep(10);
      }
    })();
    // what BullMQ does when this process stalled past the lock and fetched its own job again: a new lock token
    const lockKey = `${stack.prefix}:bull:push:${id}:lock`;
    const token = 'token-of-the-second-take';
    await stack.redis.set(lockKey, token, 'PX', 3000);
    const job = {
      id,
      data: { channelId: id },
      moveToDelayed: async () => undefined,
      moveToWait: async () => undefined,
      extendLock: async (t: string, ms: number) =>
        (await stack.redis.get(lockKey)) === t ? Number(!!(await stack.redis.set(lockKey, t, 'PX', ms))) : 0,
    };
    const second = (part.worker as unknown as { process(j: unknown, t: string): Promise<unknown> }).process(job, token);
    const newer = await eventually(async () => {
      const ch = await record(stack, id);
      const ff = ffmpegsMentioning(id);
      return ch.state === 'live' && (await runGen(stack, id)) === gen0 + 1 && ff.length === 1 && ff[0] !== older
        ? ff[0]
        : null;
    }, 15000);
    await sleep(3000);
    sampling = false;
    await sampler;
    expect(most).toBe(1);
    expect(ffmpegsMentioning(id)).toEqual([newer]);
    const ch = await record(stack, id);
    expect(ch.state).toBe('live');
    expect((ch.history as { state: string; at: number }[]).filter((h) => h.at >= takenAt).map((h) => h.state)).toEqual([
      'live',
    ]);
    const log = lines.join('');
    expect(log).toMatch(/channel taken again while its older run lives/);
    expect(log).toMatch(/a newer run of the channel took over/);
    expect(part.worker.channels).toEqual([id]);
    const stop = await stack.request('POST', '/v1/push/stop', { channelIds: [id] });
    expect(stop.body.results[0]).toMatchObject({ code: 0, message: 'stopped' });
    expect(await second).toEqual({ state: 'stopped' });
    await eventually(async () => ffmpegsMentioning(id).length === 0, 10000);
    expect(part.worker.channels).toEqual([]);
  });
});

describe('run generations in the channel store (Redis)', () => {
  const prefix = `t${crypto.randomBytes(5).toString('hex')}`;
  const redis = new Redis(REDIS_URL);
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });

  it('beginRun raises the generation of a channel to run, in one step; a move given an older generation changes nothing', async () => {
    const store = new ChannelStore(redis, new Keys(prefix));
    const id = 'ch_' + 'a'.repeat(20);
    const ch = { channelId: id, state: 'live', history: [], urls: [], createdAt: 1, stats: { frames: 1 } };
    await redis.set(`${prefix}:channel:${id}`, JSON.stringify(ch));
    expect(await Promise.all([store.beginRun(id), store.beginRun(id), store.beginRun(id)])).toEqual([1, 2, 3]);
    expect(await store.transition(id, ['live'], 'failed', 'stale', { error: { code: 1, message: 'x' } }, 2)).toEqual({
      ok: false,
      state: 'live',
      fenced: true,
    });
    expect(await store.transition(id, ['live'], null, '', { restarts: 4 }, 3)).toEqual({ ok: true, state: 'live' });
    const now = (await store.get(id))!;
    expect([now.state, now.runGen, now.restarts, now.error]).toEqual(['live', 3, 4, undefined]);
    // only a channel to run gets a new generation; no record: null
    await store.transition(id, [], 'stopped', 'stop');
    expect(await store.beginRun(id)).toBe(3);
    expect(await store.beginRun('ch_' + 'b'.repeat(20))).toBeNull();
  });
});
