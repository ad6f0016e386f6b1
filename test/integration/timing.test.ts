/**
 * Untrusted upstream timing (README "Timing policy"): upstreams whose clock jumps forward, steps back, restarts at 0
 * or has a gap, relayed as an ingest member (an ffmpeg publishing in real time, the fault made on the wire by the
 * setts bitstream filter; a step back is a forward step that wraps FLV's 31-bit clock) and as a file upstream, each
 * with ORIGINAL (copied) and with a tier (encoded). Their outputs, decoded: HTTP-FLV timestamps move forward by less
 * than a second per packet, every HLS segment lasts at most its target + 1 s and together they last about as long as
 * the run, and so does the recording. Rows run together (about 25 s); skipped without setts (ffmpeg < 5).
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeCapabilities } from '../../src/media/ffmpeg/capabilities.js';
import { ingestPublishUrl } from '../../src/rooms/ingest.js';
import { flvTags, fetchText } from '../helpers/media.js';
import { FFMPEG, sleep, startStack, type Stack } from '../helpers/stack.js';

const run = promisify(execFile);
const FFPROBE = path.join(path.dirname(FFMPEG), 'ffprobe');
const hasSetts = (await probeCapabilities(FFMPEG))?.bsfs.has('setts') ?? false;
if (!hasSetts) console.log(`SKIP timing: ${FFMPEG} lacks the setts bitstream filter`);

const SEGMENT_S = 2;
const MEDIA_S = 10;
/** A clock that, from media time 5 s on, reads `ms` further (ms; FLV's clock is 31 bits: 2^31 - 1500 is 1.5 s back). */
const after5 = (ms: number) => `if(gte(TS\\,5/TB)\\,TS+${ms}/TB/1000\\,TS)`;
const FAULTS = {
  'timestamp jump forward': after5(60_000),
  'timestamp jump forward of 2 s': after5(2_000),
  'timestamp restart': after5(2 ** 31 - 5_000),
  'timestamp jump back of 1.5 s': after5(2 ** 31 - 1_500),
  'a gap': null,
} as const;
type Fault = keyof typeof FAULTS;

interface Row {
  fault: Fault;
  via: 'ingest' | 'file';
  rateTypes: (0 | 10)[];
}
const ROWS: Row[] = (Object.keys(FAULTS) as Fault[]).flatMap((fault) =>
  (['ingest', 'file'] as const).flatMap((via) => [0, 10].map((rt) => ({ fault, via, rateTypes: [rt as 0 | 10] }))),
);
const title = (r: Row) => `${r.fault} (${r.via}, ${r.rateTypes[0] === 0 ? 'ORIGINAL copied' : 'tier 550 encoded'})`;

/** Per track, the largest step and whether it went back, of an HTTP-FLV stream read for `ms`; its span. */
function readFlvTimes(url: string, ms: number): Promise<{ maxStep: number; back: number; span: number; tags: number }> {
  return new Promise((resolve) => {
    const last = new Map<number, number>();
    let maxStep = 0;
    let back = 0;
    let first = -1;
    let end = 0;
    let tags = 0;
    const parse = flvTags(({ type, ts, body }) => {
      if ((type !== 8 && type !== 9) || body[1] !== 1) return;
      tags++;
      if (first < 0) first = ts;
      end = Math.max(end, ts);
      const prev = last.get(type);
      if (prev !== undefined) {
        maxStep = Math.max(maxStep, ts - prev);
        if (ts < prev) back++;
      }
      last.set(type, ts);
    });
    const req = http.get(url, (res) => res.on('data', parse));
    req.on('error', () => undefined);
    setTimeout(() => {
      req.destroy();
      resolve({ maxStep, back, span: end - first, tags });
    }, ms);
  });
}

/** Duration of a media file by its packets: last video pts + frame - first. */
async function packetSeconds(file: string): Promise<number> {
  const { stdout } = await run(FFPROBE, [
    ...['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts_time', '-of', 'csv=p=0', file],
  ]);
  const t = stdout.split('\n').filter(Boolean).map(Number);
  return t.length ? Math.max(...t) - Math.min(...t) : 0;
}

function findFiles(dir: string, test: (name: string) => boolean): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => test(path.basename(f)))
    .map((f) => path.join(dir, f));
}

