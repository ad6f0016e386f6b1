import { describe, expect, it } from 'vitest';
import { RelayError } from '../../src/errors/index.js';
import { checkOfferShape, chooseCodecs, h264Copyable, parseSdpMedia } from '../../src/whip/sdp.js';
import { WhipServer } from '../../src/whip/server.js';
import { bridgeArgs, bridgeSdp } from '../../src/whip/bridge-args.js';
import { h264Keyframe, vp8Keyframe } from '../../src/whip/keyframe.js';
import { bearerOf, isWhipUrl, whipRouteOf } from '../../src/whip/http.js';
import { ingestSignature, whipEndpointUrl } from '../../src/rooms/ingest.js';
import { isIngestMember } from '../../src/rooms/model.js';

/** A browser-like offer: Chrome lists VP8 first, then H.264 variants, with RTX beside each. */
function offer(o: { video?: string[]; audio?: string[] | null } = {}): string {
  const video = o.video ?? [
    '96 VP8/90000',
    '97 rtx/90000|apt=96',
    '102 H264/90000|level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f',
    '106 H264/90000|level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
    '112 H264/90000|level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f',
  ];
  const section = (kind: string, codecs: string[]) => {
    const pts = codecs.map((c) => c.split(' ')[0]).join(' ');
    const lines = [`m=${kind} 9 UDP/TLS/RTP/SAVPF ${pts}`, 'c=IN IP4 0.0.0.0', 'a=sendonly'];
    for (const c of codecs) {
      const [pt, rest] = c.split(' ') as [string, string];
      const [map, fmtp] = rest.split('|');
      lines.push(`a=rtpmap:${pt} ${map}`);
      if (fmtp) lines.push(`a=fmtp:${pt} ${fmtp}`);
    }
    return lines;
  };
  const audio = o.audio === undefined ? ['111 opus/48000/2|minptime=10;useinbandfec=1', '9 G722/8000'] : o.audio;
  return [
    'v=0',
    'o=- 1 2 IN IP4 127.0.0.1',
    's=-',
    't=0 0',
    ...(audio ? section('audio', audio) : []),
    ...(video.length ? section('video', video) : []),
    '',
  ].join('\r\n');
}

function refusal(f: () => unknown): RelayError {
  try {
    f();
  } catch (e) {
    return e as RelayError;
  }
  throw new Error('not refused');
}

describe('WHIP offer codecs', () => {
  it('parses media sections with their codecs and fmtp', () => {
    const [audio, video] = parseSdpMedia(offer());
    expect(audio!.kind).toBe('audio');
    expect(audio!.codecs[0]).toMatchObject({ payloadType: 111, name: 'opus', clockRate: 48000, channels: 2 });
    expect(video!.codecs.find((c) => c.payloadType === 106)!.fmtp['packetization-mode']).toBe('1');
  });

  it('prefers copyable H.264 in packetization-mode 1 over VP8, with Opus', () => {
    const c = chooseCodecs(offer());
    expect(c.video).toMatchObject({ kind: 'h264', payloadType: 106, copy: true });
    expect(c.audio).toMatchObject({ kind: 'opus', payloadType: 111 });
  });

  it('takes VP8 (converted) when H.264 comes only in packetization-mode 0', () => {
    const c = chooseCodecs(offer({ video: ['96 VP8/90000', '102 H264/90000|packetization-mode=0'] }));
    expect(c.video).toMatchObject({ kind: 'vp8', payloadType: 96, copy: false });
  });

  it('copies baseline, main and high H.264, converts other profiles', () => {
    for (const p of ['42e01f', '4d001f', '640c1f']) expect(h264Copyable({ fmtp: fmtp(p) })).toBe(true);
    expect(h264Copyable({ fmtp: fmtp('f4001f') })).toBe(false);
    expect(h264Copyable({ fmtp: { 'profile-level-id': '42e01f', 'packetization-mode': '0' } })).toBe(false);
    const c = chooseCodecs(offer({ video: ['100 H264/90000|packetization-mode=1;profile-level-id=f4001f'] }));
    expect(c.video).toMatchObject({ kind: 'h264', copy: false });
  });

  it('accepts a video-only offer', () => {
    expect(chooseCodecs(offer({ audio: null })).audio).toBeNull();
  });

  it('refuses an offer without video with 40000004', () => {
    const e = refusal(() => chooseCodecs(offer({ video: [] })));
    expect(e).toMatchObject({ code: 40000004, status: 400 });
  });

  it('refuses unsupported codecs with 406, listing what is accepted', () => {
    const e = refusal(() => chooseCodecs(offer({ video: ['98 VP9/90000', '99 rtx/90000|apt=98'] })));
    expect(e).toMatchObject({ status: 406, message: expect.stringContaining('video: VP9') });
    expect(e.toBody()).toMatchObject({ accepted: ['H264 (packetization-mode=1)', 'VP8', 'opus'] });
    const a = refusal(() => chooseCodecs(offer({ audio: ['0 PCMU/8000'] })));
    expect(a).toMatchObject({ status: 406, message: expect.stringContaining('audio: PCMU') });
  });
});

