import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestPublishUrl } from '../../src/rooms/ingest.js';
import { AVC_SEQUENCE_HEADER, RawRtmpPublisher } from '../helpers/rtmp-client.js';
import { FlvWatcher, readFlv } from '../helpers/media.js';
import { eventually, ffmpegsMentioning, fixture, sleep, startStack, type Stack } from '../helpers/stack.js';

/** RELAY_INGEST_IDLE_MS of this stack; the media server checks every min(1 s, idle / 4). */
const IDLE_MS = 3000;
/** Idle timeout + one check interval + slack for a Redis round trip and a busy machine (measured up to 4.5 s at load 9). */
const DROP_BY_MS = IDLE_MS + IDLE_MS / 4 + 1500;

let stack: Stack;
/** The channel of the second test, live again when the third begins. */
let aliceChannel = '';

beforeAll(async () => {
  // RELAY_STALL_MS above the idle timeout: what drops a silent channel publish here is the media server, not the worker
  stack = await startStack({ env: { RELAY_INGEST_IDLE_MS: String(IDLE_MS), RELAY_STALL_MS: '30000' } });
});

afterAll(async () => {
  await stack?.close();
});

const registered = (roomId: number, userId: string) =>
  stack.redis.hexists(`${stack.prefix}:room:${stack.sdkAppId}:${roomId}`, `${userId}:0`).then((n) => n === 1);

/** A raw RTMP member publishing into the ingest (handshake, connect, publish), sending H.264 frames when asked. */
async function rawMember(roomId: number, userId: string): Promise<RawRtmpPublisher> {
  const url = ingestPublishUrl('127.0.0.1', stack.rtmpPort, stack.secretKey, {
    sdkAppId: stack.sdkAppId,
    roomId,
    userId,
    srcType: 0,
  });
  const p = await RawRtmpPublisher.publish(stack.rtmpPort, 'ingest', url.slice(url.indexOf('/ingest/') + 8));
  p.send(9, 0, AVC_SEQUENCE_HEADER);
  return p;
}

/** Sends a keyframe every 100 ms for `ms`, with timestamps from `t0`; returns the next timestamp. */
async function sendFrames(p: RawRtmpPublisher, t0: number, ms: number): Promise<number> {
  let ts = t0;
  for (const end = Date.now() + ms; Date.now() < end; ts += 100) {
    p.send(9, ts, Buffer.from('1701000000000000', 'hex'));
    await sleep(100);
  }
  return ts;
}

const channel = async (id: string) => (await stack.request('GET', `/v1/push/${id}`)).body.channel;

/** Idle drops the media server logged at or after `since` (ms), by stream path. */
const idleDropsSince = (since: number): string[] =>
  stack.procs
    .find((p) => p.name === 'media')!
    .output.filter((l) => l.includes('dropped an idle publisher'))
    .map((l) => JSON.parse(l) as { time: number; path: string })
    .filter((l) => l.time >= since)
    .map((l) => l.path);

