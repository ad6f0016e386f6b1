/**
 * HLS as a validator sees it (RFC 8216), on a three-tier channel of an ingest member: the master playlist answers
 * at once after the start answer and its CODECS, RESOLUTION and BANDWIDTH are the streams' (ffprobe's profile and
 * level of every segment, the highest segment bit rate); each EXTINF is the segment's real duration; every segment
 * carries EXT-X-PROGRAM-DATE-TIME, in step with the durations; a fresh playlist has no EXT-X-DISCONTINUITY. Needs an
 * ffprobe beside the chosen ffmpeg (the bundled 4.1 has none: skipped, saying so).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ffprobeBeside } from '../../src/media/ffmpeg/locate.js';
import { mediaSegments } from '../../src/media/hls-master.js';
import { decode, fetchText } from '../helpers/media.js';
import { FFMPEG, fixture, sleep, startStack, type Stack } from '../helpers/stack.js';

const FFPROBE = ffprobeBeside(FFMPEG);
const run = promisify(execFile);
/** H.264 profile names as ffprobe prints them → profile_idc (H.264 A.2). */
const PROFILE_IDC: Record<string, number> = {
  Baseline: 66,
  'Constrained Baseline': 66,
  Main: 77,
  Extended: 88,
  High: 100,
  'High 10': 110,
  'High 4:2:2': 122,
  'High 4:4:4 Predictive': 244,
};

let stack: Stack;
let urls: { type: number; playUrl: string; rateType: number | null }[];
const atAnswer: Record<string, { status: number; text: string }> = {};
let tmp: string;

