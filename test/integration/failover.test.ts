import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchText, FlvWatcher, readFlv } from '../helpers/media.js';
import { eventually, ffmpegsMentioning, fixture, sleep, startStack, type Stack } from '../helpers/stack.js';

let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ workers: 2 });
  await stack.publish({ roomId: 1001, userId: 'alice', srcType: 0 }, fixture('alice-camera.mp4'));
});

afterAll(async () => {
  await stack?.close();
});

describe('a worker killed with SIGKILL', () => {
  it("another worker resumes the channel within 10 s on the same URLs; the FLV viewer stays connected; HLS numbering continues; the dead worker's ffmpeg is gone", async () => {
    const r = await stack.request('POST', '/v1/push/start', {
      roomId: 1001,
      userId: 'alice',
      srcType: 0,
      option: { encode: 3 },
    });
    expect(r.body.code).toBe(0);
    const id = r.body.channelId as string;
    const [hls, flv] = [r.body.urls[0].playUrl as string, r.body.urls[1].playUrl as string];
    const viewer = new FlvWatcher(flv);
    const before = await eventually(async () => {
      const t = await fetchText(hls);
      return t && (t.match(/#EXTINF/g) ?? []).length >= 2 ? t : null;
    });
    await sleep(1000);
    const owner = (await stack.request('GET', `/v1/push/${id}`)).body.channel.worker as string;
    const proc = stack.procs.find((p) => p.name.startsWith('worker') && owner.endsWith(`:${p.child.pid}`))!;
    const oldFfmpeg = ffmpegsMentioning(id);
    const killedAt = Date.now();
    await proc.stop('SIGKILL');
    await eventually(async () => oldFfmpeg.every((pid) => !ffmpegsMentioning(id).includes(pid)), 3000);
    const resumed = await eventually(async () => {
      const ch = (await stack.request('GET', `/v1/push/${id}`)).body.channel;
      return ch.state === 'live' && ch.worker !== owner ? ch : null;
    }, 15000);
    const resumedMs = Date.now() - killedAt;
    await eventually(async () => viewer.videoTimes.at(-1)! > Date.now() - 300, 10000);
    await sleep(2000);
    const gap = viewer.maxGapSince(killedAt);
    viewer.close();
    console.log(
      `SIGKILL failover: channel live on the other worker after ${resumedMs} ms; largest gap between FLV video tags ${gap} ms`,
    );
    expect(resumed.urls).toEqual(r.body.urls);
    expect(gap).toBeLessThan(10000);
    expect(ffmpegsMentioning(id)).toHaveLength(1);
    const after = await eventually(async () => {
      const t = await fetchText(hls);
      const last = (p: string) => Math.max(...[...p.matchAll(/seg_(\d+)\.ts/g)].map((m) => Number(m[1])));
      return t && last(t) > last(before) + 1 && /\.ts\n#EXT-X-DISCONTINUITY/.test(t) ? t : null;
    }, 15000);
    expect(after).not.toMatch(/#EXT-X-ENDLIST/);
    await stack.request('POST', '/v1/push/stop', { channelIds: [id] });
  });

  it('a worker stopped with SIGTERM hands over with a short gap for FLV viewers', async () => {
    await stack.startWorker();
    await sleep(3100); // the start rate limit of the previous test's member
    const r = await stack.request('POST', '/v1/push/start', {
      roomId: 1001,
      userId: 'alice',
      srcType: 0,
      option: { encode: 2 },
    });
    expect(r.body.code).toBe(0);
    const id = r.body.channelId as string;
    const viewer = new FlvWatcher(r.body.urls[0].playUrl);
    await sleep(3000);
    const owner = (await stack.request('GET', `/v1/push/${id}`)).body.channel.worker as string;
    const proc = stack.procs.find(
      (p) =>
        p.name.startsWith('worker') &&
        owner.endsWith(`:${p.child.pid}`) &&
        p.child.exitCode === null &&
        p.child.signalCode === null,
    )!;
    const stoppedAt = Date.now();
    await proc.stop('SIGTERM');
    await eventually(async () => {
      const ch = (await stack.request('GET', `/v1/push/${id}`)).body.channel;
      return ch.state === 'live' && ch.worker !== owner;
    }, 10000);
    await sleep(3000);
    const gap = viewer.maxGapSince(stoppedAt);
    viewer.close();
    console.log(`SIGTERM handover: largest gap between FLV video tags ${gap} ms`);
    expect(gap).toBeLessThan(5000);
    await stack.request('POST', '/v1/push/stop', { channelIds: [id] });
  });

  it('a worker that loses its job lock stops its ffmpeg at once: the channel never has two publishers, and goes on', async () => {
    await sleep(3100);
    const r = await stack.request('POST', '/v1/push/start', {
      roomId: 1001,
      userId: 'alice',
      srcType: 0,
      option: { encode: 2 },
    });
    expect(r.body.code).toBe(0);
    const id = r.body.channelId as string;
    const first = ffmpegsMentioning(id);
    expect(first).toHaveLength(1);
    // another holder takes the lock (as after a long pause of this worker): the renewal fails
    await stack.redis.set(`${stack.prefix}:bull:push:${id}:lock`, 'someone-else', 'PX', 3000);
    let most = 0;
    const t0 = Date.now();
    while (Date.now() - t0 < 12000) {
      const now = ffmpegsMentioning(id);
      most = Math.max(most, now.length);
      if (now.length === 1 && now[0] !== first[0]) break;
      await sleep(50);
    }
    expect(most).toBeLessThanOrEqual(1);
    await eventually(async () => {
      const ch = (await stack.request('GET', `/v1/push/${id}`)).body.channel;
      const now = ffmpegsMentioning(id);
      return ch.state === 'live' && now.length === 1 && now[0] !== first[0];
    }, 15000);
    await stack.request('POST', '/v1/push/stop', { channelIds: [id] });
  });

  it("with no other worker, a SIGTERMed worker's channel waits in the queue and resumes when a worker appears", async () => {
    for (const p of stack.procs
      .filter((x) => x.name.startsWith('worker') && x.child.exitCode === null && x.child.signalCode === null)
      .slice(1))
      await p.stop('SIGTERM');
    await sleep(3100);
    const r = await stack.request('POST', '/v1/push/start', {
      roomId: 1001,
      userId: 'alice',
      srcType: 0,
      option: { encode: 2 },
    });
    expect(r.body.code).toBe(0);
    const id = r.body.channelId as string;
    const last = stack.procs.find(
      (x) => x.name.startsWith('worker') && x.child.exitCode === null && x.child.signalCode === null,
    )!;
    await last.stop('SIGTERM');
    expect(ffmpegsMentioning(id)).toEqual([]);
    await sleep(1500);
    expect((await stack.request('GET', `/v1/push/${id}`)).body.channel.state).toBe('live');
    await stack.startWorker();
    await eventually(async () => ffmpegsMentioning(id).length === 1, 15000);
    expect((await readFlv(r.body.urls[0].playUrl)).summary.keyframe).toBe(true);
    await stack.request('POST', '/v1/push/stop', { channelIds: [id] });
  });
});
