import { describe, expect, it } from 'vitest';
import { buildRelayArgs, type RelayPlan } from '../../src/media/ffmpeg/args.js';
import { clockFaultArgs, inputArgs, isFlvUrl, type SourceSpec } from '../../src/media/ffmpeg/input.js';

const ext = (url: string, more: Partial<SourceSpec> = {}): SourceSpec => ({
  member: 'u/camera',
  url,
  protocolWhitelist: 'file,rtmp,tcp,http',
  untrustedClock: true,
  ...more,
});

describe('untrusted upstream clocks (README "Timing policy")', () => {
  it('an external upstream makes ffmpeg rebase clock steps over 1 s; the ingest alone does not', () => {
    expect(clockFaultArgs([ext('/up/a.flv')])).toEqual(['-dts_delta_threshold', '1']);
    expect(clockFaultArgs([{ ...ext('rtmp://127.0.0.1/ingest/x'), untrustedClock: false }])).toEqual([]);
    const plan: RelayPlan = {
      sources: [ext('/up/a.ts')],
      tiers: [{ sinks: [{ kind: 'rtmp', url: 'rtmp://h/live/c' }] }],
    };
    const args = buildRelayArgs(plan);
    expect(args.indexOf('-dts_delta_threshold')).toBeGreaterThan(-1);
    expect(args.indexOf('-dts_delta_threshold')).toBeLessThan(args.indexOf('-i'));
  });

  it('FLV inputs (RTMP, .flv paths and URLs) are read as live_flv, which declares discontinuous timestamps', () => {
    for (const u of ['rtmp://cam/live/a', 'rtmps://cam/live/a', '/up/a.flv', 'http://cdn/a.FLV?t=1'])
      expect(isFlvUrl(u), u).toBe(true);
    for (const u of ['/up/a.mp4', 'srt://cam:9000', 'http://cdn/a.m3u8', 'rtsp://cam/a'])
      expect(isFlvUrl(u), u).toBe(false);
    const args = inputArgs(ext('rtmp://cam/live/a'));
    expect(args.slice(args.indexOf('-f'), args.indexOf('-f') + 2)).toEqual(['-f', 'live_flv']);
    expect(args.indexOf('-f')).toBeLessThan(args.indexOf('-i'));
    expect(inputArgs(ext('/up/a.mp4'))).not.toContain('live_flv');
    expect(inputArgs({ ...ext('rtmp://127.0.0.1/ingest/x'), untrustedClock: false })).not.toContain('live_flv');
    expect(inputArgs(ext('http://g/http/cdn/a.flv', { hls: {} }))).not.toContain('live_flv');
  });
});
