import { describe, expect, it } from 'vitest';
import { normalizeCodec, planTracks, type ChannelTracks, type UpstreamCodecs } from '../../src/channels/tracks.js';
import { originalConversion } from '../../src/channels/tiers.js';
import { channelCost } from '../../src/channels/cost.js';
import { parseReportedCodecs } from '../../src/media/ffmpeg/streams.js';
import { buildRelayArgs, type RelayPlan } from '../../src/media/ffmpeg/args.js';
import { tracksAfterFailure, tracksWhenLive } from '../../src/worker/tracks.js';
import { planFor } from '../../src/worker/plan.js';
import { loadConfig } from '../../src/config/index.js';
import { testChannel } from '../fakes/channels.js';

const modes = (t: ChannelTracks) => [t.video.mode, t.audio?.mode ?? 'none'].join('+');

describe('planTracks: which track ORIGINAL copies and which it converts', () => {
  const rows: [string, UpstreamCodecs, string, string | null][] = [
    ['H.264 + AAC', { video: 'h264', audio: 'aac' }, 'copied+copied', null],
    ['H.264 + MP3', { video: 'h264', audio: 'mp3' }, 'copied+copied', null],
    ['H.264 + Opus (WebRTC)', { video: 'h264', audio: 'opus' }, 'copied+converted', 'opus does not fit'],
    ['VP8 + Opus', { video: 'vp8', audio: 'opus' }, 'converted+converted', 'vp8 does not fit'],
    ['VP9 + Vorbis', { video: 'vp9', audio: 'vorbis' }, 'converted+converted', 'vp9 does not fit'],
    ['HEVC + AAC', { video: 'hevc', audio: 'aac' }, 'converted+converted', 'hevc does not fit'],
    ['AV1 + PCM', { video: 'av1', audio: 'pcm_s16le' }, 'converted+converted', 'av1 does not fit'],
    ['G.711', { video: 'h264', audio: 'pcm_mulaw' }, 'copied+converted', null],
    ['video only: a silent track', { video: 'h264', audio: 'none' }, 'copied+silent', 'no audio'],
    ['rotated H.264', { video: 'h264', audio: 'aac', rotation: -90 }, 'converted+converted', 'rotated -90°'],
    ['upright (360°)', { video: 'h264', audio: 'aac', rotation: 360 }, 'copied+copied', null],
    ['unknown (external URL before ffmpeg ran)', { video: null, audio: null }, 'copied+copied', null],
    ['ingest ids: HEVC (12) + Opus (13)', { video: '12', audio: '13' }, 'converted+converted', 'hevc'],
  ];
  it.each(rows)('%s', (_name, codecs, expected, why) => {
    const t = planTracks(codecs);
    expect(modes(t)).toBe(expected);
    if (why) expect(t.video.why ?? t.audio?.why).toContain(why);
    if (t.video.mode === 'converted') expect(t.video.to).toBe('h264');
    if (t.audio?.mode === 'converted') expect(t.audio.to).toBe('aac');
  });

  it('names codecs as ffmpeg does, from ffmpeg names or FLV ids', () => {
    expect(normalizeCodec('audio', '10')).toBe('aac');
    expect(normalizeCodec('audio', '2')).toBe('mp3');
    expect(normalizeCodec('video', '7')).toBe('h264');
    expect(normalizeCodec('video', 'H265')).toBe('hevc');
    expect(normalizeCodec('audio', null)).toBeNull();
  });
});