const fmtp = (profile: string) => ({ 'profile-level-id': profile, 'packetization-mode': '1' });

describe('WHIP bridge', () => {
  const codecs = chooseCodecs(offer());
  const vp8 = chooseCodecs(offer({ video: ['96 VP8/90000'] }));

  it('describes the forwarded RTP on local ports with the negotiated payload types', () => {
    const sdp = bridgeSdp({ video: 40000, audio: 40002 }, codecs);
    expect(sdp).toContain('m=video 40000 RTP/AVP 106\r\na=rtpmap:106 H264/90000\r\na=fmtp:106 ');
    expect(sdp).toContain('packetization-mode=1');
    expect(sdp).toContain('m=audio 40002 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2');
    expect(bridgeSdp({ video: 40000, audio: null }, codecs)).not.toContain('m=audio');
  });

  const args = (c = codecs) =>
    bridgeArgs({
      sdpPath: '/d/s.sdp',
      codecs: c,
      rtmpUrl: 'rtmp://h/ingest/n?token=t',
      gopSeconds: 2,
      videoKbps: 2000,
    });

  it('reads the SDP with only file, udp and rtp, and publishes FLV to the ingest', () => {
    const a = args();
    expect(a.slice(a.indexOf('-protocol_whitelist'), a.indexOf('-protocol_whitelist') + 2)).toEqual([
      '-protocol_whitelist',
      'file,udp,rtp',
    ]);
    expect(a[a.indexOf('-i') + 1]).toBe('/d/s.sdp');
    expect(a.slice(-3)).toEqual(['-f', 'flv', 'rtmp://h/ingest/n?token=t']);
  });

  it('copies fitting H.264 and converts Opus to AAC 48 kHz', () => {
    const a = args().join(' ');
    expect(a).toContain('-c:v copy');
    expect(a).toContain('-c:a aac -b:a 128k -ar 48000 -ac 2');
  });

  it('converts VP8 with libx264 veryfast zerolatency and a keyframe every 2 s', () => {
    const a = args(vp8).join(' ');
    expect(a).toContain('-c:v libx264 -preset veryfast -tune zerolatency');
    expect(a).toContain('-force_key_frames expr:gte(t,n_forced*2)');
    expect(a).toContain('-b:v 2000k');
    expect(a).toContain('-r 30'); // a nominal rate for libx264's rate control (RTP video has none)
  });

  it('publishes video only when the offer had no audio', () => {
    const a = args(chooseCodecs(offer({ audio: null })));
    expect(a).toContain('-an');
    expect(a).not.toContain('0:a:0');
  });
});

describe('WHIP keyframes', () => {
  it('finds VP8 keyframes behind the payload descriptor', () => {
    expect(vp8Keyframe(Buffer.from([0x10, 0x00]))).toBe(true); // S=1, P=0
    expect(vp8Keyframe(Buffer.from([0x10, 0x01]))).toBe(false); // interframe
    expect(vp8Keyframe(Buffer.from([0x00, 0x00]))).toBe(false); // not the start of a frame
    // X=1, I=1 with a 15-bit PictureID (M=1), then the VP8 header
    expect(vp8Keyframe(Buffer.from([0x90, 0x80, 0x81, 0x23, 0x00]))).toBe(true);
    expect(vp8Keyframe(Buffer.from([0x90, 0x80, 0x81, 0x23, 0x01]))).toBe(false);
  });

  it('finds H.264 IDR and SPS alone, in STAP-A and as the first FU-A fragment', () => {
    expect(h264Keyframe(Buffer.from([0x65, 0x88]))).toBe(true);
    expect(h264Keyframe(Buffer.from([0x67, 0x42]))).toBe(true);
    expect(h264Keyframe(Buffer.from([0x41, 0x9a]))).toBe(false);
    expect(h264Keyframe(Buffer.from([0x18, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce]))).toBe(true);
    expect(h264Keyframe(Buffer.from([0x7c, 0x85, 0x00]))).toBe(true);
    expect(h264Keyframe(Buffer.from([0x7c, 0x05, 0x00]))).toBe(false); // a middle fragment
    expect(h264Keyframe(Buffer.from([0x7c, 0x81, 0x00]))).toBe(false); // first fragment of a non-IDR slice
  });
});

