import { execFile } from 'node:child_process';
import http from 'node:http';
import { promisify } from 'node:util';
import { FFMPEG } from './stack.js';

const run = promisify(execFile);

/** What an HTTP-FLV reader saw. */
export interface FlvSummary {
  status: number;
  signature: string;
  avcSequenceHeader: boolean;
  keyframe: boolean;
  aacSequenceHeader: boolean;
  aacFrames: number;
  videoTags: number;
  bytes: number;
}

/**
 * Reads an HTTP-FLV stream and parses its tags until `stopWhen` holds (then resolves, connection kept if `keepOpen`)
 * or the timeout passes (rejects). `closed` resolves when the server ends the response.
 */
export function readFlv(url: string, opts: { timeoutMs?: number; stopWhen?: (s: FlvSummary) => boolean; keepOpen?: boolean } = {}):
  Promise<{ summary: FlvSummary; closed: Promise<void>; destroy(): void }> {
  const stopWhen = opts.stopWhen ?? ((s) => s.keyframe && s.aacFrames > 0);
  return new Promise((resolve, reject) => {
    const s: FlvSummary = { status: 0, signature: '', avcSequenceHeader: false, keyframe: false, aacSequenceHeader: false, aacFrames: 0, videoTags: 0, bytes: 0 };
    let buf = Buffer.alloc(0);
    let off = 13;
    let done = false;
    let closedResolve: () => void = () => undefined;
    const closed = new Promise<void>((r) => { closedResolve = r; });
    const req = http.get(url, (res) => {
      s.status = res.statusCode ?? 0;
      res.on('data', (d: Buffer) => {
        s.bytes += d.length;
        buf = Buffer.concat([buf, d]);
        if (buf.length >= 3) s.signature = buf.toString('latin1', 0, 3);
        while (off + 11 <= buf.length) {
          const type = buf[off]!;
          const size = buf.readUIntBE(off + 1, 3);
          if (off + 11 + size + 4 > buf.length) break;
          const b0 = buf[off + 11]!;
          if (type === 9 && (b0 & 15) === 7) {
            s.videoTags++;
            if (buf[off + 12] === 0) s.avcSequenceHeader = true;
            if (buf[off + 12] === 1 && b0 >> 4 === 1) s.keyframe = true;
          }
          if (type === 8 && b0 >> 4 === 10) {
            if (buf[off + 12] === 0) s.aacSequenceHeader = true; else s.aacFrames++;
          }
          off += 11 + size + 4;
        }
        if (!done && stopWhen(s)) {
          done = true;
          clearTimeout(timer);
          if (!opts.keepOpen) req.destroy();
          resolve({ summary: s, closed, destroy: () => req.destroy() });
        }
      });
      res.on('end', closedResolve);
      res.on('close', closedResolve);
    });
    req.on('error', (e) => { closedResolve(); if (!done) { done = true; reject(e); } });
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      req.destroy();
      reject(new Error(`FLV at ${url} did not satisfy the condition in time: ${JSON.stringify(s)}`));
    }, opts.timeoutMs ?? 15000);
  });
}

/** What ffmpeg decoded from an input. */
export interface Decoded {
  width: number;
  height: number;
  videoCodec: string;
  audioCodec: string | null;
  frames: number;
  /** Decoded duration in seconds (ffmpeg's final time=). */
  seconds: number;
}

/** Decodes an input (file or URL) with ffmpeg to a null sink and reports its video size, codecs, frames and duration. */
export async function decode(input: string, opts: { frames?: number; timeoutMs?: number } = {}): Promise<Decoded> {
  const args = ['-hide_banner', '-nostdin', '-rw_timeout', '10000000', '-i', input, ...(opts.frames ? ['-frames:v', String(opts.frames)] : []), '-f', 'null', '-'];
  const fileArgs = /^[a-z]+:\/\//.test(input) ? args : args.filter((a, i) => !(a === '-rw_timeout' || args[i - 1] === '-rw_timeout'));
  const { stderr } = await run(FFMPEG, fileArgs, { timeout: opts.timeoutMs ?? 30000, maxBuffer: 8 << 20 });
  const video = /Stream #0:\d+.*?: Video: (\w+).*?, (\d{2,5})x(\d{2,5})/.exec(stderr);
  const audio = /Stream #0:\d+.*?: Audio: (\w+)/.exec(stderr);
  const frames = [...stderr.matchAll(/frame=\s*(\d+)/g)].pop();
  const time = [...stderr.matchAll(/time=(\d+):(\d+):([\d.]+)/g)].pop();
  if (!video) throw new Error(`no video stream decoded from ${input}:\n${stderr.slice(-800)}`);
  return {
    videoCodec: video[1]!, width: Number(video[2]), height: Number(video[3]),
    audioCodec: audio ? audio[1]! : null,
    frames: frames ? Number(frames[1]) : 0,
    seconds: time ? Number(time[1]) * 3600 + Number(time[2]) * 60 + Number(time[3]) : 0,
  };
}

/** Fetches a text URL; null on 404. */
export async function fetchText(url: string): Promise<string | null> {
  const res = await fetch(url);
  if (res.status === 404) return null;
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.text();
}