describe('originalConversion and the relay command line', () => {
  const vp8 = planTracks({ video: 'vp8', audio: 'aac' });
  const opus = planTracks({ video: 'h264', audio: 'opus' });
  const plan = (t: ChannelTracks): RelayPlan => ({
    sources: [{ member: 'a/camera', url: '/f.webm', protocolWhitelist: 'file' }],
    tiers: [{ sinks: [{ kind: 'rtmp', url: 'rtmp://127.0.0.1/live/x' }], ...originalConversion(t, 2, 1500) }],
  });

  it('converts VP8 video to H.264 at the upstream size and bitrate, with AAC audio', () => {
    const c = originalConversion(vp8, 2, 1500);
    expect(c.encode).toMatchObject({ videoKbps: 1500, keyframeSeconds: 2 });
    expect(c.encode!.maxHeight).toBeUndefined();
    expect(c.audio).toBeUndefined();
    const args = buildRelayArgs(plan(vp8)).join(' ');
    expect(args).toContain('-c:v libx264');
    expect(args).toContain('-c:a aac');
    expect(args).toContain("scale='trunc(iw/2)*2':'trunc(ih/2)*2'"); // the upstream's size, made even
  });

  it('converts Opus audio to AAC beside copied video', () => {
    expect(originalConversion(opus, 2)).toEqual({ audio: 'aac' });
    const args = buildRelayArgs(plan(opus)).join(' ');
    expect(args).toContain('-c:v copy -c:a aac -b:a 128k');
    expect(args).not.toContain('libx264');
  });

  it('copies everything when every track fits, and when nothing is known', () => {
    expect(originalConversion(planTracks({ video: 'h264', audio: 'aac' }), 2)).toEqual({});
    expect(originalConversion(undefined, 2)).toEqual({});
    expect(buildRelayArgs(plan(planTracks({ video: 'h264', audio: 'aac' }))).join(' ')).toContain('-c copy -f flv');
  });

  it('adds a silent AAC track to every tier of a video-only upstream', () => {
    const silent = planTracks({ video: 'h264', audio: 'none' });
    const p: RelayPlan = {
      ...plan(silent),
      silentAudio: true,
      tiers: [
        plan(silent).tiers[0]!,
        {
          sinks: [{ kind: 'rtmp', url: 'rtmp://127.0.0.1/live/x_r10' }],
          encode: { maxHeight: 360, videoKbps: 486, audioKbps: 64, keyframeSeconds: 2 },
        },
      ],
    };
    const args = buildRelayArgs(p).join(' ');
    expect(args).toContain('-re -f lavfi -i anullsrc=channel_layout=stereo:sample_rate=48000');
    expect(args).toContain('-map 0:v:0 -map 1:a:0 -c:v copy -c:a aac');
    expect(args).toContain('-map [v1] -map 1:a:0');
    expect(args).not.toContain('0:a:0?');
  });

  it('plans ORIGINAL from the channel record, and leaves tiers as they are', () => {
    const cfg = loadConfig({ RELAY_DATA_DIR: '/data/relay' });
    const base = testChannel({});
    const ch = { ...base, option: { ...base.option, rateType: 0 as const, rateTypes: [0, 10] as (0 | 10)[] } };
    const p = planFor({ ...ch, tracks: vp8 }, cfg, { secret: 's', gen: 1 });
    expect(p.tiers[0]!.encode).toMatchObject({ keyframeSeconds: cfg.hlsSegmentSeconds });
    expect(p.tiers[0]!.audio).toBeUndefined();
    expect(p.tiers[1]!.encode!.maxHeight).toBe(360);
    expect(p.tiers[1]!.audio).toBeUndefined();
  });

  it('charges a converted track in admission', () => {
    const costs = loadConfig({}).costs;
    const option = { ...testChannel({}).option, rateTypes: [0] as 0[] };
    expect(channelCost({ option }, costs)).toBe(costs.copy);
    expect(channelCost({ option, tracks: vp8 }, costs)).toBe(costs.originalEncode);
    expect(channelCost({ option, tracks: opus }, costs)).toBeGreaterThan(costs.copy);
  });
});

