import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ingestPublishUrl, ingestSignature, ingestStreamName, parseIngestStreamName } from '../../src/rooms/ingest.js';
import { resolveUpstreamInput } from '../../src/rooms/model.js';
import { RelayError } from '../../src/errors/index.js';

describe('ingest stream names', () => {
  it('round-trip, including user ids with underscores', () => {
    const k = { sdkAppId: '1400000001', roomId: 1001, userId: 'bob_the_2nd', srcType: 1 as const };
    expect(ingestStreamName(k)).toBe('1400000001_1001_bob_the_2nd_screen');
    expect(parseIngestStreamName(ingestStreamName(k))).toEqual(k);
  });

  it.each([
    '',
    'x',
    '1400000001_0_alice_camera',
    '1400000001_1001_alice_mic',
    '1400000001_1001__camera',
    'abc_1001_alice_camera',
    '1_99999999999_a_camera',
  ])('%j is not an ingest name', (name) => {
    expect(parseIngestStreamName(name)).toBeNull();
  });

  it('the publish URL carries a signature of the name under the app secret', () => {
    const k = { sdkAppId: '1', roomId: 2, userId: 'u', srcType: 0 as const };
    const url = ingestPublishUrl('h', 1935, 's3cret', k);
    expect(url).toBe(`rtmp://h:1935/ingest/1_2_u_camera?sig=${ingestSignature('s3cret', k)}`);
    expect(ingestSignature('s3cret', k)).toMatch(/^[0-9a-f]{32}$/);
    expect(ingestSignature('other', k)).not.toBe(ingestSignature('s3cret', k));
  });
});

describe('external upstream URLs', () => {
  const dir = '/srv/fixtures';
  it.each([
    ['rtmp://cam.example/live/a', 'rtmp,tcp', false],
    // rtsp(s): through the run's RTSP relay, RTP interleaved over TCP (no udp, rtp or tls)
    ['rtsp://10.0.0.2:554/stream', 'rtsp,tcp', false],
    ['rtsps://10.0.0.2/stream', 'rtsp,tcp', false],
    ['srt://10.0.0.3:9000', 'srt,udp', false],
    // http(s): plain HTTP to the run's egress gateway (which speaks TLS itself), crypto for AES-128 segments
    ['https://origin/live.flv', 'http,tcp,crypto', false],
    ['http://origin/live/index.m3u8', 'http,tcp,crypto', false],
  ])('%s is read with protocols %s', (url, wl, isFile) => {
    expect(resolveUpstreamInput(url, dir)).toEqual({ url, protocolWhitelist: wl, isFile });
  });

  it.each(['crypto+http://origin/a.m3u8', 'hls+http://origin/a.m3u8', 'httpproxy://origin:3128/x'])(
    'a nested or proxy protocol is refused: %s',
    (url) => {
      expect(() => resolveUpstreamInput(url, dir)).toThrow(/not allowed/);
    },
  );

  it('a file inside the allowed folder is looped; an SDP file may open RTP over UDP', () => {
    expect(resolveUpstreamInput('cam.mp4', dir)).toEqual({
      url: path.join(dir, 'cam.mp4'),
      protocolWhitelist: 'file',
      isFile: true,
    });
    expect(resolveUpstreamInput(`file://${dir}/sfu.sdp`, dir)).toEqual({
      url: `${dir}/sfu.sdp`,
      protocolWhitelist: 'file,udp,rtp',
      isFile: false,
    });
  });

  it.each([
    'concat:a.mp4|b.mp4',
    'subfile:,,start,0,end,0,,:/etc/passwd',
    'pipe:0',
    'data:video/mp4;base64,AA',
    'file:///etc/passwd',
    '/etc/passwd',
    '../secrets.mp4',
    'gopher://h/x',
    'rtmp://h/a b',
    'x'.repeat(2049),
  ])('%j is refused with 50002', (url) => {
    expect(() => resolveUpstreamInput(url, dir)).toThrow(RelayError);
    try {
      resolveUpstreamInput(url, dir);
    } catch (e) {
      expect((e as RelayError).code).toBe(50002);
    }
  });
});