describe.skipIf(!FFPROBE)('HLS conformance (RFC 8216)', () => {
  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hls-conf-'));
    stack = await startStack();
    await stack.publish({ roomId: 1201, userId: 'carol', srcType: 0 }, fixture('alice-camera.mp4'));
    const r = await stack.request('POST', '/v1/push/start', {
      roomId: 1201,
      userId: 'carol',
      srcType: 0,
      option: { encode: 1, rateTypes: [0, 10, 20] },
    });
    expect(r.body.code, JSON.stringify(r.body)).toBe(0);
    urls = r.body.urls;
    // a player opening every playlist at once: the master, then each variant (the media server holds them until
    // they exist)
    const master = urls.find((u) => u.rateType === null)!.playUrl;
    const res = await fetch(master);
    atAnswer.master = { status: res.status, text: await res.text() };
    await Promise.all(
      urls
        .filter((u) => u.type === 1 && u.rateType !== null)
        .map(async (u) => {
          const v = await fetch(u.playUrl);
          atAnswer[`r${u.rateType}`] = { status: v.status, text: await v.text() };
        }),
    );
    await sleep(12_000); // six segments of each tier
  }, 60_000);

  afterAll(async () => {
    await stack?.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('every playlist answers 200 right after the start answer, and the master plays', async () => {
    for (const [name, got] of Object.entries(atAnswer)) {
      expect(got.status, name).toBe(200);
      expect(got.text, name).toMatch(/^#EXTM3U/);
    }
    expect(atAnswer.master!.text.match(/#EXT-X-STREAM-INF/g)).toHaveLength(3);
    const played = await decode(urls.find((u) => u.rateType === null)!.playUrl, { frames: 10 });
    expect(played.videoCodec).toBe('h264');
  });

  it('CODECS, RESOLUTION and BANDWIDTH of the master are those of every segment of each variant', async () => {
    const masterUrl = urls.find((u) => u.rateType === null)!.playUrl;
    const master = (await fetchText(masterUrl))!;
    const inf = [...master.matchAll(/#EXT-X-STREAM-INF:([^\n]+)\n(\S+)/g)];
    expect(inf).toHaveLength(3);
    for (const [, attrs, uri] of inf) {
      const bandwidth = Number(/BANDWIDTH=(\d+)/.exec(attrs!)![1]);
      const [w, h] = /RESOLUTION=(\d+)x(\d+)/.exec(attrs!)!.slice(1).map(Number);
      const [video, audio] = /CODECS="([^"]+)"/.exec(attrs!)![1]!.split(',');
      const variantUrl = new URL(uri!, masterUrl).toString();
      const segments = mediaSegments((await fetchText(variantUrl))!);
      expect(segments.length, uri).toBeGreaterThanOrEqual(3);
      for (const s of segments) {
        const file = path.join(tmp, `${uri!.split('/')[0]}-${s.uri}`);
        const res = await fetch(new URL(s.uri, variantUrl));
        if (res.status === 404) continue; // slid out of the window meanwhile
        fs.writeFileSync(file, Buffer.from(await res.arrayBuffer()));
        const p = await probe(file);
        const where = `${uri} ${s.uri}`;
        expect(p.video.codec_name, where).toBe('h264');
        const idc = PROFILE_IDC[p.video.profile!]!;
        expect(video, where).toMatch(new RegExp(`^avc1\\.${hex(idc)}[0-9a-f]{2}${hex(p.video.level!)}$`));
        expect([p.video.width, p.video.height], where).toEqual([w, h]);
        expect(p.audio?.codec_name, where).toBe('aac');
        expect(p.audio?.profile, where).toBe('LC');
        expect(audio, where).toBe('mp4a.40.2');
        // RFC 8216 4.3.4.2: BANDWIDTH is at least every segment's bit rate
        expect((fs.statSync(file).size * 8) / s.seconds, where).toBeLessThanOrEqual(bandwidth);
        // EXTINF is the segment's duration (its video, to within a frame)
        expect(Math.abs(Number(p.video.duration) - s.seconds), where).toBeLessThan(0.04);
      }
    }
  });

  it('every segment carries PROGRAM-DATE-TIME in step with the durations, and a fresh playlist no DISCONTINUITY', async () => {
    for (const u of urls.filter((x) => x.type === 1 && x.rateType !== null)) {
      const text = (await fetchText(u.playUrl))!;
      expect(text, `r${u.rateType}`).not.toContain('#EXT-X-DISCONTINUITY');
      expect(atAnswer[`r${u.rateType}`]!.text).not.toContain('#EXT-X-DISCONTINUITY');
      const blocks = text.split(/\n(?=#EXTINF)/).filter((b) => b.startsWith('#EXTINF'));
      const dated = blocks.map((b) => ({
        seconds: parseFloat(b.slice(8)),
        at: Date.parse(/#EXT-X-PROGRAM-DATE-TIME:(\S+)/.exec(b)?.[1]?.replace(/([+-]\d\d)(\d\d)$/, '$1:$2') ?? ''),
      }));
      expect(dated.length).toBeGreaterThanOrEqual(3);
      for (const d of dated) expect(Number.isFinite(d.at), `r${u.rateType}: ${text}`).toBe(true);
      for (let i = 1; i < dated.length; i++)
        expect(Math.abs(dated[i]!.at - dated[i - 1]!.at - dated[i - 1]!.seconds * 1000)).toBeLessThan(100);
      // the wall clock of the media: the newest segment began within a few segments of now
      expect(Math.abs(Date.now() - dated.at(-1)!.at)).toBeLessThan(15_000);
    }
  });
});

const hex = (n: number) => n.toString(16).padStart(2, '0');

interface ProbedStream {
  codec_name?: string;
  profile?: string;
  level?: number;
  width?: number;
  height?: number;
  duration?: string;
}

async function probe(file: string): Promise<{ video: ProbedStream; audio?: ProbedStream }> {
  const { stdout } = await run(FFPROBE!, [
    ...['-v', 'error', '-show_entries', 'stream=codec_type,codec_name,profile,level,width,height,duration'],
    ...['-of', 'json', file],
  ]);
  const streams = (JSON.parse(stdout) as { streams: (ProbedStream & { codec_type: string })[] }).streams;
  return {
    video: streams.find((s) => s.codec_type === 'video')!,
    audio: streams.find((s) => s.codec_type === 'audio'),
  };
}