describe.skipIf(!hasSetts)('untrusted upstream timing: outputs stay continuous whatever the clock does', () => {
  let stack: Stack;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-timing-'));
  const clean = path.join(dir, 'clean.flv');
  beforeAll(async () => {
    const ff = (...args: string[]) => execFileSync(FFMPEG, ['-hide_banner', '-loglevel', 'error', '-y', ...args]);
    const lavfi = ['-f', 'lavfi', '-i', `testsrc2=size=320x240:rate=25:duration=${MEDIA_S}`];
    const sine = ['-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=48000:duration=${MEDIA_S}`];
    const enc = ['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-g', '25', '-c:a', 'aac'];
    ff(...lavfi, ...sine, ...enc, clean);
    // a gap: the media of 5 s to 7 s is missing, the clock goes on
    const hole = 'not(between(t,5,7))';
    ff(
      ...lavfi,
      ...sine,
      '-vf',
      `select='${hole}'`,
      '-af',
      `aselect='${hole}'`,
      '-vsync',
      'passthrough',
      ...enc,
      path.join(dir, 'a-gap.flv'),
    );
    for (const [fault, expr] of Object.entries(FAULTS))
      if (expr)
        ff(
          '-i',
          clean,
          '-c',
          'copy',
          '-bsf:v',
          `setts=ts=${expr}`,
          '-bsf:a',
          `setts=ts=${expr}`,
          fileOf(fault as Fault),
        );
    stack = await startStack({
      env: {
        RELAY_FILE_UPSTREAM_DIR: dir,
        RELAY_WORKER_CONCURRENCY: String(ROWS.length),
        RELAY_HLS_SEGMENT_SECONDS: String(SEGMENT_S),
        RELAY_HLS_LIST_SIZE: '30',
      },
    });
  }, 120_000);
  afterAll(async () => {
    await stack?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const fileOf = (f: Fault) => path.join(dir, `${f.replaceAll(' ', '-')}.flv`);

  /** An ingest member publishing 10 s in real time, its clock faulted on the wire; resolves when it ends. */
  function publish(roomId: number, userId: string, fault: Fault): Promise<void> {
    const url = ingestPublishUrl('127.0.0.1', stack.rtmpPort, stack.secretKey, {
      sdkAppId: stack.sdkAppId,
      roomId,
      userId,
      srcType: 0,
    });
    const expr = FAULTS[fault];
    const bsf = expr ? ['-bsf:v', `setts=ts=${expr}`, '-bsf:a', `setts=ts=${expr}`] : [];
    const input = expr ? clean : path.join(dir, 'a-gap.flv');
    const p = spawn(FFMPEG, [
      '-hide_banner',
      '-loglevel',
      'error',
      '-re',
      '-i',
      input,
      '-c',
      'copy',
      ...bsf,
      '-f',
      'flv',
      url,
    ]);
    return new Promise((resolve) => p.once('exit', () => resolve()));
  }

  ROWS.forEach((r, i) =>
    it.concurrent(
      title(r),
      async () => {
        const roomId = 9300 + i;
        const userId = `u${i}`;
        let ended: Promise<void> | null = null;
        if (r.via === 'ingest') {
          ended = publish(roomId, userId, r.fault);
          const field = `${userId}:0`;
          for (let n = 0; n < 100; n++) {
            if (await stack.redis.hexists(`${stack.prefix}:room:${stack.sdkAppId}:${roomId}`, field)) break;
            await sleep(50);
          }
        } else {
          const file = path.basename(FAULTS[r.fault] ? fileOf(r.fault) : path.join(dir, 'a-gap.flv'));
          const reg = await stack.request('PUT', `/v1/rooms/${roomId}/upstreams`, { userId, srcType: 0, url: file });
          expect(reg.body.code, JSON.stringify(reg.body)).toBe(0);
        }
        const started = Date.now();
        const start = await stack.request('POST', '/v1/push/start', {
          roomId,
          userId,
          srcType: 0,
          option: { encode: 3, rateTypes: r.rateTypes, record: true, recordFileType: 4 },
        });
        expect(start.body.code, JSON.stringify(start.body)).toBe(0);
        const { channelId, urls } = start.body as { channelId: string; urls: { type: number; playUrl: string }[] };
        const flvUrl = urls.find((u) => u.type === 2)!.playUrl;
        const hlsUrl = urls.find((u) => u.type === 1)!.playUrl;
        let flv;
        try {
          await sleep(1500);
          flv = await readFlvTimes(flvUrl, 10_000);
          if (ended) await ended;
        } finally {
          await stack.request('POST', '/v1/push/stop', { channelIds: [channelId] });
        }
        const ranS = (Date.now() - started) / 1000;
        const missing = r.fault === 'a gap' ? 2 : 0; // seconds of media the upstream lacks
        console.log(`${title(r)}: FLV ${JSON.stringify(flv)}, ran ${ranS.toFixed(1)} s`);
        expect(flv.tags, 'FLV tags').toBeGreaterThan(100);
        expect(flv.back, 'FLV timestamps going back').toBe(0);
        expect(flv.maxStep, 'largest FLV step (ms)').toBeLessThanOrEqual(1000);
        // 10 s of wall clock carry about 10 s of media (no squeezed or stretched stretch), the gap's excepted
        expect(flv.span / 1000, 'FLV span (s) of a 10 s read').toBeLessThan(12.5); // + the GOP cache (2 s for a tier)
        expect(flv.span / 1000, 'FLV span (s) of a 10 s read').toBeGreaterThan(7.5 - missing);

        const playlist = (await fetchText(hlsUrl)) ?? '';
        const extinf = [...playlist.matchAll(/#EXTINF:([\d.]+)/g)].map((m) => Number(m[1]));
        const sum = extinf.reduce((a, b) => a + b, 0);
        expect(extinf.length, playlist).toBeGreaterThan(2);
        expect(Math.max(...extinf), `longest segment of ${playlist}`).toBeLessThanOrEqual(SEGMENT_S + 1);
        expect(sum, 'HLS sum (s)').toBeLessThanOrEqual(ranS + 1);
        expect(sum, 'HLS sum (s)').toBeGreaterThan(ranS - missing - 4);

        const recs = findFiles(path.join(stack.dataDir, 'records'), (n) => n.includes(channelId) && n.endsWith('.mp4'));
        expect(recs.length, 'recordings').toBeGreaterThan(0);
        const recorded = (await Promise.all(recs.map(packetSeconds))).reduce((a, b) => a + b, 0);
        expect(recorded, 'recording (s)').toBeLessThanOrEqual(ranS + 1);
        expect(recorded, 'recording (s)').toBeGreaterThan(ranS - missing - 4);
        console.log(
          `${title(r)}: ran ${ranS.toFixed(1)} s; FLV span ${flv.span} ms, largest step ${flv.maxStep} ms; ` +
            `HLS ${sum.toFixed(2)} s [${extinf.join(' ')}]; recording ${recorded.toFixed(2)} s`,
        );
      },
      60_000,
    ),
  );
});
