import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { planDirs, planFor } from '../../src/worker/plan.js';
import { loadConfig } from '../../src/config/index.js';
import { publishToken, readToken, tokenFor } from '../../src/auth/index.js';
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

function channel(rateTypes: RateType[], over: Partial<Channel> = {}): Channel {
  const ch = testChannel(over);
  return { ...ch, option: { ...ch.option, rateType: rateTypes[0]!, rateTypes }, ...over };
}
const kinds = (sinks: readonly Sink[]) => sinks.map((s) => (s.kind === 'record' ? `record-${s.format}` : s.kind));
const rtmpOf = (sinks: readonly Sink[]) => sinks.find((s): s is RtmpSink => s.kind === 'rtmp')!;

describe('planFor', () => {
  it('reads a member of the ingest from the media server with a signed read token and a short probe', () => {
    const ch = channel([0], { input: { kind: 'ingest', streamName: '1400000001_1001_alice_camera' } });
    const p = `/ingest/1400000001_1001_alice_camera`;
    expect(planFor(ch, cfg, SECRET).sources).toEqual([
      {
        member: `${ch.userId}/camera`,
        url: `rtmp://10.0.0.5:1935${p}?token=${tokenFor(SECRET, readToken(p))}`,
        protocolWhitelist: 'rtmp,tcp',
        fastProbe: true,
      },
    ]);
  });

  it('reads an external upstream as registered, looping a file', () => {
    const ch = channel([0], {
      input: { kind: 'external', url: '/fixtures/a.mp4', protocolWhitelist: 'file', isFile: true },
    });
    expect(planFor(ch, cfg, SECRET).sources).toEqual([
      { member: `${ch.userId}/camera`, url: '/fixtures/a.mp4', protocolWhitelist: 'file', loopFile: true },
    ]);
  });

  it('a single tier publishes the channel id with a signed publish token, and writes HLS in the channel folder', () => {
    const ch = channel([0]);
    const [tier] = planFor(ch, cfg, SECRET).tiers;
    const live = `/live/${ch.channelId}`;
    expect(rtmpOf(tier!.sinks).url).toBe(`rtmp://10.0.0.5:1935${live}?token=${tokenFor(SECRET, publishToken(live))}`);
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
    const { tiers } = planFor(ch, cfg, SECRET);
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
    expect(kinds(planFor(channel([0], { hls: false }), cfg, SECRET).tiers[0]!.sinks)).toEqual(['rtmp']);
  });

  it('recording sinks go on the best tier only, in the task folder', () => {
    const ch = channel([10, 0], { recordTaskId: 7 });
    ch.option.recordFileType = 7;
    const { tiers } = planFor(ch, cfg, SECRET);
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
    const plan = planFor(ch, cfg, SECRET);
    expect(plan.watermark).toEqual({
      file: '/wm/3.png',
      relativeWidth: 0.2,
      aspect: 0.5,
      corner: 'top-right',
      margin: 0.02,
    });
    expect(plan.tiers[0]!.encode).toBeDefined();
    expect(planFor(channel([0]), cfg, SECRET).watermark).toBeUndefined();
  });

  it('a password-protected channel carries its password hash (never the password) on the publish URL', () => {
    const ch = channel([0]);
    ch.passwordHash = hashChannelPassword(ch.channelId, 'pw');
    const url = rtmpOf(planFor(ch, cfg, SECRET).tiers[0]!.sinks).url;
    expect(new URL(url).searchParams.get('ph')).toBe(ch.passwordHash);
    expect(url).not.toMatch(/[=&]pw(&|$)/);
    expect(new URL(rtmpOf(planFor(channel([0]), cfg, SECRET).tiers[0]!.sinks).url).searchParams.has('ph')).toBe(false);
  });

  it('planDirs lists the HLS and recording folders to make before ffmpeg starts', () => {
    const ch = channel([0], { recordTaskId: 9 });
    ch.option.recordFileType = 5;
    const task = path.join(cfg.recordsDir, ch.sdkAppId, '9');
    expect(planDirs(planFor(ch, cfg, SECRET)).sort()).toEqual(
      [path.join(cfg.hlsDir, ch.channelId), task, path.join(task, 'hls')].sort(),
    );
  });
});
