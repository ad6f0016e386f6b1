import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULTS, loadConfig } from '../../src/config/index.js';
import { Writable } from 'node:stream';
import { createLogger, redact } from '../../src/log.js';
import { parseStreamName, playUrls } from '../../src/channels/urls.js';

describe('configuration', () => {
  it('defaults are the documented ones', () => {
    const c = loadConfig({});
    expect([c.apiPort, c.httpPort, c.rtmpPort, c.redisUrl]).toEqual([8090, 8000, 1935, 'redis://127.0.0.1:6379']);
    expect(c.ffmpegPath).toMatch(/ffmpeg$/);
    expect(DEFAULTS.RELAY_HLS_SEGMENT_SECONDS).toBe(2);
    expect(c.ingestIdleMs).toBe(10000);
    expect(loadConfig({ RELAY_INGEST_IDLE_MS: '0' }).ingestIdleMs).toBe(0);
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
    ['RELAY_INGEST_IDLE_MS', '100'],
    ['RELAY_INGEST_IDLE_MS', '10s'],
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
    expect(line).toContain('rtmp://h/live/*** redis'); // an rtmp URL's query goes whole (only own names keep theirs)
  });

  it.each([
    [
      'https://b.s3.amazonaws.com/o?X-Amz-Credential=AKIA1/x&X-Amz-Signature=5ec7e7&X-Amz-Date=1',
      'X-Amz-Signature=***&',
    ],
    ['https://h/x.m3u8?access_token=ya29secret', 'access_token=***'],
    ['https://h/x.m3u8?apikey=k3y5ecret&a=1', 'apikey=***&a=1'],
    ['https://h/x.m3u8?api_key=k3y5ecret', 'api_key=***'],
    ['srt://h:9000?mode=caller&passphrase=longpa55phrase&latency=200', 'srt://h:9000 -f'],
  ])('query secrets are redacted: %s', (url, kept) => {
    const out = redact(`ffmpeg -i ${url} -f null -`);
    expect(out).not.toMatch(/5ec7e7|AKIA1|ya29secret|k3y5ecret|longpa55phrase/);
    expect(out).toContain(kept);
  });

  it("the stream key of an rtmp(s) URL (its last path segment) is redacted; the relay's own names stay readable", () => {
    const out = redact(
      '-f flv rtmp://a.rtmp.youtube.com/live2/abcd-efgh-ijkl -f flv rtmps://live-api-s.facebook.com:443/rtmp/FB-123-0-Ab?s_bl=1 rtmp://h/app',
    );
    expect(out).not.toMatch(/abcd-efgh-ijkl|FB-123-0-Ab/);
    expect(out).toContain('rtmp://a.rtmp.youtube.com/live2/*** ');
    expect(out).toContain('rtmps://live-api-s.facebook.com:443/rtmp/*** ');
    expect(out).toContain('rtmp://h/app');
    const own = [
      'rtmp://127.0.0.1:1935/live/ch_0123456789abcdef0123_r10?token=***',
      'rtmp://127.0.0.1:1935/live/ch_0123456789abcdef0123',
      'rtmp://127.0.0.1:1935/ingest/1400000001_1234_user-1_a_camera?token=***',
    ];
    for (const u of own) expect(redact(u)).toBe(u);
    // ffmpeg's error lines (read by the restart policy) keep their shape
    expect(redact('rtmp://a.rtmp.youtube.com:1935/live2/abcd-efgh: Connection refused')).toBe(
      'rtmp://a.rtmp.youtube.com:1935/live2/***: Connection refused',
    );
    const ownLine = 'rtmp://127.0.0.1:1935/live/ch_0123456789abcdef0123_r0: Broken pipe';
    expect(redact(ownLine)).toBe(ownLine);
    // a key of several segments is redacted whole, not only its last segment
    expect(redact('-f flv rtmp://h:19436/live/DEEPKEY/x -y')).toBe('-f flv rtmp://h:19436/live/*** -y');
    expect(redact('rtmp://h/live/DEEPKEY/x: Broken pipe')).toBe('rtmp://h/live/***: Broken pipe');
    // keys in any query parameter, or after a colon, go too (the query of an rtmp(s)/srt URL is dropped whole)
    expect(redact('-f flv rtmp://h/live/stream?streamkey=XYZ9 -y')).toBe('-f flv rtmp://h/live/*** -y');
    expect(redact('rtmps://h:443/rtmp/FB-1?s_bl=1&a=TOK3N: Broken pipe')).toBe('rtmps://h:443/rtmp/***: Broken pipe');
    expect(redact('rtmp://h/app/abc:S3CRET -y')).toBe('rtmp://h/app/*** -y');
    expect(redact('srt://h:9000?streamid=#!::r=live/K3Y,m=publish')).toBe('srt://h:9000');
  });

  it('the logger censors secret fields and redacts URLs and command lines in logged objects', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    });
    const log = createLogger('info', 't', sink);
    log.info(
      {
        passphrase: 'p1',
        apiKey: 'p2',
        access_token: 'p3',
        upstream: { url: 'rtmp://a.rtmp.youtube.com/live2/p4-key', api_key: 'p5' },
        cmd: 'ffmpeg -i srt://h:1?passphrase=p6',
      },
      'x',
    );
    const line = lines.join('');
    expect(line).not.toMatch(/p[1-6]\b|p4-key/);
    expect(JSON.parse(line)).toMatchObject({ upstream: { url: 'rtmp://a.rtmp.youtube.com/live2/***' } });
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
