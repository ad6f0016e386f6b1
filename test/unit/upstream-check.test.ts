import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkUpstream } from '../../src/rooms/upstream-check.js';
import { parseEgressAllow } from '../../src/egress/index.js';
import { RelayError } from '../../src/errors/index.js';
import { buildApi } from '../../src/api/app.js';
import type { FfmpegInfo } from '../../src/media/ffmpeg/capabilities.js';
import { FAKE_AUTH, fakeApiDeps } from '../fakes/index.js';
import { capsOf } from './ffmpeg-output/captured.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'upstreams-'));
fs.writeFileSync(path.join(dir, 'cam.mp4'), 'x');
fs.writeFileSync(path.join(dir, 'room.sdp'), 'v=0');
fs.mkdirSync(path.join(dir, 'folder.mp4'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const ff41: FfmpegInfo = { path: '/nm/ffmpeg', version: { text: 'N-47683', major: 4, minor: 1 }, caps: capsOf('4.1') };
const ff51: FfmpegInfo = {
  path: '/usr/bin/ffmpeg',
  version: { text: '5.1.9', major: 5, minor: 1 },
  caps: capsOf('5.1'),
};
const deps = (ffmpeg?: FfmpegInfo) => ({
  fileUpstreamDir: dir,
  egress: parseEgressAllow('127.0.0.1'),
  ...(ffmpeg ? { ffmpeg: async () => ffmpeg } : {}),
});

async function refusal(p: Promise<unknown>): Promise<{ code: number; message: string; status: number }> {
  try {
    await p;
  } catch (e) {
    if (e instanceof RelayError) return { code: e.code, message: e.message, status: e.status };
    throw e;
  }
  throw new Error('not refused');
}

describe('checks of an upstream URL (registration and each start)', () => {
  it("an srt:// upstream is refused with 50008 naming the srt protocol when the relay's ffmpeg lacks it", async () => {
    expect(await refusal(checkUpstream('srt://127.0.0.1:9000?mode=caller', deps(ff41)))).toEqual({
      code: 50008,
      status: 501,
      message: "srt:// upstreams need the srt protocol, which the relay's ffmpeg 4.1 lacks",
    });
    expect(await checkUpstream('srt://127.0.0.1:9000?mode=caller', deps(ff51))).toEqual({
      url: 'srt://127.0.0.1:9000?mode=caller',
      protocolWhitelist: 'srt,udp',
      isFile: false,
    });
  });

  it('srt hosts pass the egress policy like any other: an internal address not allowed is 50002', async () => {
    const r = await refusal(checkUpstream('srt://10.1.2.3:9000?mode=caller', deps(ff51)));
    expect(r).toMatchObject({ code: 50002, message: expect.stringMatching(/internal address/) });
  });

  it('a file upstream must exist and be a file (50002, named as registered); an .sdp needs the sdp demuxer', async () => {
    expect(await refusal(checkUpstream('nope.mp4', deps(ff51)))).toMatchObject({
      code: 50002,
      message: 'upstream file nope.mp4 does not exist',
    });
    expect((await refusal(checkUpstream('folder.mp4', deps(ff51)))).message).toBe(
      'upstream file folder.mp4 is not a regular file',
    );
    expect((await checkUpstream('cam.mp4', deps(ff41))).url).toBe(path.join(dir, 'cam.mp4'));
    const noSdp = { ...ff51, caps: { ...ff51.caps!, demuxers: new Set(['flv']) } };
    expect((await refusal(checkUpstream('room.sdp', deps(noSdp)))).message).toBe(
      ".sdp upstreams need the sdp demuxer, which the relay's ffmpeg 5.1 lacks",
    );
  });

  it('without a known ffmpeg (or one that cannot run) no capability is checked', async () => {
    expect((await checkUpstream('srt://127.0.0.1:9000', deps())).isFile).toBe(false);
    expect((await checkUpstream('srt://127.0.0.1:9000', deps({ ...ff41, caps: null }))).isFile).toBe(false);
  });
});

describe('PUT /v1/rooms/{roomId}/upstreams', () => {
  const put = async (url: string, ffmpeg: FfmpegInfo) => {
    const d = { ...fakeApiDeps(), ffmpeg: async () => ffmpeg };
    d.config = { ...d.config, fileUpstreamDir: dir };
    const app = buildApi(d);
    const res = await app.inject({
      method: 'PUT',
      url: '/v1/rooms/8801/upstreams',
      headers: { authorization: FAKE_AUTH },
      payload: { userId: 'cam1', srcType: 0, url },
    });
    await app.close();
    return { status: res.statusCode, body: res.json(), registered: d.upstreams };
  };

  it('refuses srt:// with 50008 (HTTP 501) on an ffmpeg without SRT, and a missing file with 50002; nothing is registered', async () => {
    const srt = await put('srt://127.0.0.1:9000?mode=caller', ff41);
    expect(srt.status).toBe(501);
    expect(srt.body).toMatchObject({ code: 50008, message: expect.stringMatching(/srt protocol.*4\.1/) });
    expect(srt.body.hint).toMatch(/apt-get install -y ffmpeg/);
    const missing = await put('missing.mp4', ff51);
    expect(missing.status).toBe(400);
    expect(missing.body).toMatchObject({ code: 50002, message: 'upstream file missing.mp4 does not exist' });
    expect([...srt.registered, ...missing.registered]).toEqual([]);
  });
});
