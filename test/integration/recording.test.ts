import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decode } from '../helpers/media.js';
import { eventually, fixture, sleep, startStack, type Stack } from '../helpers/stack.js';

let stack: Stack;

beforeAll(async () => {
  // files are cut every 4 s here, so a short test shows the cut
  stack = await startStack({ workers: 2, env: { RELAY_RECORD_MAX_SECONDS: '4', RELAY_WORKER_CONCURRENCY: '2' } });
  await stack.publish({ roomId: 1001, userId: 'alice', srcType: 0 }, fixture('alice-camera.mp4'));
  await stack.publish({ roomId: 1001, userId: 'bob', srcType: 0 }, fixture('bob-camera.mp4'));
  await stack.publish({ roomId: 1001, userId: 'carol', srcType: 0 }, fixture('bob-camera.mp4'));
});

afterAll(async () => {
  await stack?.close();
});

const taskDir = (taskId: number) => path.join(stack.dataDir, 'records', stack.sdkAppId, String(taskId));
const channel = async (id: string) => (await stack.request('GET', `/v1/push/${id}`)).body.channel;

interface Listed {
  name: string;
  format: string;
  bytes: number;
  durationMs: number;
  startedAt: number;
  downloadUrl: string;
}

describe('recording', () => {
  it('record: true answers a recordTaskId; files named by channel, task and start time are cut at the maximum length and play end to end', async () => {
    const r = await stack.request('POST', '/v1/push/start', {
      roomId: 1001,
      userId: 'alice',
      srcType: 0,
      option: { encode: 5, record: true },
    });
    expect(r.body.code, JSON.stringify(r.body)).toBe(0);
    const task = r.body.recordTaskId as number;
    expect(Number.isInteger(task)).toBe(true);
    expect((await channel(r.body.channelId)).recordTaskId).toBe(task);
    await sleep(10000);
    await stack.request('POST', '/v1/push/stop', { channelIds: [r.body.channelId] });

    const list = await stack.request('GET', `/v1/records/${task}`);
    expect(list.body.code).toBe(0);
    const files = list.body.files as Listed[];
    expect(files.length).toBeGreaterThanOrEqual(2);
    const total = { seconds: 0 };
    for (const f of files) {
      expect(f.name).toMatch(new RegExp(`^${r.body.channelId}_${task}_\\d{8}-\\d{6}\\.mp4$`));
      expect(f.bytes).toBeGreaterThan(10000);
      const d = await decode(path.join(taskDir(task), f.name));
      expect([d.width, d.height]).toEqual([1280, 720]);
      expect(d.audioCodec).toBe('aac');
      expect(d.seconds).toBeLessThanOrEqual(4 + 2.1); // cut at the first keyframe after 4 s (2 s GOP)
      total.seconds += d.seconds;
    }
    expect(total.seconds).toBeGreaterThan(7);
    expect(total.seconds).toBeLessThan(13);
    // the download URL serves the same bytes, to the app only
    const dl = await fetch(files[0]!.downloadUrl, { headers: { authorization: stack.auth } });
    expect(dl.status).toBe(200);
    expect(Buffer.from(await dl.arrayBuffer()).length).toBe(files[0]!.bytes);
    expect((await fetch(files[0]!.downloadUrl)).status).toBe(401);
    expect((await stack.request('GET', `/v1/push/${r.body.channelId}/records`)).body.files).toHaveLength(files.length);
  });

  it('recordFileType 7 records MP4, FLV and HLS at once, each playable', async () => {
    const r = await stack.request('POST', '/v1/push/start', {
      roomId: 1001,
      userId: 'bob',
      srcType: 0,
      option: { encode: 2, record: true, recordFileType: 7 },
    });
    expect(r.body.code).toBe(0);
    await sleep(5000);
    await stack.request('POST', '/v1/push/stop', { channelIds: [r.body.channelId] });
    const files = (await stack.request('GET', `/v1/records/${r.body.recordTaskId}`)).body.files as Listed[];
    expect(new Set(files.map((f) => f.format))).toEqual(new Set(['mp4', 'flv', 'hls']));
    for (const f of files) {
      const d = await decode(path.join(taskDir(r.body.recordTaskId), f.name));
      expect(d.width).toBe(640);
      expect(d.seconds).toBeGreaterThan(1);
    }
    const playlist = fs.readFileSync(path.join(taskDir(r.body.recordTaskId), 'hls', 'index.m3u8'), 'utf8');
    expect(playlist).toMatch(/#EXT-X-ENDLIST/);
  });

  it('a channel handed to another worker keeps recording under the same task; a SIGKILLed worker leaves files that decode up to the kill', async () => {
    const r = await stack.request('POST', '/v1/push/start', {
      roomId: 1001,
      userId: 'carol',
      srcType: 0,
      option: { encode: 5, record: true },
    });
    expect(r.body.code).toBe(0);
    const task = r.body.recordTaskId as number;
    await sleep(3000);
    const ownerOf = async () => {
      const owner = (await channel(r.body.channelId)).worker as string;
      return stack.procs.find((p) => p.name.startsWith('worker') && owner.endsWith(`:${p.child.pid}`))!;
    };
    const first = await ownerOf();
    const before = fs.readdirSync(taskDir(task)).length;
    await first.stop('SIGTERM');
    await eventually(
      async () =>
        (await channel(r.body.channelId)).history.some((h: { reason: string }) => /resumed on/.test(h.reason)),
      15000,
    );
    await eventually(async () => fs.readdirSync(taskDir(task)).length > before, 10000);
    expect((await channel(r.body.channelId)).recordTaskId).toBe(task);

    // kill 3 s into a fresh file: its fragments up to the last keyframe (2 s GOP) must play
    const mp4s = () =>
      fs
        .readdirSync(taskDir(task))
        .filter((f) => f.endsWith('.mp4'))
        .sort();
    const known = mp4s().length;
    await eventually(async () => mp4s().length > known, 10000, 50);
    const newest = mp4s().pop()!;
    await sleep(3000);
    const second = await ownerOf();
    await second.stop('SIGKILL');
    const d = await decode(path.join(taskDir(task), newest));
    expect(d.width).toBe(640);
    expect(d.seconds).toBeGreaterThan(1.5);
  });
});
