import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULTS, loadConfig } from '../../src/config/index.js';
import { redact } from '../../src/log.js';
import { parseStreamName, playUrls } from '../../src/channels/urls.js';

describe('configuration', () => {
  it('defaults are the documented ones', () => {
    const c = loadConfig({});
    expect([c.apiPort, c.httpPort, c.rtmpPort, c.redisUrl]).toEqual([8090, 8000, 1935, 'redis://127.0.0.1:6379']);
    expect(c.ffmpegPath).toMatch(/ffmpeg$/);
    expect(DEFAULTS.RELAY_HLS_SEGMENT_SECONDS).toBe(2);
  });

  it.each([
    ['RELAY_API_PORT', 'eighty'],
    ['RELAY_HTTP_PORT', '70000'],
    ['RELAY_RTMP_PORT', '-1'],
    ['REDIS_URL', 'localhost:6379'],
    ['RELAY_PUBLIC_HOST', 'bad host/'],
    ['RELAY_WORKER_CONCURRENCY', '0'],
    ['RELAY_LOG_LEVEL', 'loud'],
    ['RELAY_REDIS_PREFIX', 'has:colon'],
  ])('an invalid %s stops start-up with a message naming it', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(name);
  });
});

describe('redaction', () => {
  it('stream signatures, tokens, passwords and URL credentials never reach a log line', () => {
    const line = redact(
      'ffmpeg -i rtmp://127.0.0.1:1935/ingest/1_2_u_camera?sig=abcdef0123 -f flv rtmp://h/live/ch?token=deadbeef&x=1 redis://user:pa55@h:6379 ?password=hunter2',
    );
    expect(line).not.toMatch(/abcdef0123|deadbeef|pa55|hunter2/);
    expect(line).toContain('sig=***');
    expect(line).toContain('token=***&x=1');
  });
});

describe('play URLs by encode', () => {
  const ep = { publicHost: 'relay.example', httpPort: 8000, rtmpPort: 1935 };
  it.each([
    [1, [1]],
    [2, [2]],
    [3, [1, 2]],
    [4, [5, 2]],
    [5, [5]],
    [6, [1, 5]],
  ] as const)('encode %i gives URL types %j', (encode, types) => {
    const urls = playUrls(ep, 'ch_0', encode, [0]);
    expect(urls.map((u) => u.type)).toEqual(types);
  });

  it('several tiers give a URL per (encode × tier) and, for HLS, the master playlist first (rateType null)', () => {
    const id = 'ch_0123456789abcdef0123';
    const urls = playUrls(ep, id, 3, [0, 10, 20]);
    expect(urls.map((u) => [u.type, u.rateType])).toEqual([
      [1, null],
      [1, 0],
      [1, 10],
      [1, 20],
      [2, 0],
      [2, 10],
      [2, 20],
    ]);
    expect(urls[0]!.playUrl).toBe(`http://relay.example:8000/hls/${id}/index.m3u8`);
    expect(urls[2]!.playUrl).toBe(`http://relay.example:8000/hls/${id}/r10/index.m3u8`);
    expect(urls[6]!.playUrl).toBe(`http://relay.example:8000/live/${id}_r20.flv`);
    expect(parseStreamName(`${id}_r20`)).toEqual({ channelId: id, rateType: 20 });
    expect(parseStreamName(id)).toEqual({ channelId: id, rateType: null });
    expect(parseStreamName(`${id}_r30`)).toBeNull();
  });

  it('have the documented shapes', () => {
    const [hls, flv] = playUrls(ep, 'ch_0', 3, [0]);
    expect(hls!.playUrl).toBe('http://relay.example:8000/hls/ch_0/index.m3u8');
    expect(flv!.playUrl).toBe('http://relay.example:8000/live/ch_0.flv');
    expect(playUrls(ep, 'ch_0', 5, [0])[0]!.playUrl).toBe('rtmp://relay.example:1935/live/ch_0');
  });
});
