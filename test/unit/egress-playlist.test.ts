import { describe, expect, it } from 'vitest';
import { fromGatewayPath, scopeSetCookie, toGatewayUrl } from '../../src/egress/gateway-form.js';
import { isPlaylistType, looksLikePlaylist, rewritePlaylist } from '../../src/egress/playlist.js';

/**
 * What the egress gateway hands ffmpeg of an HLS playlist: every URI in gateway form (absolute, resolved against the
 * playlist's URL), read the way ffmpeg's hls demuxer reads them; any scheme but http(s) refuses the playlist.
 */
const GW = 'http://127.0.0.1:9000';
const base = new URL('https://cdn.example:8443/live/hd/index.m3u8?token=abc');
const rewrite = (text: string) => {
  const out = rewritePlaylist(Buffer.from(text, 'utf8'), base, GW);
  return 'refused' in out ? { refused: out.refused } : out.body.toString('utf8');
};
const gw = (u: string) => toGatewayUrl(GW, new URL(u));

describe('gateway form', () => {
  it('names the origin in the path and reads it back; user info stays in the URL', () => {
    expect(gw('https://cdn.example:8443/a/b.m3u8?x=1#f')).toBe(`${GW}/https/cdn.example:8443/a/b.m3u8?x=1`);
    expect(gw('http://u:p%40ss@[::1]/x')).toBe('http://u:p%40ss@127.0.0.1:9000/http/[::1]/x');
    expect(fromGatewayPath('/https/cdn.example:8443/a/b.m3u8?x=1')?.href).toBe('https://cdn.example:8443/a/b.m3u8?x=1');
    expect(fromGatewayPath('/http/[::1]:81?q')?.href).toBe('http://[::1]:81/?q');
    for (const bad of ['/ftp/h/x', '/https/', '/https/user@h/x', '/x/h', '/httpproxy/127.0.0.2:3128/x'])
      expect(fromGatewayPath(bad), bad).toBeNull();
  });

  it("scopes an origin's cookies to its gateway path", () => {
    expect(scopeSetCookie('s=1; Domain=.cdn.example; Path=/live; HttpOnly', base)).toBe(
      's=1; Path=/https/cdn.example:8443/live; HttpOnly',
    );
    expect(scopeSetCookie('s=1', new URL('http://a.example/x'))).toBe('s=1; Path=/http/a.example/');
  });
});

describe('playlist detection', () => {
  it('by content type, or by a body that starts with #EXTM3U', () => {
    for (const t of ['application/vnd.apple.mpegurl', 'audio/mpegurl', 'application/x-mpegURL; charset=utf-8'])
      expect(isPlaylistType(t), t).toBe(true);
    expect(isPlaylistType('video/mp2t')).toBe(false);
    expect(looksLikePlaylist(Buffer.from('#EXTM3U\n#EXT-X-VERSION:3'), false)).toBe(true);
    expect(looksLikePlaylist(Buffer.from('\ufeff \r\n#EXTM3U'), true)).toBe(true);
    expect(looksLikePlaylist(Buffer.from('#EXT'), false)).toBeUndefined(); // too short to tell yet
    expect(looksLikePlaylist(Buffer.from('#EXT'), true)).toBe(false);
    expect(looksLikePlaylist(Buffer.from([0x47, 0x40, 0x11, 0x10]), false)).toBe(false); // a TS packet
  });
});

