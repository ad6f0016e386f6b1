import { describe, expect, it } from 'vitest';
import { RtspWatch } from '../../src/egress/rtsp-watch.js';

/**
 * The RTSP relay's watch over what a server sends: everything passes byte for byte except a redirect (a 3xx
 * response or a REDIRECT request), which refuses the connection before ffmpeg sees any of it. Messages are delimited
 * the way ffmpeg's ff_rtsp_read_reply delimits them.
 */
const frame = (payload: string, channel = 0) =>
  Buffer.concat([Buffer.from([0x24, channel, payload.length >> 8, payload.length & 255]), Buffer.from(payload)]);

/** Feeds the parts in one go and byte by byte; both must agree. */
function judge(...parts: (string | Buffer)[]): { passed: Buffer; refused: string | null } {
  const all = Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p)));
  const results = [[all], [...all].map((b) => Buffer.of(b))].map((chunks) => {
    const w = new RtspWatch('127.0.0.1:554');
    const passed: Buffer[] = [];
    for (const c of chunks) {
      const v = w.feed(c);
      if ('refused' in v) return { passed: Buffer.concat(passed), refused: v.refused };
      passed.push(v.pass);
    }
    return { passed: Buffer.concat(passed), refused: w.end() };
  });
  expect(results[1]!.refused).toBe(results[0]!.refused);
  return results[0]!;
}

const sdp = 'v=0\r\nm=video 0 RTP/AVP 96\r\n';
const describeOk = `RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Length: ${sdp.length}\r\n\r\n${sdp}`;

describe('RTSP watch', () => {
  it('passes replies, bodies and interleaved frames unchanged', () => {
    const parts = [
      'RTSP/1.0 200 OK\r\nCSeq: 1\r\nPublic: OPTIONS\r\n\r\n',
      describeOk,
      frame('RTSP/1.0 302 Found\r\nLocation: rtsp://10.0.0.1/\r\n\r\n'), // media that looks like a redirect
      frame('x'.repeat(1400), 1),
      'SET_PARAMETER rtsp://h/cam RTSP/1.0\r\nCSeq: 9\r\n\r\n',
    ];
    const r = judge(...parts);
    expect(r.refused).toBeNull();
    expect(r.passed.equals(Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p))))).toBe(true);
  });

  it.each([300, 301, 302, 303, 305, 307, 399])('refuses a %i response, naming where it leads (host and port)', (c) => {
    const r = judge(`RTSP/1.0 ${c} Moved\r\nCSeq: 1\r\nLocation: rtsp://u:pw@127.0.0.2:8554/cam?secret=1\r\n\r\n`);
    expect(r.refused).toBe(
      `redirect to rtsp://127.0.0.2:8554 refused (the RTSP server 127.0.0.1:554 answered ${c}; redirects are not followed)`,
    );
    expect(r.passed.length).toBe(0);
  });

  it('refuses a REDIRECT request of the server, and a redirect whose connection ends before its header does', () => {
    expect(judge(describeOk, 'REDIRECT rtsp://h/cam RTSP/1.0\r\nLocation: rtsp://10.1.2.3/x\r\n\r\n').refused).toMatch(
      /^redirect to rtsp:\/\/10\.1\.2\.3 refused .*sent a REDIRECT request/,
    );
    expect(judge('RTSP/1.0 302 Found\r\nLocation: rtsp://10.1.2.3/x\r\n').refused).toMatch(/10\.1\.2\.3/);
  });

  it('finds a redirect where ffmpeg would: after a body, after a frame inside a header, with stray CRs', () => {
    expect(judge(describeOk, 'RTSP/1.0 302 Found\r\n\r\n').refused).toMatch(/answered 302/);
    expect(judge('RTSP/1.0 200 OK\r\n', frame('data'), 'CSeq: 1\r\n\r\n', 'RTSP/1.0 301 x\r\n\r\n').refused).toMatch(
      /answered 301/,
    );
    expect(judge('RTSP/1.0 3\r0\r2 Found\r\n\r\n').refused).toMatch(/answered 302/); // ffmpeg drops every CR
  });

  it('skips a body by Content-Length read as ffmpeg reads it (strtol into an int), and never inside a frame', () => {
    // 4294967301 is 5 in an int: ffmpeg reads a 5-byte body, then the next message
    expect(
      judge('RTSP/1.0 200 OK\r\nContent-Length: 4294967301\r\n\r\nhello', 'RTSP/1.0 302 x\r\n\r\n').refused,
    ).toMatch(/answered 302/);
    // a body (as its length says) may hold anything
    const body = 'RTSP/1.0 302 x\r\n\r\n';
    expect(judge(`RTSP/1.0 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`).refused).toBeNull();
  });
});
