import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { planDirs, planFor } from '../../src/worker/plan.js';
import { loadConfig } from '../../src/config/index.js';
import { RunTokenGate, verifyRunToken } from '../../src/auth/run-tokens.js';
import { hashChannelPassword } from '../../src/channels/password.js';
import type { RtmpSink, Sink } from '../../src/media/ffmpeg/args.js';
import type { Channel, RateType } from '../../src/channels/types.js';
import { testChannel } from '../fakes/channels.js';

const cfg = {
  ...loadConfig({ RELAY_DATA_DIR: '/data/relay' }),
  mediaInternalHost: '10.0.0.5',
  rtmpPort: 1935,
  hlsSegmentSeconds: 2,
  hlsListSize: 6,
  recordMaxSeconds: 600,
};
const SECRET = 's3cret';
const RUN = { secret: SECRET, gen: 3 };
const queryOf = (url: string) => Object.fromEntries(new URL(url).searchParams);

function channel(rateTypes: RateType[], over: Partial<Channel> = {}): Channel {
  const ch = testChannel(over);
  return { ...ch, option: { ...ch.option, rateType: rateTypes[0]!, rateTypes }, ...over };
}
const kinds = (sinks: readonly Sink[]) => sinks.map((s) => (s.kind === 'record' ? `record-${s.format}` : s.kind));
const rtmpOf = (sinks: readonly Sink[]) => sinks.find((s): s is RtmpSink => s.kind === 'rtmp')!;