describe("ffmpeg's input report and the run's re-planning", () => {
  const report51 = [
    "Input #0, matroska,webm, from '/up/vp8.webm':",
    '  Duration: N/A, start: 0.000000, bitrate: N/A',
    '  Stream #0:0: Video: vp8, yuv420p(tv, progressive), 1279x719, SAR 1:1 DAR 1279:719, 25 fps, 25 tbr, 1k tbn',
    '    Side data:',
    '      displaymatrix: rotation of -90.00 degrees',
    '  Stream #0:1: Audio: opus, 48000 Hz, stereo, fltp (default)',
    'Stream mapping:',
    '  Stream #0:0 -> #0:0 (copy)',
    'Output #0, flv, to rtmp://x:',
    '  Stream #0:0: Audio: aac',
  ];
  it('reads codecs and rotation of input 0 (5.1 display matrix, 4.1 rotate tag)', () => {
    expect(parseReportedCodecs(report51)).toEqual({
      video: 'vp8',
      audio: 'opus',
      rotation: -90,
      videoProfile: null,
      pixFmt: 'yuv420p',
      audioRate: 48000,
      videoKbps: null, // `bitrate: N/A`
    });
    const report41 = [
      "Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'r.mp4':",
      '    Stream #0:0(und): Video: h264 (High) (avc1 / 0x31637661), yuv420p, 320x240, 25 fps',
      '    Metadata:',
      '      rotate          : 90',
      'Output #0, flv, to rtmp://x:',
    ];
    expect(parseReportedCodecs(report41)).toEqual({
      video: 'h264',
      audio: 'none',
      rotation: 90,
      videoProfile: 'High',
      pixFmt: 'yuv420p',
      audioRate: null,
      videoKbps: null,
    });
    expect(parseReportedCodecs(['Output #0, flv:', '  Stream #0:0: Video: h264'])).toBeNull();
  });

  it('H.264 players cannot decode (High 10, 4:2:2, 4:4:4) is converted; MP3 at a rate FLV lacks is converted', () => {
    const lines = (video: string, audio: string) => [
      "Input #0, matroska,webm, from 'x.mkv':",
      `  Stream #0:0: Video: ${video}, 320x240, 25 fps`,
      `  Stream #0:1: Audio: ${audio}, stereo, fltp`,
    ];
    const plan = (video: string, audio = 'aac (LC), 48000 Hz') => planTracks(parseReportedCodecs(lines(video, audio))!);
    expect(plan('h264 (High 10), yuv420p10le(progressive)').video).toMatchObject({
      mode: 'converted',
      why: 'h264 High 10 (yuv420p10le): players decode 8-bit 4:2:0 H.264 only',
    });
    expect(plan('h264 (High 4:2:2), yuv422p(progressive)').video.mode).toBe('converted');
    expect(plan('h264 (High 4:4:4 Predictive), yuv444p(progressive)').video.mode).toBe('converted');
    expect(plan('h264 (High) (avc1 / 0x31637661), yuv420p(tv, bt709, progressive)').video.mode).toBe('copied');
    expect(plan('h264 (Constrained Baseline), yuvj420p(pc)').video.mode).toBe('copied');
    expect(plan('h264, yuv444p').video.mode).toBe('converted'); // no profile said: the pixel format decides
    expect(plan('h264 (High), yuv420p', 'mp3 (mp3float), 32000 Hz').audio).toMatchObject({ mode: 'converted' });
    expect(plan('h264 (High), yuv420p', 'mp3, 24000 Hz').audio!.mode).toBe('converted');
    for (const rate of [11025, 22050, 44100, 48000])
      expect(plan('h264 (High), yuv420p', `mp3, ${rate} Hz`).audio!.mode, String(rate)).toBe('copied');
  });

  it("a converted video keeps about the upstream's bit rate: its stream's (MP4), else the input's less the audio (MKV)", () => {
    const mp4 = [
      "Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'h.mp4':",
      '  Duration: 00:00:10.00, start: 0.000000, bitrate: 420 kb/s',
      '  Stream #0:0(und): Video: hevc (Main) (hev1 / 0x31766568), yuv420p(tv), 320x240, 331 kb/s, 25 fps',
      '  Stream #0:1(und): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, stereo, fltp, 80 kb/s (default)',
    ];
    expect(parseReportedCodecs(mp4)!.videoKbps).toBe(331);
    expect(planTracks(parseReportedCodecs(mp4)!).video).toMatchObject({ mode: 'converted', kbps: 331 });
    const mkv = [
      "Input #0, matroska,webm, from 'v.webm':",
      '  Duration: 00:00:04.00, start: 0.000000, bitrate: 585 kb/s',
      '  Stream #0:0: Video: vp8, yuv420p(tv, progressive), 319x239, SAR 1:1 DAR 319:239, 25 fps, 25 tbr, 1k tbn',
      '  Stream #0:1: Audio: opus, 48000 Hz, stereo, fltp (default)',
    ];
    expect(parseReportedCodecs(mkv)!.videoKbps).toBe(585);
    // copied video needs no figure
    expect(planTracks({ video: 'h264', audio: 'aac', videoKbps: 900 }).video.kbps).toBeUndefined();
  });

  it('converts after an unsupported start only when ffmpeg named a track the plan copies', () => {
    const reported = { video: 'h264', audio: 'opus', rotation: 0 };
    const next = tracksAfterFailure('unsupported', undefined, reported)!;
    expect(modes(next)).toBe('copied+converted');
    expect(tracksAfterFailure('unsupported', next, reported)).toBeNull(); // already converting: a real failure
    expect(tracksAfterFailure('timeout', undefined, reported)).toBeNull();
    expect(tracksAfterFailure('unsupported', undefined, { video: 'h264', audio: 'aac', rotation: 0 })).toBeNull();
    expect(tracksAfterFailure('unsupported', undefined, null)).toBeNull();
  });

  it('once live: records the codecs, and re-plans a rotated copy', () => {
    const copied = tracksWhenLive(undefined, { video: 'h264', audio: 'aac', rotation: 0 })!;
    expect(copied).toEqual({ tracks: planTracks({ video: 'h264', audio: 'aac' }), replan: false });
    expect(tracksWhenLive(undefined, { video: 'h264', audio: 'aac', rotation: 90 })!.replan).toBe(true);
    const converted = planTracks({ video: 'hevc', audio: 'aac' });
    expect(tracksWhenLive(converted, { video: 'hevc', audio: 'aac', rotation: 0 })).toEqual({
      tracks: converted,
      replan: false,
    });
  });
});
