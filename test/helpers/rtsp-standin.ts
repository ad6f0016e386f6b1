import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { FFMPEG } from './stack.js';

/**
 * A tiny RTSP server (RFC 2326) on loopback for tests: either it answers every request with a redirect (`302` and a
 * `Location`, or a server-sent `REDIRECT` request), or it serves one H.264 video stream with RTP interleaved on the
 * RTSP connection (TCP only): the RTP packets come from an ffmpeg that sends a fixture looped to a local UDP port
 * (`-f rtp`), and each playing client gets them as `$` frames on channel 0.
 */
export interface RtspStandIn {
  url: string;
  /** Requests received, as `METHOD url`. */
  requests: string[];
  close(): Promise<void>;
}

export interface RtspStandInOptions {
  host: string;
  /** Answer every request with `302` to this URL. */
  redirectTo?: string;
  /** Serve this video file (looped) instead. */
  media?: string;
}

export async function startRtspStandIn(opts: RtspStandInOptions): Promise<RtspStandIn> {
  const requests: string[] = [];
  const players = new Set<net.Socket>();
  let feeder: ChildProcess | null = null;
  let udp: dgram.Socket | null = null;
  let sdp = '';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rtsp-standin-'));
  if (opts.media) {
    udp = dgram.createSocket('udp4');
    await new Promise<void>((r) => udp!.bind(0, '127.0.0.1', () => r()));
    udp.on('message', (pkt) => {
      const head = Buffer.from([0x24, 0, pkt.length >> 8, pkt.length & 255]);
      for (const p of players) p.write(Buffer.concat([head, pkt]));
    });
    const sdpFile = path.join(dir, 'stream.sdp');
    feeder = spawn(
      FFMPEG,
      [
        ...['-hide_banner', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', opts.media, '-an'],
        ...['-c:v', 'copy', '-f', 'rtp', '-sdp_file', sdpFile, `rtp://127.0.0.1:${udp.address().port}`],
      ],
      { stdio: 'ignore' },
    );
    for (let i = 0; i < 100 && !fs.existsSync(sdpFile); i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 100));
    sdp =
      fs
        .readFileSync(sdpFile, 'utf8')
        .replace(/^c=.*$/m, 'c=IN IP4 0.0.0.0')
        .replace(/^m=video \d+/m, 'm=video 0')
        .trim()
        .replace(/\r?\n/g, '\r\n') + '\r\na=control:streamid=0\r\n';
  }
  const server = net.createServer((s) => {
    let buf = Buffer.alloc(0);
    s.on('error', () => s.destroy());
    s.on('close', () => players.delete(s));
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (buf[0] === 0x24) {
          if (buf.length < 4 || buf.length < 4 + buf.readUInt16BE(2)) return;
          buf = buf.subarray(4 + buf.readUInt16BE(2));
          continue;
        }
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString();
        const length = Number(/content-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + length) return;
        buf = buf.subarray(end + 4 + length);
        const [method = '', url = ''] = head.split(' ');
        requests.push(`${method} ${url}`);
        const cseq = /cseq:\s*(\d+)/i.exec(head)?.[1] ?? '0';
        s.write(answer(method, url, cseq));
        if (method === 'PLAY') players.add(s);
      }
    });
  });
  const answer = (method: string, url: string, cseq: string): string => {
    if (opts.redirectTo) return `RTSP/1.0 302 Moved\r\nCSeq: ${cseq}\r\nLocation: ${opts.redirectTo}\r\n\r\n`;
    const ok = `RTSP/1.0 200 OK\r\nCSeq: ${cseq}\r\n`;
    if (method === 'OPTIONS') return `${ok}Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n\r\n`;
    if (method === 'DESCRIBE')
      return (
        `${ok}Content-Base: ${url.replace(/\/?$/, '/')}\r\nContent-Type: application/sdp\r\n` +
        `Content-Length: ${Buffer.byteLength(sdp)}\r\n\r\n${sdp}`
      );
    if (method === 'SETUP') return `${ok}Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nSession: 4242\r\n\r\n`;
    return `${ok}Session: 4242\r\n\r\n`;
  };
  await new Promise<void>((r) => server.listen(0, opts.host, () => r()));
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return {
    url: `rtsp://${opts.host}:${(server.address() as AddressInfo).port}/cam`,
    requests,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
      if (feeder && feeder.exitCode === null) {
        const gone = new Promise((r) => feeder!.once('exit', r));
        feeder.kill('SIGKILL');
        await gone;
      }
      udp?.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