describe('planFor', () => {
  it('encodes a converted ORIGINAL of an external upstream at about the bit rate ffmpeg reported, not a default', () => {
    const input = { kind: 'external', url: '/fixtures/h.mp4', protocolWhitelist: 'file', isFile: true } as const;
    const video = { codec: 'hevc', mode: 'converted', to: 'h264', why: 'hevc …' } as const;
    const reported = channel([0], { input, tracks: { video: { ...video, kbps: 331 }, audio: null } });
    expect(planFor(reported, cfg, RUN).tiers[0]!.encode).toMatchObject({ videoKbps: 331 });
    const unknown = channel([0], { input, tracks: { video, audio: null } });
    expect(planFor(unknown, cfg, RUN).tiers[0]!.encode).toMatchObject({ videoKbps: 2000 }); // README: when unknown
  });

  it("reads a member of the ingest from the media server with a read token of the channel's run and a short probe", () => {
    const ch = channel([0], { input: { kind: 'ingest', streamName: '1400000001_1001_alice_camera' } });
    const p = `/ingest/1400000001_1001_alice_camera`;
    const [source] = planFor(ch, cfg, RUN).sources;
    expect(source).toEqual({
      member: `${ch.userId}/camera`,
      url: expect.stringMatching(new RegExp(`^rtmp://10\\.0\\.0\\.5:1935${p}\\?`)),
      protocolWhitelist: 'rtmp,tcp',
      fastProbe: true,
    });
    const check = verifyRunToken(SECRET, 'read', p, queryOf(source!.url), Date.now());
    expect(check).toMatchObject({ ok: true, claims: { channelId: ch.channelId, gen: 3 } });
    // a read token is no publish token, and holds for its own path only
    expect(verifyRunToken(SECRET, 'publish', p, queryOf(source!.url), Date.now()).ok).toBe(false);
    expect(verifyRunToken(SECRET, 'read', `${p}x`, queryOf(source!.url), Date.now()).ok).toBe(false);
  });

  it('mints new single-use tokens with each plan (one plan per ffmpeg attempt)', () => {
    const ch = channel([0], { input: { kind: 'ingest', streamName: '1400000001_1001_alice_camera' } });
    const [a, b] = [planFor(ch, cfg, RUN), planFor(ch, cfg, RUN)];
    const urls = [a, b].flatMap((p) => [p.sources[0]!.url, rtmpOf(p.tiers[0]!.sinks).url]);
    expect(new Set(urls.map((u) => queryOf(u).nonce)).size).toBe(4);
    const gate = new RunTokenGate(SECRET);
    const live = `/live/${ch.channelId}`;
    expect(gate.admit('publish', live, queryOf(urls[1]!), Date.now(), ch.channelId).ok).toBe(true);
    expect(gate.admit('publish', live, queryOf(urls[1]!), Date.now(), ch.channelId)).toEqual({
      ok: false,
      why: 'run token used before',
    });
    expect(gate.admit('publish', live, queryOf(urls[3]!), Date.now(), ch.channelId).ok).toBe(true);
  });

  it('reads an external upstream as registered, looping a file', () => {
    const ch = channel([0], {
      input: { kind: 'external', url: '/fixtures/a.mp4', protocolWhitelist: 'file', isFile: true },
    });
    expect(planFor(ch, cfg, RUN).sources).toEqual([
      {
        member: `${ch.userId}/camera`,
        url: '/fixtures/a.mp4',
        protocolWhitelist: 'file',
        loopFile: true,
        untrustedClock: true,
      },
    ]);
  });

  it("a single tier publishes the channel id with a publish token of the channel's run, and writes HLS in the channel folder", () => {
    const ch = channel([0]);
    const [tier] = planFor(ch, cfg, RUN).tiers;
    const live = `/live/${ch.channelId}`;
    const url = rtmpOf(tier!.sinks).url;
    expect(url.split('?')[0]).toBe(`rtmp://10.0.0.5:1935${live}`);
    expect(Object.keys(queryOf(url)).sort()).toEqual(['ch', 'exp', 'gen', 'nonce', 'token']);
    expect(verifyRunToken(SECRET, 'publish', live, queryOf(url), Date.now())).toMatchObject({
      ok: true,
      claims: { channelId: ch.channelId, gen: 3 },
    });
    expect(tier!.sinks).toContainEqual({
      kind: 'hls',
      dir: path.join(cfg.hlsDir, ch.channelId),
      segmentSeconds: 2,
      listSize: 6,
    });
    expect(tier!.encode).toBeUndefined();
  });

  it('several tiers get a stream and an HLS folder each, the copy tier unencoded and the others encoded', () => {
    const ch = channel([10, 0, 20]);
    const { tiers } = planFor(ch, cfg, RUN);
    expect(tiers.map((t) => rtmpOf(t.sinks).url.split('?')[0])).toEqual(
      [10, 0, 20].map((r) => `rtmp://10.0.0.5:1935/live/${ch.channelId}_r${r}`),
    );
    expect(
      tiers.map(
        (t) => t.sinks.find((s) => s.kind === 'hls') && (t.sinks.find((s) => s.kind === 'hls') as { dir: string }).dir,
      ),
    ).toEqual([10, 0, 20].map((r) => path.join(cfg.hlsDir, ch.channelId, `r${r}`)));
    expect(tiers.map((t) => t.encode?.maxHeight ?? null)).toEqual([expect.any(Number), null, expect.any(Number)]);
  });

  it('an encode without HLS has only the RTMP sink', () => {
    expect(kinds(planFor(channel([0], { hls: false }), cfg, RUN).tiers[0]!.sinks)).toEqual(['rtmp']);
  });

  it('recording sinks go on the best tier only, in the task folder', () => {
    const ch = channel([10, 0], { recordTaskId: 7 });
    ch.option.recordFileType = 7;
    const { tiers } = planFor(ch, cfg, RUN);
    expect(kinds(tiers[0]!.sinks)).toEqual(['rtmp', 'hls']);
    expect(kinds(tiers[1]!.sinks)).toEqual(['rtmp', 'hls', 'record-mp4', 'record-flv', 'record-hls']);
    expect(tiers[1]!.sinks.find((s) => s.kind === 'record-hls')).toMatchObject({
      dir: path.join(cfg.recordsDir, ch.sdkAppId, '7', 'hls'),
    });
  });

  it('a watermark is placed as the option says, sized by the image, and forces an encode of the copy tier', () => {
    const ch = channel([0], { watermark: { id: 3, file: '/wm/3.png', width: 200, height: 100 } });
    ch.option = {
      ...ch.option,
      waterMark: true,
      waterMarkId: 3,
      waterMarkPosition: { corner: 'top-right', relativeWidth: 0.2, margin: 0.02 },
    };
    const plan = planFor(ch, cfg, RUN);
    expect(plan.watermark).toEqual({
      file: '/wm/3.png',
      relativeWidth: 0.2,
      aspect: 0.5,
      corner: 'top-right',
      margin: 0.02,
    });
    expect(plan.tiers[0]!.encode).toBeDefined();
    expect(planFor(channel([0]), cfg, RUN).watermark).toBeUndefined();
  });

  it("a password-protected channel's URLs carry neither its password nor its hash nor its play token", () => {
    const ch = channel([0], { input: { kind: 'ingest', streamName: '1400000001_1001_alice_camera' } });
    ch.passwordHash = hashChannelPassword(ch.channelId, 'pw');
    const plan = planFor(ch, cfg, RUN);
    for (const url of [rtmpOf(plan.tiers[0]!.sinks).url, plan.sources[0]!.url]) {
      expect(new URL(url).searchParams.has('ph')).toBe(false);
      expect(url).not.toMatch(/[=&]pw(&|$)/);
      expect(url).not.toContain(ch.passwordHash.slice(0, 32));
    }
  });

  it('planDirs lists the HLS and recording folders to make before ffmpeg starts', () => {
    const ch = channel([0], { recordTaskId: 9 });
    ch.option.recordFileType = 5;
    const task = path.join(cfg.recordsDir, ch.sdkAppId, '9');
    expect(planDirs(planFor(ch, cfg, RUN)).sort()).toEqual(
      [path.join(cfg.hlsDir, ch.channelId), task, path.join(task, 'hls')].sort(),
    );
  });
});
