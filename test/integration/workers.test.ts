import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFlv } from '../helpers/media.js';
import { eventually, ffmpegsMentioning, fixture, startStack, type Stack } from '../helpers/stack.js';
import { ChannelStore } from '../../src/channels/store.js';
import { Keys } from '../../src/redis/index.js';

let stack: Stack;

beforeAll(async () => {
  // One channel per worker, so two channels must land on two processes.
  stack = await startStack({ workers: 2, env: { RELAY_WORKER_CONCURRENCY: '1' } });
  await stack.publish({ roomId: 1001, userId: 'alice', srcType: 0 }, fixture('alice-camera.mp4'));
  await stack.publish({ roomId: 1001, userId: 'bob', srcType: 1 }, fixture('bob-screen.mp4'));
  await stack.publish({ roomId: 1001, userId: 'carol', srcType: 0 }, fixture('bob-camera.mp4'));
});

afterAll(async () => {
  await stack?.close();
});

const channel = async (id: string) => (await stack.request('GET', `/v1/push/${id}`)).body.channel;

describe('several worker processes on one queue', () => {
  it('two channels run at once on two workers, and each stop reaches the worker that runs it', async () => {
    const a = await stack.request('POST', '/v1/push/start', {
      roomId: 1001,
      userId: 'alice',
      srcType: 0,
      option: { encode: 2 },
    });
    const b = await stack.request('POST', '/v1/push/start', {
      roomId: 1001,
      userId: 'bob',
      srcType: 1,
      option: { encode: 2 },
    });
    expect(a.body.code).toBe(0);
    expect(b.body.code).toBe(0);
    const [ca, cb] = [await channel(a.body.channelId), await channel(b.body.channelId)];
    expect(ca.worker).toBeTruthy();
    expect(cb.worker).toBeTruthy();
    expect(ca.worker).not.toBe(cb.worker);

    const bFlv = await readFlv(b.body.urls[0].playUrl, { keepOpen: true });
    expect(bFlv.summary.keyframe).toBe(true);
    const stopA = await stack.request('POST', '/v1/push/stop', { channelIds: [a.body.channelId] });
    expect(stopA.body.results[0]).toMatchObject({ code: 0, message: 'stopped' });
    expect((await channel(a.body.channelId)).state).toBe('stopped');
    expect(ffmpegsMentioning(a.body.channelId)).toEqual([]);

    // b is untouched: still live, its ffmpeg still running and its viewer still receiving
    expect((await channel(b.body.channelId)).state).toBe('live');
    expect(ffmpegsMentioning(b.body.channelId)).toHaveLength(1);
    const before = bFlv.summary.videoTags;
    await eventually(async () => bFlv.summary.videoTags > before + 10, 5000);
    bFlv.destroy();

    const stopB = await stack.request('POST', '/v1/push/stop', { channelIds: [b.body.channelId] });
    expect(stopB.body.results[0]).toMatchObject({ code: 0, message: 'stopped' });
    expect(ffmpegsMentioning(b.body.channelId)).toEqual([]);
  });

  it('a worker stopped with SIGTERM hands its channel to the other worker, on the same URLs', async () => {
    const a = await stack.request('POST', '/v1/push/start', {
      roomId: 1001,
      userId: 'carol',
      srcType: 0,
      option: { encode: 3 },
    });
    expect(a.body.code).toBe(0);
    const id = a.body.channelId;
    const owner = (await channel(id)).worker as string;
    const proc = stack.procs.find((p) => p.name.startsWith('worker') && owner.endsWith(`:${p.child.pid}`));
    expect(proc, `worker process of ${owner}`).toBeTruthy();
    await proc!.stop('SIGTERM');
    const resumed = await eventually(async () => {
      const ch = await channel(id);
      return ch.state === 'live' && ch.worker !== owner ? ch : null;
    }, 15000);
    expect(resumed.urls).toEqual(a.body.urls);
    expect(resumed.history.map((h: { reason: string }) => h.reason).join('|')).toMatch(/resumed on/);
    const flv = await readFlv(a.body.urls.find((u: { type: number }) => u.type === 2).playUrl);
    expect(flv.summary.keyframe).toBe(true);
    const stop = await stack.request('POST', '/v1/push/stop', { channelIds: [id] });
    expect(stop.body.results[0].code).toBe(0);
    expect(ffmpegsMentioning(id)).toEqual([]);
  });

  it('a stop whose control message is lost still reaches the worker through the channel record', async () => {
    await stack.publish({ roomId: 1001, userId: 'dave', srcType: 0 }, fixture('alice-camera.mp4'));
    const a = await stack.request('POST', '/v1/push/start', {
      roomId: 1001,
      userId: 'dave',
      srcType: 0,
      option: { encode: 1 },
    });
    expect(a.body.code).toBe(0);
    const id = a.body.channelId;
    // what the API does on stop, minus the pub/sub message
    const store = new ChannelStore(stack.redis, new Keys(stack.prefix));
    expect((await store.transition(id, ['live'], 'stopping', 'test: stop without a message')).ok).toBe(true);
    const stopped = await eventually(async () => {
      const ch = await channel(id);
      return ch.state === 'stopped' ? ch : null;
    }, 10000);
    expect(stopped.stoppedAt).toBeGreaterThan(0);
    expect(ffmpegsMentioning(id)).toEqual([]);
    const playlist = await (await fetch(a.body.urls[0].playUrl)).text();
    expect(playlist).toMatch(/#EXT-X-ENDLIST/);
  });
});
