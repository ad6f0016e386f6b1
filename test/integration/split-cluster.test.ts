/**
 * The split cluster as `compose.split.yml` runs it: api, media and two workers as separate processes on one Redis
 * prefix and one data folder. One channel with a watermark and a recording goes through start, failover (its worker
 * killed with SIGKILL: the other resumes it on the same URLs) and stop; the API process lists and serves the
 * recording the workers wrote, and the watermark it stored was drawn by a worker. /readyz of the API says all parts
 * are there.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decode, fetchText } from '../helpers/media.js';
import { eventually, FFMPEG, ffmpegsMentioning, fixture, startStack, type Stack } from '../helpers/stack.js';

let stack: Stack;
let tmp: string;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'split-'));
  stack = await startStack({ workers: 2 });
  await stack.publish({ roomId: 1301, userId: 'dana', srcType: 0 }, fixture('alice-camera.mp4'));
}, 60_000);

afterAll(async () => {
  await stack?.close();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('split cluster: api + media + 2 workers on one prefix', () => {
  it('start with watermark and recording, failover, stop: the API serves what the workers wrote', async () => {
    const ready = await eventually(async () => {
      const r = await fetch(`${stack.api}/readyz`);
      return r.status === 200 ? ((await r.json()) as { checks: Record<string, string> }) : null;
    }, 10_000);
    expect(ready.checks).toEqual({ redis: 'ok', media: 'ok', workers: 'ok' });

    // a watermark uploaded to the API process, drawn by a worker process
    const png = path.join(tmp, 'wm.png');
    execFileSync(FFMPEG, ['-v', 'error', '-f', 'lavfi', '-i', 'color=red:size=160x80', '-frames:v', '1', png]);
    const wm = await stack.request('POST', '/v1/watermarks', fs.readFileSync(png), { 'content-type': 'image/png' });
    expect(wm.body.code, JSON.stringify(wm.body)).toBe(0);

    const r = await stack.request('POST', '/v1/push/start', {
      roomId: 1301,
      userId: 'dana',
      srcType: 0,
      option: { encode: 3, record: true, waterMark: true, waterMarkId: wm.body.waterMarkId },
    });
    expect(r.body.code, JSON.stringify(r.body)).toBe(0);
    const id = r.body.channelId as string;
    const hls = (r.body.urls as { type: number; playUrl: string }[]).find((u) => u.type === 1)!.playUrl;
    await eventually(async () => ((await fetchText(hls))?.match(/#EXTINF/g) ?? []).length >= 2 || null, 20_000);

    // its worker killed: the other one resumes it on the same URLs
    const owner = (await stack.request('GET', `/v1/push/${id}`)).body.channel.worker as string;
    const proc = stack.procs.find((p) => p.name.startsWith('worker') && owner.endsWith(`:${p.child.pid}`))!;
    expect(proc).toBeDefined();
    await proc.stop('SIGKILL');
    const resumed = await eventually(async () => {
      const ch = (await stack.request('GET', `/v1/push/${id}`)).body.channel;
      return ch.state === 'live' && ch.worker !== owner ? ch : null;
    }, 20_000);
    expect(resumed.urls).toEqual(r.body.urls);
    await eventually(async () => ((await fetchText(hls))?.match(/#EXTINF/g) ?? []).length >= 4 || null, 20_000);

    const stop = await stack.request('POST', '/v1/push/stop', { channelIds: [id] });
    expect(stop.body.results[0].code).toBe(0);
    expect(await fetchText(hls)).toMatch(/#EXT-X-ENDLIST/);
    expect(ffmpegsMentioning(id)).toEqual([]);

    // the recording: listed and served by the API process, from the data folder the workers share with it
    const files = await eventually(async () => {
      const list = (await stack.request('GET', `/v1/records/${r.body.recordTaskId}`)).body.files as
        { name: string; bytes: number; downloadUrl: string }[] | undefined;
      return list && list.length > 0 && list.every((f) => f.bytes > 0) ? list : null;
    }, 15_000);
    const file = path.join(tmp, files[0]!.name);
    const dl = await fetch(files[0]!.downloadUrl, { headers: { authorization: stack.auth } });
    expect(dl.status).toBe(200);
    fs.writeFileSync(file, Buffer.from(await dl.arrayBuffer()));
    const played = await decode(file, { frames: 10 });
    expect(played.videoCodec).toBe('h264');
  }, 120_000);
});
