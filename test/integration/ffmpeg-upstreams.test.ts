/**
 * Upstreams whose fate is the chosen ffmpeg's: with an ffmpeg that has SRT (Debian's 5.1) an srt:// caller upstream
 * relays to FLV and HLS, and its host passes the egress policy like any URL's; an HLS upstream with ADTS AAC is copied
 * into FLV where the ffmpeg's flv muxer inserts aac_adtstoasc (≥ 5); a worker whose ffmpeg lacks SRT (the bundled 4.1)
 * refuses the start with 50008 quoting ffmpeg, and says at start-up which ffmpeg it runs and what it lacks.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeCapabilities } from '../../src/media/ffmpeg/capabilities.js';
import { bundledFfmpeg, readVersion } from '../../src/media/ffmpeg/locate.js';
import { freePorts } from '../../src/dev/redis.js';
import { decode, readFlv } from '../helpers/media.js';
import { eventually, FFMPEG, fixture, startStack, type Stack } from '../helpers/stack.js';

const srtHere = (await probeCapabilities(FFMPEG))?.protocols.input.has('srt') ?? false;
const bundled = bundledFfmpeg();
const bundledLacksSrt = bundled !== null && (await probeCapabilities(bundled))?.protocols.input.has('srt') === false;
if (!srtHere) console.log(`SKIP SRT relay tests: ${FFMPEG} has no srt protocol (apt-get install -y ffmpeg)`);
if (!bundledLacksSrt) console.log('SKIP the 4.1-worker test: no bundled ffmpeg without SRT (@ffmpeg-installer/ffmpeg)');
const adtsIntoFlv = (readVersion(FFMPEG)?.major ?? 0) >= 5;
if (!adtsIntoFlv)
  console.log(`SKIP HLS+AAC to FLV: ${FFMPEG} is older than 5 (its flv muxer needs -bsf:a aac_adtstoasc)`);

/** An SRT listener sending 640x360 H.264 + AAC in MPEG-TS (what an SRT encoder sends), until stopped. */
function srtListener(port: number): ChildProcess {
  const args = [
    ...['-hide_banner', '-nostdin', '-loglevel', 'error', '-re'],
    ...[
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=640x360:rate=25',
      '-f',
      'lavfi',
      '-i',
      'sine=frequency=440:sample_rate=48000',
    ],
    ...['-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-pix_fmt', 'yuv420p', '-g', '50'],
    ...['-c:a', 'aac', '-b:a', '64k', '-f', 'mpegts', `srt://127.0.0.1:${port}?mode=listener`],
  ];
  return spawn('/usr/bin/setpriv', ['--pdeathsig', 'SIGKILL', '--', FFMPEG, ...args], {
    stdio: 'ignore',
    detached: true,
  });
}

function stopProcess(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const gone = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    /* gone */
  }
  return gone;
}