describe('a publisher that stalls (connection open, no data) is dropped after RELAY_INGEST_IDLE_MS', () => {
  it('a raw RTMP member that stops sending loses its key within the idle timeout; republishing is accepted at once', async () => {
    const first = await rawMember(2002, 'stall');
    await sendFrames(first, 0, 1000);
    await eventually(() => registered(2002, 'stall'), 5000);
    const silentAt = Date.now();
    // while it holds the key, another publish of the same member is refused (node-media-server: one publisher a key)
    await sleep(IDLE_MS / 3);
    const refused = await rawMember(2002, 'stall');
    await eventually(async () => refused.closed, 3000);
    // the silent one is dropped: its connection closed by the server, the member unregistered
    await eventually(async () => first.closed && !(await registered(2002, 'stall')), DROP_BY_MS + 2000, 50);
    const droppedAfter = Date.now() - silentAt;
    expect(droppedAfter).toBeGreaterThanOrEqual(IDLE_MS - 100);
    expect(droppedAfter).toBeLessThanOrEqual(DROP_BY_MS);
    expect(idleDropsSince(silentAt)).toEqual(['/ingest/1400000001_2002_stall_camera']);
    // the same member comes back: accepted and registered at once, and it stays while it sends
    const back = await rawMember(2002, 'stall');
    const t0 = Date.now();
    await eventually(() => registered(2002, 'stall'), 3000, 20);
    const backAfter = Date.now() - t0;
    expect(backAfter).toBeLessThan(1000);
    console.log(
      `raw RTMP member silent (idle ${IDLE_MS} ms): dropped and unregistered after ${droppedAfter} ms; republish registered after ${backAfter} ms`,
    );
    await sendFrames(back, 0, IDLE_MS + 1000);
    expect(back.closed).toBe(false);
    expect(await registered(2002, 'stall')).toBe(true);
    await back.end();
    await refused.end();
  });

  it('a stopped member encoder (SIGSTOP) frees its key; the member republishes and its channel goes live again on the same URLs', async () => {
    await stack.publish({ roomId: 1001, userId: 'alice', srcType: 0 }, fixture('alice-camera.mp4'));
    const start = await stack.request('POST', '/v1/push/start', {
      roomId: 1001,
      userId: 'alice',
      srcType: 0,
      option: { encode: 3, autoResume: true },
    });
    expect(start.body.code, JSON.stringify(start.body)).toBe(0);
    const { channelId, urls } = start.body as { channelId: string; urls: { type: number; playUrl: string }[] };
    const flv = urls.find((u) => u.type === 2)!.playUrl;
    aliceChannel = channelId;
    const feeder = ffmpegsMentioning(`:${stack.rtmpPort}/ingest/`).filter((pid) =>
      ffmpegsMentioning('alice-camera.mp4').includes(pid),
    );
    expect(feeder).toHaveLength(1);
    try {
      process.kill(feeder[0]!, 'SIGSTOP');
      const stoppedAt = Date.now();
      await eventually(async () => !(await registered(1001, 'alice')), DROP_BY_MS + 2000, 50);
      const unregisteredAfter = Date.now() - stoppedAt;
      expect(unregisteredAfter).toBeLessThanOrEqual(DROP_BY_MS);
      // its channel lost its upstream: interrupted and retained
      await eventually(async () => (await channel(channelId)).state === 'interrupted');
      // the member publishes again: accepted at once, and the channel resumes by itself on the same URLs
      const t0 = Date.now();
      await stack.publish({ roomId: 1001, userId: 'alice', srcType: 0 }, fixture('alice-camera.mp4'));
      expect(await registered(1001, 'alice')).toBe(true);
      const republishedAfter = Date.now() - t0;
      expect(republishedAfter).toBeLessThan(5000);
      const view = await eventually(async () => {
        const ch = await channel(channelId);
        return ch.state === 'live' ? ch : null;
      }, 20000);
      expect(view.urls).toEqual(urls);
      console.log(
        `SIGSTOP member encoder (idle ${IDLE_MS} ms): unregistered after ${unregisteredAfter} ms; republish registered after ${republishedAfter} ms, channel live again after ${Date.now() - t0} ms`,
      );
      const { summary } = await readFlv(flv, { timeoutMs: 15000 });
      expect(summary.keyframe).toBe(true);
    } finally {
      process.kill(feeder[0]!, 'SIGKILL');
    }
  });

  it("a worker's ffmpeg that stops publishing (SIGSTOP) loses the channel key; viewers stay and get the next run's media", async () => {
    const channelId = aliceChannel;
    expect(channelId).toMatch(/^ch_/);
    const flv = `http://127.0.0.1:${stack.httpPort}/live/${channelId}.flv`;
    const relay = ffmpegsMentioning(`/live/${channelId}`);
    expect(relay).toHaveLength(1);
    const viewer = new FlvWatcher(flv);
    try {
      await eventually(async () => viewer.videoTimes.length > 10);
      process.kill(relay[0]!, 'SIGSTOP');
      const stoppedAt = Date.now();
      await eventually(async () => idleDropsSince(stoppedAt).length > 0, DROP_BY_MS + 2000, 50);
      const droppedAfter = Date.now() - stoppedAt;
      // the channel's publish only: its member goes on publishing into the ingest
      expect(idleDropsSince(stoppedAt)).toEqual([`/live/${channelId}`]);
      expect(droppedAfter).toBeLessThanOrEqual(DROP_BY_MS);
      // the stopped ffmpeg, let go again, finds its connection gone and exits; the worker restarts it on the same key
      process.kill(relay[0]!, 'SIGCONT');
      const resumedAt = Date.now();
      await eventually(async () => viewer.videoTimes.some((t) => t > resumedAt + 500), 20000);
      const view = await channel(channelId);
      expect(view.state).toBe('live');
      expect(view.restarts).toBeGreaterThanOrEqual(1);
      console.log(
        `SIGSTOP relay ffmpeg (idle ${IDLE_MS} ms): its publish dropped after ${droppedAfter} ms; the viewer got video again ${viewer.videoTimes.find((t) => t > resumedAt)! - resumedAt} ms after SIGCONT`,
      );
    } finally {
      viewer.close();
      try {
        process.kill(relay[0]!, 'SIGCONT');
      } catch {
        /* gone */
      }
    }
  });
});
