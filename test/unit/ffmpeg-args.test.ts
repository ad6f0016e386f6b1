import { describe, expect, it } from 'vitest';
import {
  buildRelayArgs,
  filterGraph,
  inputArgs,
  sinkOutputArgs,
  teeSlave,
  tierOutputArgs,
  type Sink,
} from '../../src/media/ffmpeg/args.js';
import { classifyStartFailure, parseInputVideo } from '../../src/media/ffmpeg/process.js';

describe('ffmpeg argument builders', () => {
  it('a network input is bounded by -rw_timeout, probes briefly and opens only whitelisted protocols', () => {
    expect(
      inputArgs({ member: 'a/camera', url: 'rtmp://h/ingest/x', protocolWhitelist: 'rtmp,tcp', readTimeoutMs: 3000 }),
    ).toEqual([
      '-protocol_whitelist',
      'rtmp,tcp',
      '-rw_timeout',
      '3000000',
      '-analyzeduration',
      '1000000',
      '-probesize',
      '1000000',
      '-i',
      'rtmp://h/ingest/x',
    ]);
  });

  it("the relay's own ingest is probed briefly: it sends codec headers and its GOP cache at once", () => {
    const args = inputArgs({
      member: 'a/camera',
      url: 'rtmp://h/ingest/x',
      protocolWhitelist: 'rtmp,tcp',
      fastProbe: true,
    });
    expect(args[args.indexOf('-analyzeduration') + 1]).toBe('200000');
  });

  it('a file input is replayed in a loop at native rate, without a network timeout', () => {
    const args = inputArgs({ member: 'a/camera', url: '/f/a.mp4', protocolWhitelist: 'file', loopFile: true });
    expect(args).toContain('-re');
    expect(args.join(' ')).toContain('-stream_loop -1');
    expect(args).not.toContain('-rw_timeout');
  });

  const rtmp = { kind: 'rtmp', url: 'rtmp://m/live/ch' } as const;
  const hls = { kind: 'hls', dir: '/d/ch', segmentSeconds: 2, listSize: 6 } as const;
  const enc = { maxHeight: 360, videoKbps: 486, audioKbps: 64, keyframeSeconds: 2 };

  it('a copied tier sends the first video and optional first audio track to each sink, unencoded', () => {
    expect(tierOutputArgs({ sinks: [rtmp] }, null)).toEqual([
      '-map',
      '0:v:0',
      '-map',
      '0:a:0?',
      '-c',
      'copy',
      '-f',
      'flv',
      'rtmp://m/live/ch',
    ]);
  });

  it('HLS is a sliding window of 2 s segments, dated, that never writes ENDLIST itself', () => {
    const args = sinkOutputArgs(hls);
    const at = (flag: string) => args[args.indexOf(flag) + 1];
    expect(at('-f')).toBe('hls');
    expect(at('-hls_time')).toBe('2');
    expect(at('-hls_list_size')).toBe('6');
    expect(at('-hls_flags')!.split('+').sort()).toEqual([
      'delete_segments',
      'omit_endlist',
      'program_date_time',
      'temp_file',
    ]);
    expect(at('-hls_segment_filename')).toBe('/d/ch/seg_%06d.ts');
    expect(args.at(-1)).toBe('/d/ch/index.m3u8');
  });

  it('an existing playlist is continued (numbering goes on behind a discontinuity); a fresh one is not', () => {
    const flags = (s: Sink) => {
      const args = sinkOutputArgs(s);
      return args[args.indexOf('-hls_flags') + 1]!.split('+');
    };
    expect(flags({ ...hls, append: true })).toContain('append_list');
    expect(flags(hls)).not.toContain('append_list');
    const rec = { kind: 'record-hls', dir: '/r/x', segmentSeconds: 2 } as const;
    expect(flags(rec).sort()).toEqual(['omit_endlist', 'program_date_time']);
    expect(flags({ ...rec, append: true })).toContain('append_list');
  });

  it('a recording is cut at its maximum length into fragmented MP4 named by start time, each fragment written at once', () => {
    const sink = { kind: 'record', format: 'mp4', pattern: '/r/ch_1_7_%Y%m%d-%H%M%S', maxSeconds: 5400 } as const;
    // the inner mp4 options' ':' is escaped twice in tee's form (tee unescapes once for the slave, once per option)
    expect(teeSlave(sink)).toBe(
      '[f=segment:segment_time=5400:segment_format=mp4:segment_format_options=movflags=+frag_keyframe+empty_moov+default_base_moof\\\\:flush_packets=1:reset_timestamps=1:strftime=1]/r/ch_1_7_%Y%m%d-%H%M%S.mp4',
    );
    const plain = sinkOutputArgs(sink);
    expect(plain[plain.indexOf('-segment_format_options') + 1]).toBe(
      'movflags=+frag_keyframe+empty_moov+default_base_moof:flush_packets=1',
    );
  });

  it('an encoded tier is encoded once for live (x264, keyframes on segment boundaries, AAC) and teed to its sinks', () => {
    const args = tierOutputArgs({ encode: enc, sinks: [rtmp, hls] }, '[v1]');
    const at = (flag: string) => args[args.indexOf(flag) + 1];
    expect(args.slice(0, 4)).toEqual(['-map', '[v1]', '-map', '0:a:0?']);
    expect(at('-c:v')).toBe('libx264');
    expect(at('-b:v')).toBe('486k');
    expect(at('-force_key_frames')).toBe('expr:gte(t,n_forced*2)');
    expect(at('-c:a')).toBe('aac');
    expect(at('-f')).toBe('tee');
    expect(args.at(-1)).toBe(`[f=flv]rtmp://m/live/ch|${teeSlave(hls)}`);
  });

  it('one decode feeds every encoded tier through split, each scaled to its height but never up; copies stay out of the graph', () => {
    const { graph, labels } = filterGraph({
      sources: [{ member: 'a/camera', url: 'i', protocolWhitelist: 'file' }],
      tiers: [{ sinks: [rtmp] }, { encode: enc, sinks: [rtmp] }, { encode: { ...enc, maxHeight: 540 }, sinks: [rtmp] }],
    });
    expect(labels).toEqual([null, '[v1]', '[v2]']);
    expect(graph).toBe(
      "[0:v:0]split=2[s1][s2];[s1]scale=-2:'trunc(min(360,ih)/2)*2':flags=bicubic,setsar=1,format=yuv420p[v1];[s2]scale=-2:'trunc(min(540,ih)/2)*2':flags=bicubic,setsar=1,format=yuv420p[v2]",
    );
  });

  it('a watermark is scaled to a fraction of the video width and overlaid before the split, in its corner', () => {
    const plan = {
      sources: [{ member: 'a/camera', url: 'i', protocolWhitelist: 'file' }],
      watermark: { file: '/w/1.png', relativeWidth: 0.15, aspect: 0.5, corner: 'bottom-left' as const, margin: 0.02 },
      tiers: [{ encode: { videoKbps: 2000, audioKbps: 128, keyframeSeconds: 2 }, sinks: [rtmp] }],
    };
    const { graph } = filterGraph(plan);
    expect(graph).toContain("scale2ref=w='trunc(iw*0.15/2)*2':h='trunc(ow*0.5/2)*2'");
    expect(graph).toContain("overlay=x='W*0.02':y='H-h-W*0.02'");
    expect(graph).toContain('[wmd]null[s0]');
    const args = buildRelayArgs(plan);
    expect(args.slice(args.indexOf('-i') + 2, args.indexOf('-i') + 4)).toEqual(['-i', '/w/1.png']);
    expect(() => buildRelayArgs({ ...plan, tiers: [{ sinks: [rtmp] }] })).toThrow(/watermark/);
  });

  it('the relay command reports progress on stdout, stream info once, and puts the outputs after the inputs', () => {
    const args = buildRelayArgs({
      sources: [{ member: 'a/camera', url: 'in', protocolWhitelist: 'file' }],
      tiers: [{ sinks: [rtmp, hls] }],
    });
    expect(args.slice(0, 7)).toEqual([
      '-hide_banner',
      '-nostdin',
      '-loglevel',
      'info',
      '-nostats',
      '-progress',
      'pipe:1',
    ]);
    expect(args.indexOf('-i')).toBeLessThan(args.indexOf('rtmp://m/live/ch'));
    expect(args.indexOf('rtmp://m/live/ch')).toBeLessThan(args.indexOf('/d/ch/index.m3u8'));
    expect(() =>
      buildRelayArgs({ sources: [{ member: 'a/camera', url: 'in', protocolWhitelist: 'file' }], tiers: [] }),
    ).toThrow(/output/);
  });

  it('a plan names its sources: one is read (the watermark image comes after it); several (a mix) are refused by this builder', () => {
    const src = { member: 'a/camera', url: 'in', protocolWhitelist: 'file' };
    const args = buildRelayArgs({
      sources: [src],
      watermark: { file: '/w/1.png', relativeWidth: 0.1, aspect: 1, corner: 'top-left', margin: 0 },
      tiers: [{ encode: { videoKbps: 900, audioKbps: 64, keyframeSeconds: 2 }, sinks: [rtmp] }],
    });
    expect(args.filter((a) => a === '-i')).toHaveLength(2);
    expect(args[args.indexOf('-i') + 1]).toBe('in');
    expect(args[args.indexOf('-filter_complex') + 1]).toMatch(/^\[1:v\]\[0:v:0\]scale2ref/);
    expect(() =>
      buildRelayArgs({ sources: [src, { ...src, member: 'b/camera' }], tiers: [{ sinks: [rtmp] }] }),
    ).toThrow(/one source/);
  });
});

