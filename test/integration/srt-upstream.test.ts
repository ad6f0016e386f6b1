/**
 * SRT upstreams and the ffmpeg that reads them: with an ffmpeg that has SRT (Debian's 5.1) an srt:// caller upstream
 * relays to FLV and HLS; its host passes the egress policy like any URL's; a worker whose ffmpeg lacks SRT (the bundled
 * 4.1) refuses the start with 50008 quoting ffmpeg, and says at start-up which ffmpeg it runs and what it lacks.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeCapabilities } from '../../src/media/ffmpeg/capabilities.js';
import { bundledFfmpeg } from '../../src/media/ffmpeg/locate.js';
import { freePorts } from '../../src/dev/redis.js';
import { decode, readFlv } from '../helpers/media.js';
import { eventually, FFMPEG, startStack, type Stack } from '../helpers/stack.js';

const srtHere = (await probeCapabilities(FFMPEG))?.protocols.input.has('srt') ?? false;
const bundled = bundledFfmpeg();
const bundledLacksSrt = bundled !== null && (await probeCapabilities(bundled))?.protocols.input.has('srt') === false;
if (!srtHere) console.log(`SKIP SRT relay tests: ${FFMPEG} has no srt protocol (apt-get install -y ffmpeg)`);
if (!bundledLacksSrt) console.log('SKIP the 4.1-worker test: no bundled ffmpeg without SRT (@ffmpeg-installer/ffmpeg)');

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

describe.skipIf(!srtHere)('an srt:// upstream with an ffmpeg that has SRT', () => {
  let stack: Stack;
  let listener: ChildProcess | undefined;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stopProcess(listener);
    await stack?.close();
  });

  it('registers as a caller, starts, and relays: FLV with a keyframe and AAC, decoding at 640x360 H.264 + AAC', async () => {
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
  });

  it('an srt host on an internal network not allowed by RELAY_UPSTREAM_ALLOW is refused with 50002', async () => {
    const r = await stack.request('PUT', '/v1/rooms/7001/upstreams', {
      userId: 'enc2',
      srcType: 0,
      url: 'srt://10.20.30.40:9000?mode=caller',
    });
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ code: 50002, hint: expect.stringContaining('RELAY_UPSTREAM_ALLOW') });
  });
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
    expect(r.body.message).toMatch(/srt:\/\/127\.0\.0\.1:9\?mode=caller: Protocol not found/);
    expect(r.body.hint).not.toMatch(/retry/);
    const worker = stack.procs.find((p) => p.name.startsWith('worker'))!;
    await eventually(async () => worker.output.some((l) => l.includes('"reason":"srt:')), 3000);
    expect(worker.output.join('\n')).toMatch(/"reason":"srt:\/\/127\.0\.0\.1:9\?mode=caller: Protocol not found"/);
  });
});