describe.skipIf(!srtHere && !adtsIntoFlv)('upstreams that need a current ffmpeg', () => {
  let stack: Stack;
  let listener: ChildProcess | undefined;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stopProcess(listener);
    await stack?.close();
  });

  it.skipIf(!srtHere)(
    'an srt:// caller upstream relays: FLV with a keyframe and AAC, decoding at 640x360 H.264 + AAC',
    async () => {
      const [port] = (await freePorts(1)) as [number];
      listener = srtListener(port);
      const url = `srt://127.0.0.1:${port}?mode=caller`;
      const reg = await stack.request('PUT', '/v1/rooms/7001/upstreams', { userId: 'enc1', srcType: 0, url });
      expect(reg.body.code, JSON.stringify(reg.body)).toBe(0);
      const start = await stack.request('POST', '/v1/push/start', {
        roomId: 7001,
        userId: 'enc1',
        srcType: 0,
        option: { encode: 3 },
      });
      expect(start.body.code, JSON.stringify(start.body)).toBe(0);
      const flvUrl = start.body.urls.find((u: { type: number }) => u.type === 2).playUrl;
      const flv = await readFlv(flvUrl, { stopWhen: (s) => s.keyframe && s.aacFrames > 0 });
      expect(flv.summary).toMatchObject({ status: 200, avcSequenceHeader: true, aacSequenceHeader: true });
      const got = await decode(flvUrl, { frames: 25 });
      expect(got).toMatchObject({ videoCodec: 'h264', width: 640, height: 360, audioCodec: 'aac' });
      const hlsUrl = start.body.urls.find((u: { type: number }) => u.type === 1).playUrl;
      await eventually(async () => /#EXTINF/.test(await (await fetch(hlsUrl)).text()), 10000);
      const stop = await stack.request('POST', '/v1/push/stop', { channelIds: [start.body.channelId] });
      expect(stop.body.results[0].code).toBe(0);
    },
  );

  it.skipIf(!adtsIntoFlv)(
    'an HLS upstream carrying AAC (ADTS) is copied into FLV: AAC frames, and it decodes',
    async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-hls-aac-'));
      const origin = http.createServer((req, res) => {
        const file = path.join(dir, path.basename(req.url ?? ''));
        if (!fs.existsSync(file)) return void res.writeHead(404).end();
        res.writeHead(200).end(fs.readFileSync(file));
      });
      try {
        execFileSync(FFMPEG, [
          ...['-hide_banner', '-loglevel', 'error', '-i', fixture('alice-camera.mp4'), '-c', 'copy'],
          ...['-f', 'hls', '-hls_time', '2', '-hls_list_size', '0', path.join(dir, 'index.m3u8')],
        ]);
        await new Promise<void>((r) => origin.listen(0, '127.0.0.1', () => r()));
        const url = `http://127.0.0.1:${(origin.address() as AddressInfo).port}/index.m3u8`;
        expect(
          (await stack.request('PUT', '/v1/rooms/7003/upstreams', { userId: 'hls', srcType: 0, url })).body.code,
        ).toBe(0);
        const start = await stack.request('POST', '/v1/push/start', {
          roomId: 7003,
          userId: 'hls',
          srcType: 0,
          option: { encode: 2 },
        });
        expect(start.body.code, JSON.stringify(start.body)).toBe(0);
        const flvUrl = start.body.urls[0].playUrl as string;
        const flv = await readFlv(flvUrl, { stopWhen: (s) => s.keyframe && s.aacFrames > 2 });
        expect(flv.summary.aacSequenceHeader).toBe(true);
        expect(await decode(flvUrl, { frames: 10 })).toMatchObject({ videoCodec: 'h264', audioCodec: 'aac' });
        await stack.request('POST', '/v1/push/stop', { channelIds: [start.body.channelId] });
      } finally {
        origin.close();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  it.skipIf(!srtHere)(
    'an srt host on an internal network not allowed by RELAY_UPSTREAM_ALLOW is refused with 50002',
    async () => {
      const r = await stack.request('PUT', '/v1/rooms/7001/upstreams', {
        userId: 'enc2',
        srcType: 0,
        url: 'srt://10.20.30.40:9000?mode=caller',
      });
      expect(r.status).toBe(400);
      expect(r.body).toMatchObject({ code: 50002, hint: expect.stringContaining('RELAY_UPSTREAM_ALLOW') });
    },
  );
});

describe.skipIf(!srtHere || !bundledLacksSrt)('a worker whose ffmpeg has no SRT (the bundled 4.1)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ workers: 0 });
    await stack.startWorker({ FFMPEG_PATH: bundled! });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('says at start-up which ffmpeg it runs and that srt:// upstreams are off', () => {
    const worker = stack.procs.find((p) => p.name.startsWith('worker'))!.output.join('\n');
    expect(worker).toMatch(/using ffmpeg 4\.1 \(N-\d+[^)]*, FFMPEG_PATH\) at \S+, no ffprobe beside it/);
    expect(worker).toMatch(/ffmpeg lacks the srt protocol → disabled: srt:\/\/ upstreams/);
    const api = stack.procs.find((p) => p.name === 'api')!.output.join('\n');
    expect(api).toMatch(/using ffmpeg \d+\.\d+ /);
  });

  it("refuses an srt:// start with 50008 quoting ffmpeg's 'Protocol not found', in the answer and the log", async () => {
    const url = 'srt://127.0.0.1:9?mode=caller'; // the API's ffmpeg has SRT: registration passes
    const reg = await stack.request('PUT', '/v1/rooms/7002/upstreams', { userId: 'enc1', srcType: 0, url });
    expect(reg.body.code, JSON.stringify(reg.body)).toBe(0);
    const r = await stack.request('POST', '/v1/push/start', {
      roomId: 7002,
      userId: 'enc1',
      srcType: 0,
      option: { encode: 2 },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(501);
    expect(r.body.code).toBe(50008);
    // an srt URL is quoted as its origin: its query may hold a passphrase or a streamid
    expect(r.body.message).toMatch(/srt:\/\/127\.0\.0\.1:9: Protocol not found/);
    expect(r.body.hint).not.toMatch(/retry/);
    const worker = stack.procs.find((p) => p.name.startsWith('worker'))!;
    await eventually(async () => worker.output.some((l) => l.includes('"reason":"srt:')), 3000);
    expect(worker.output.join('\n')).toMatch(/"reason":"srt:\/\/127\.0\.0\.1:9: Protocol not found"/);
    expect(worker.output.join('\n')).not.toContain('mode=caller');
  });
});

describe.skipIf(srtHere)('a relay whose ffmpeg has no SRT (runs when the chosen ffmpeg lacks it)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('refuses an srt:// upstream at registration with 50008 naming the srt protocol, and registers nothing', async () => {
    const url = 'srt://127.0.0.1:9000?mode=caller';
    const r = await stack.request('PUT', '/v1/rooms/7004/upstreams', { userId: 'enc1', srcType: 0, url });
    expect(r.status).toBe(501);
    expect(r.body).toMatchObject({ code: 50008, message: expect.stringMatching(/need the srt protocol/) });
    expect((await stack.request('GET', '/v1/rooms/7004')).body.code).toBe(40000410);
  });
});