describe('playlist rewriting', () => {
  it('writes URI lines in gateway form, resolved against the playlist URL (relative, root-relative, absolute)', () => {
    const out = rewrite(
      [
        '#EXTM3U',
        '#EXTINF:2,',
        'seg0.ts?x=1',
        '#EXTINF:2,',
        '/other/seg1.ts',
        '#EXTINF:2,',
        'http://b.example/s.ts',
        '',
      ].join('\n'),
    );
    expect(out).toBe(
      [
        '#EXTM3U',
        '#EXTINF:2,',
        `${GW}/https/cdn.example:8443/live/hd/seg0.ts?x=1`,
        '#EXTINF:2,',
        `${GW}/https/cdn.example:8443/other/seg1.ts`,
        '#EXTINF:2,',
        `${GW}/http/b.example/s.ts`,
        '',
      ].join('\n'),
    );
  });

  it.each([
    ['EXT-X-KEY', 'METHOD=AES-128,URI="key.bin",IV=0x1'],
    ['EXT-X-SESSION-KEY', 'METHOD=AES-128,URI="key.bin"'],
    ['EXT-X-MAP', 'URI="key.bin",BYTERANGE="1000@0"'],
    ['EXT-X-MEDIA', 'TYPE=AUDIO,GROUP-ID="a",NAME="en",URI="key.bin"'],
    ['EXT-X-I-FRAME-STREAM-INF', 'BANDWIDTH=1,CODECS="avc1.4d401f,mp4a.40.2",URI="key.bin"'],
    ['EXT-X-PART', 'DURATION=0.5,URI="key.bin",INDEPENDENT=YES'],
    ['EXT-X-PRELOAD-HINT', 'TYPE=PART,URI="key.bin"'],
    ['EXT-X-RENDITION-REPORT', 'URI="key.bin",LAST-MSN=7'],
    ['EXT-X-CONTENT-STEERING', 'SERVER-URI="key.bin"'],
  ])('rewrites the URI attribute of %s and keeps the others', (tag, attrs) => {
    const out = rewrite(`#EXTM3U\n#${tag}:${attrs}\n`) as string;
    const line = out.split('\n')[1]!;
    expect(line).toBe(`#${tag}:${attrs.replace('"key.bin"', `"${GW}/https/cdn.example:8443/live/hd/key.bin"`)}`);
  });

  it('reads attributes and lines as ffmpeg does: unquoted values, backslash escapes, CR line ends, leading blanks', () => {
    const out = rewrite(
      '#EXTM3U\r#EXT-X-KEY:METHOD=AES-128, URI=http://127.0.0.2/k\r' +
        '#EXT-X-MAP:URI="http:\\/\\/127.0.0.2\\/init.mp4"\r\n' +
        '   http://127.0.0.2/seg.ts  \n',
    ) as string;
    expect(out).not.toMatch(/[^/]127\.0\.0\.2|^http:\/\/127\.0\.0\.2/m);
    expect(out).toBe(
      `#EXTM3U\r#EXT-X-KEY:METHOD=AES-128, URI="${GW}/http/127.0.0.2/k"\r` +
        `#EXT-X-MAP:URI="${GW}/http/127.0.0.2/init.mp4"\r\n` +
        `${GW}/http/127.0.0.2/seg.ts\n`,
    );
  });

  it('keeps comments and non-URI tags as they are, byte for byte', () => {
    const text = '#EXTM3U\n# a comment http://127.0.0.2/x\n#EXTINF:2.0,a title with URI=inside\n\n';
    expect(rewrite(text)).toBe(text.replace('URI=inside', `URI="${GW}/https/cdn.example:8443/live/hd/inside"`));
  });

  it.each([
    ['httpproxy://127.0.0.2:18112/127.0.0.1:80', /URI of scheme httpproxy: \(to 127\.0\.0\.2:18112\)/],
    ['crypto+http://127.0.0.2/seg.ts', /scheme crypto\+http:/],
    ['file:///etc/passwd', /scheme file:/],
    ['data:text/plain,x', /scheme data:/],
    ['tcp://127.0.0.2:80', /scheme tcp:/],
  ])('refuses the whole playlist for a URI line %s', (uri, reason) => {
    const out = rewrite(`#EXTM3U\n#EXTINF:2,\nseg0.ts\n#EXTINF:2,\n${uri}\n`);
    expect(out).toEqual({ refused: expect.stringMatching(reason) });
    expect((out as { refused: string }).refused).toMatch(/^a playlist of the upstream \(cdn\.example:8443\)/);
  });

  it('refuses another scheme in an attribute, a NUL byte, and a URI too long for ffmpeg to read whole', () => {
    expect(rewrite('#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI="skd://k"\n')).toEqual({
      refused: expect.stringMatching(/scheme skd:/),
    });
    expect(rewrite('#EXTM3U\nseg.ts\0http://127.0.0.2/\n')).toEqual({ refused: expect.stringMatching(/NUL/) });
    expect(rewrite(`#EXTM3U\n${'a'.repeat(5000)}.ts\n`)).toEqual({ refused: expect.stringMatching(/too long/) });
  });
});