describe('start failure classification from ffmpeg stderr', () => {
  it.each([
    [["Stream map '0:v:0' matches no streams."], 'no-video'],
    [["Stream specifier ':v:0' in filtergraph description [0:v:0]null[v] matches no streams."], 'no-video'],
    [['/x/not-media.mp4: Invalid data found when processing input'], 'invalid'],
    [['moov atom not found'], 'invalid'],
    [['srt://h:9?mode=caller: Protocol not found', 'Did you mean file:srt://h:9?mode=caller?'], 'unsupported'],
    [['[flv @ 0x183d24c0] Video codec vp8 not compatible with flv'], 'unsupported'],
    [['rtmp://h/x: Input/output error'], 'unreadable'],
    [['something else'], 'exited'],
  ])('%j → %s', (lines, kind) => {
    expect(classifyStartFailure(lines)).toBe(kind);
  });
});

describe('input stream report', () => {
  it('gives the upstream video codec, profile and size', () => {
    expect(
      parseInputVideo(
        '    Stream #0:0(und): Video: h264 (High) (avc1 / 0x31637661), yuv420p, 1280x720 [SAR 1:1 DAR 16:9], 810 kb/s, 30 fps',
      ),
    ).toEqual({ codec: 'h264', profile: 'High', width: 1280, height: 720 });
    expect(
      parseInputVideo('    Stream #0:1: Video: h264 (Constrained Baseline), yuv420p(progressive), 640x360, 30 fps'),
    ).toEqual({ codec: 'h264', profile: 'Constrained Baseline', width: 640, height: 360 });
    expect(parseInputVideo('    Stream #0:1(und): Audio: aac (LC), 48000 Hz, stereo')).toBeNull();
  });

  it('reads ffmpeg 5.1 words too (stream ids in brackets, two-space indent)', () => {
    expect(
      parseInputVideo(
        '  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(progressive), 1280x720 [SAR 1:1 DAR 16:9], 1511 kb/s, 30 fps, 30 tbr, 15360 tbn (default)',
      ),
    ).toEqual({ codec: 'h264', profile: 'High', width: 1280, height: 720 });
    expect(
      parseInputVideo('  Stream #0:1[0x101]: Video: hevc (Main) ([36][0][0][0] / 0x0024), yuv420p(tv), 640x360'),
    ).toEqual({ codec: 'hevc', profile: 'Main', width: 640, height: 360 });
  });
});