describe('WHIP requests', () => {
  it('maps endpoint and session paths, and nothing else', () => {
    expect(whipRouteOf('/whip/1400000001/1001/alice/camera')).toEqual({
      kind: 'endpoint',
      streamName: '1400000001_1001_alice_camera',
    });
    expect(whipRouteOf(`/whip/session/${'ab'.repeat(16)}?x=1`)).toEqual({ kind: 'session', id: 'ab'.repeat(16) });
    for (const bad of ['/whip/1/0/alice/camera', '/whip/1/1/al ice/camera', '/whip/1/1/a/front', '/whip/session/xyz'])
      expect(whipRouteOf(bad)).toEqual({ kind: 'not-found' });
    expect(isWhipUrl('/whip/1')).toBe(true);
    expect(isWhipUrl('/whipped')).toBe(false);
  });

  it('reads the bearer token', () => {
    expect(bearerOf('Bearer abc')).toBe('abc');
    expect(bearerOf('Basic abc')).toBeNull();
    expect(bearerOf(undefined)).toBeNull();
  });

  it("the token is the member's ingest signature; the endpoint names the member", () => {
    const key = { sdkAppId: '1400000001', roomId: 1001, userId: 'alice', srcType: 1 as const };
    expect(ingestSignature('s3cret', key)).toMatch(/^[0-9a-f]{32}$/);
    expect(whipEndpointUrl('relay.example', 8000, key)).toBe(
      'http://relay.example:8000/whip/1400000001/1001/alice/screen',
    );
  });

  it('a WHIP member is an ingest member, an external URL is not', () => {
    expect(isIngestMember({ source: 'whip' })).toBe(true);
    expect(isIngestMember({ source: 'ingest' })).toBe(true);
    expect(isIngestMember({ source: 'external' })).toBe(false);
    expect(isIngestMember(null)).toBe(false);
  });
});

describe('WHIP offer shape and bridge tokens', () => {
  const complete =
    'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=ice-ufrag:u\r\na=ice-pwd:p\r\na=fingerprint:sha-256 AA\r\n';
  it('refuses what is not a complete SDP offer with 50002 naming what is missing', () => {
    const refusal = (offer: string) => {
      try {
        checkOfferShape(offer);
        return null;
      } catch (e) {
        return (e as RelayError).message;
      }
    };
    expect(refusal(complete)).toBeNull();
    expect(refusal('')).toBe('the body is not an SDP offer');
    expect(refusal('hello')).toBe('the body is not an SDP offer');
    expect(refusal('v=0\r\ns=-\r\n')).toBe('the body is not an SDP offer');
    expect(refusal(complete.replace('a=ice-pwd:p\r\n', ''))).toMatch(/no ICE credentials/);
    expect(refusal(complete.replace('a=fingerprint:sha-256 AA\r\n', ''))).toMatch(/no DTLS fingerprint/);
  });

  it('a wrong bridge token does not use up the right one (a publish on a predictable name cannot block a member)', () => {
    const server = new WhipServer({} as ConstructorParameters<typeof WhipServer>[0]);
    (server as unknown as { bridgeTokens: Map<string, string> }).bridgeTokens.set('1_2_u_camera', 'right-token');
    expect(server.claimBridge('1_2_u_camera', 'x')).toBe(false);
    expect(server.claimBridge('1_2_u_camera', undefined)).toBe(false);
    expect(server.claimBridge('1_2_u_camera', 'right-token')).toBe(true);
    expect(server.claimBridge('1_2_u_camera', 'right-token')).toBe(false); // single use
  });
});
