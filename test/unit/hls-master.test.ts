/**
 * The master playlist from the streams (RFC 8216 4.3.4.2): `probeSegment` reads CODECS and RESOLUTION from a TS
 * segment's bytes (H.264 SPS, ADTS / MPEG audio), and `MasterPlaylistWriter` declares BANDWIDTH at least the highest
 * segment bit rate it measured. The segments in test/unit/segments were made by ffmpeg (libx264, aac, libmp3lame).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { probeSegment, spsSize } from '../../src/media/ts-probe.js';
import { BANDWIDTH_HEADROOM, MasterPlaylistWriter, mediaSegments } from '../../src/media/hls-master.js';

const data = (f: string) => fs.readFileSync(path.join(import.meta.dirname, 'segments', f));

describe('probeSegment', () => {
  it('reads profile, constraint flags, level and the cropped size from the SPS, and AAC-LC from ADTS', () => {
    // x264 -profile:v main -level:v 1.3 at 66x38: coded 80x48, cropped
    expect(probeSegment(data('main-66x38-aac.m2t'))).toEqual({
      video: 'avc1.4d400d',
      width: 66,
      height: 38,
      audio: 'mp4a.40.2',
    });
  });

  it('reads a High profile portrait picture and MP3 audio (stream type 0x03/0x04: mp4a.40.34)', () => {
    expect(probeSegment(data('high-48x80-mp3.m2t'))).toEqual({
      video: 'avc1.64000a',
      width: 48,
      height: 80,
      audio: 'mp4a.40.34',
    });
  });

  it('says null for what is not there, and never throws on garbage or a cut segment', () => {
    expect(probeSegment(Buffer.alloc(0))).toEqual({ video: null, audio: null });
    expect(probeSegment(Buffer.from('#EXTM3U\n'.repeat(100)))).toEqual({ video: null, audio: null });
    const cut = data('main-66x38-aac.m2t').subarray(0, 188 * 3);
    expect(() => probeSegment(cut)).not.toThrow();
    const noise = Buffer.alloc(188 * 50, 0x47);
    expect(() => probeSegment(noise)).not.toThrow();
  });

  it('spsSize reads a 1920x1080 High SPS (coded 1088 lines, 8 cropped) and refuses a truncated one', () => {
    // x264 -level:v 4.2, emulation prevention bytes (00 00 03) removed
    const sps = Buffer.from('6764002aacd940780227e5c04400000004000000f03c60c658', 'hex');
    expect(spsSize(sps)).toEqual({ width: 1920, height: 1080 });
    expect(spsSize(sps.subarray(0, 5))).toBeNull();
  });
});

describe('mediaSegments', () => {
  it('pairs each URI with its EXTINF, skipping tags between them', () => {
    const text =
      '#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.000000,\n#EXT-X-PROGRAM-DATE-TIME:2026-11-29T00:00:00.000+0000\nseg_1.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:1.5,\nseg_2.ts\n';
    expect(mediaSegments(text)).toEqual([
      { uri: 'seg_1.ts', seconds: 2 },
      { uri: 'seg_2.ts', seconds: 1.5 },
    ]);
  });
});

describe('MasterPlaylistWriter', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });
  const logger = pino({ level: 'silent' });
  const forecast = (uri: string, bandwidth: number) => ({
    uri,
    bandwidth,
    width: 1280,
    height: 720,
    codecs: 'avc1.640028,mp4a.40.2',
  });
  const until = async (cond: () => boolean) => {
    for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  };

  function channel(): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'master-'));
    dirs.push(dir);
    for (const r of ['r0', 'r10']) fs.mkdirSync(path.join(dir, r));
    return dir;
  }
  function segment(dir: string, variant: string, name: string, file: string, seconds: number): number {
    const bytes = data(file);
    fs.writeFileSync(path.join(dir, variant, name), bytes);
    const listed = fs.existsSync(path.join(dir, variant, 'index.m3u8'))
      ? fs.readFileSync(path.join(dir, variant, 'index.m3u8'), 'utf8')
      : '#EXTM3U\n#EXT-X-TARGETDURATION:2\n';
    fs.writeFileSync(path.join(dir, variant, 'index.m3u8'), `${listed}#EXTINF:${seconds},\n${name}\n`);
    return (bytes.length * 8) / seconds;
  }

  it('waits for every variant, then writes what the segments are, and raises BANDWIDTH past a larger segment', async () => {
    const dir = channel();
    const file = path.join(dir, 'index.m3u8');
    const w = new MasterPlaylistWriter(
      file,
      [
        { forecast: forecast('r0/index.m3u8', 3_000_000), capped: false },
        { forecast: forecast('r10/index.m3u8', 1_000), capped: true },
      ],
      { pollMs: 10, deadlineMs: 60_000, logger },
    );
    w.start();
    try {
      const r0 = segment(dir, 'r0', 'seg_0.ts', 'high-48x80-mp3.m2t', 2);
      await new Promise((r) => setTimeout(r, 100));
      expect(fs.existsSync(file)).toBe(false); // r10 has no segment yet
      segment(dir, 'r10', 'seg_0.ts', 'main-66x38-aac.m2t', 2);
      await until(() => fs.existsSync(file));
      const text = fs.readFileSync(file, 'utf8');
      // copied r0: measured, not the forecast; r10 is capped: its forecast is a floor (1 000 < what it measures)
      expect(text).toContain(
        `#EXT-X-STREAM-INF:BANDWIDTH=${Math.ceil(r0 * BANDWIDTH_HEADROOM)},RESOLUTION=48x80,CODECS="avc1.64000a,mp4a.40.34"\nr0/index.m3u8`,
      );
      expect(text).toMatch(/BANDWIDTH=\d+,RESOLUTION=66x38,CODECS="avc1.4d400d,mp4a.40.2"\nr10\/index.m3u8/);
      // a segment at 4x the rate: declared again above it
      const peak = segment(dir, 'r0', 'seg_1.ts', 'high-48x80-mp3.m2t', 0.5);
      await until(() => fs.readFileSync(file, 'utf8') !== text);
      expect(fs.readFileSync(file, 'utf8')).toContain(
        `BANDWIDTH=${Math.ceil(peak * BANDWIDTH_HEADROOM)},RESOLUTION=48x80`,
      );
    } finally {
      await w.stop();
    }
  });

  it('finds the audio of a segment whose first audio packet comes after a large keyframe (past 128 KiB)', async () => {
    const dir = channel();
    const file = path.join(dir, 'index.m3u8');
    const ts = data('main-66x38-aac.m2t');
    // 1 000 null packets (PID 0x1FFF, 188 KB) after the first three packets: the audio now starts past 128 KiB
    const nul = Buffer.alloc(188, 0xff);
    nul.set([0x47, 0x1f, 0xff, 0x10]);
    const padded = Buffer.concat([
      ts.subarray(0, 188 * 3),
      ...Array.from({ length: 1000 }, () => nul),
      ts.subarray(188 * 3),
    ]);
    fs.writeFileSync(path.join(dir, 'r0', 'seg_0.ts'), padded);
    fs.writeFileSync(path.join(dir, 'r0', 'index.m3u8'), '#EXTM3U\n#EXTINF:2,\nseg_0.ts\n');
    const w = new MasterPlaylistWriter(file, [{ forecast: forecast('r0/index.m3u8', 1), capped: false }], {
      pollMs: 10,
      deadlineMs: 60_000,
      logger,
    });
    w.start();
    try {
      await until(() => fs.existsSync(file));
      expect(fs.readFileSync(file, 'utf8')).toContain('CODECS="avc1.4d400d,mp4a.40.2"');
    } finally {
      await w.stop();
    }
  });

  it('writes the forecast of a variant without segments at the deadline', async () => {
    const dir = channel();
    const file = path.join(dir, 'index.m3u8');
    const w = new MasterPlaylistWriter(file, [{ forecast: forecast('r0/index.m3u8', 2_000_000), capped: false }], {
      pollMs: 10,
      deadlineMs: 50,
      logger,
    });
    w.start();
    try {
      await until(() => fs.existsSync(file));
      expect(fs.readFileSync(file, 'utf8')).toContain(
        'BANDWIDTH=2000000,RESOLUTION=1280x720,CODECS="avc1.640028,mp4a.40.2"',
      );
    } finally {
      await w.stop();
    }
  });
});
