import { execFile } from 'node:child_process';
import http from 'node:http';
import { promisify } from 'node:util';
import { FFMPEG } from './stack.js';

const run = promisify(execFile);

// the FLV tag reader is the player's (src/player/flv.ts): one parser for the product and the tests
export { flvTags, isKeyframe, type FlvTag } from '../../src/player/flv.js';
import { flvTags, isKeyframe } from '../../src/player/flv.js';

/** An HTTP-FLV viewer that notes the wall-clock time of every video tag and counts bytes. */
export class FlvWatcher {
  readonly videoTimes: number[] = [];
  bytes = 0;
  private readonly req: http.ClientRequest;

  constructor(url: string) {
    const parse = flvTags((t) => {
      if (t.type === 9) this.videoTimes.push(Date.now());
    });
    this.req = http.get(url, (res) =>
      res.on('data', (d: Buffer) => {
        this.bytes += d.length;
        parse(d);
      }),
    );
    this.req.on('error', () => undefined);
  }

  /** Largest wall-clock gap between video tags received from `from` - 1 s on. */
  maxGapSince(from: number): number {
    const t = this.videoTimes.filter((x) => x >= from - 1000);
    return t.length < 2 ? Infinity : Math.max(...t.slice(1).map((x, i) => x - t[i]!));
  }

  close(): void {
    this.req.destroy();
  }
}

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
export function readFlv(
  url: string,
  opts: { timeoutMs?: number; stopWhen?: (s: FlvSummary) => boolean; keepOpen?: boolean } = {},
): Promise<{ summary: FlvSummary; closed: Promise<void>; destroy(): void }> {
  const stopWhen = opts.stopWhen ?? ((s) => s.keyframe && s.aacFrames > 0);
  return new Promise((resolve, reject) => {
    const s: FlvSummary = {
      status: 0,
      signature: '',
      avcSequenceHeader: false,
      keyframe: false,
      aacSequenceHeader: false,
      aacFrames: 0,
      videoTags: 0,
      bytes: 0,
    };
    let done = false;
    let closedResolve: () => void = () => undefined;
    const closed = new Promise<void>((r) => {
      closedResolve = r;
    });
    const parse = flvTags(({ type, body }) => {
      if (type === 9 && (body[0]! & 15) === 7) {
        s.videoTags++;
        if (body[1] === 0) s.avcSequenceHeader = true;
        if (body[1] === 1 && body[0]! >> 4 === 1) s.keyframe = true;
      }
      if (type === 8 && body[0]! >> 4 === 10) {
        if (body[1] === 0) s.aacSequenceHeader = true;
        else s.aacFrames++;
      }
    });
    let req: http.ClientRequest;
    const get = (at: string, hops: number): http.ClientRequest =>
      (req = http.get(at, (res) => {
        s.status = res.statusCode ?? 0;
        // a media node sends a play of a channel on another node there (README "Scaling out"), as players follow
        if (s.status >= 301 && s.status <= 308 && res.headers.location && hops < 3) {
          res.resume();
          get(new URL(res.headers.location, at).toString(), hops + 1).on('error', onError);
          return;
        }
        onResponse(res);
      }));
    const onResponse = (res: http.IncomingMessage) => {
      res.on('data', (d: Buffer) => {
        s.bytes += d.length;
        if (s.signature.length < 3) s.signature += d.toString('latin1', 0, 3 - s.signature.length);
        parse(d);
        if (!done && stopWhen(s)) {
          done = true;
          clearTimeout(timer);
          if (!opts.keepOpen) req.destroy();
          resolve({ summary: s, closed, destroy: () => req.destroy() });
        }
      });
      res.on('end', closedResolve);
      res.on('close', closedResolve);
    };
    const onError = (e: Error) => {
      closedResolve();
      if (!done) {
        done = true;
        reject(e);
      }
    };
    get(url, 0).on('error', onError);
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
  const args = [
    '-hide_banner',
    '-nostdin',
    '-rw_timeout',
    '10000000',
    '-i',
    input,
    ...(opts.frames ? ['-frames:v', String(opts.frames)] : []),
    '-f',
    'null',
    '-',
  ];
  const fileArgs = /^[a-z]+:\/\//.test(input)
    ? args
    : args.filter((a, i) => !(a === '-rw_timeout' || args[i - 1] === '-rw_timeout'));
  const { stderr } = await run(FFMPEG, fileArgs, { timeout: opts.timeoutMs ?? 30000, maxBuffer: 8 << 20 });
  const video = /Stream #0:\d+.*?: Video: (\w+).*?, (\d{2,5})x(\d{2,5})/.exec(stderr);
  const audio = /Stream #0:\d+.*?: Audio: (\w+)/.exec(stderr);
  const frames = [...stderr.matchAll(/frame=\s*(\d+)/g)].pop();
  const time = [...stderr.matchAll(/time=(\d+):(\d+):([\d.]+)/g)].pop();
  if (!video) throw new Error(`no video stream decoded from ${input}:\n${stderr.slice(-800)}`);
  return {
    videoCodec: video[1]!,
    width: Number(video[2]),
    height: Number(video[3]),
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

/** What a stretch of an FLV stream carried, by its own timestamps. */
export interface FlvWindow {
  /** Audio + video payload bytes per second of stream time, as kbit/s. */
  kbps: number;
  videoKbps: number;
  /** Timestamps (ms) of video keyframes. */
  keyframes: number[];
  spanMs: number;
}

/** Reads an HTTP-FLV stream until it has `seconds` of stream time and measures bitrate and keyframe spacing. */
export function measureFlv(url: string, seconds: number, timeoutMs = seconds * 1000 + 15000): Promise<FlvWindow> {
  return new Promise((resolve, reject) => {
    let first = -1;
    let bytes = 0;
    let videoBytes = 0;
    const keyframes: number[] = [];
    const parse = flvTags((tag) => {
      const { type, ts, body } = tag;
      if (!((type === 9 || type === 8) && body[1] === 1)) return false;
      if (first < 0) first = ts;
      // the GOP cache burst is included: bytes and time both come from the stream itself
      bytes += body.length;
      if (type === 9) videoBytes += body.length;
      if (isKeyframe(tag)) keyframes.push(ts);
      if (ts - first < seconds * 1000) return false;
      clearTimeout(timer);
      req.destroy();
      const span = ts - first;
      resolve({ kbps: (bytes * 8) / span, videoKbps: (videoBytes * 8) / span, keyframes, spanMs: span });
      return true;
    });
    const req = http.get(url, (res) => res.on('data', parse));
    req.on('error', reject);
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`FLV ${url}: not ${seconds} s of stream in time`));
    }, timeoutMs);
  });
}

/** Decodes the first video frame of an input as 8-bit gray pixels, scaled to width x height. */
export async function grabGray(input: string, width: number, height: number, seekSeconds = 0): Promise<Buffer> {
  const args = [
    '-hide_banner',
    '-nostdin',
    '-loglevel',
    'error',
    ...(seekSeconds ? ['-ss', String(seekSeconds)] : []),
    '-i',
    input,
    '-frames:v',
    '1',
    '-vf',
    `scale=${width}:${height}`,
    '-f',
    'rawvideo',
    '-pix_fmt',
    'gray',
    '-',
  ];
  const { stdout } = (await run(FFMPEG, args, {
    encoding: 'buffer',
    timeout: 20000,
    maxBuffer: 32 << 20,
  })) as unknown as { stdout: Buffer };
  if (stdout.length !== width * height)
    throw new Error(`expected ${width * height} gray bytes from ${input}, got ${stdout.length}`);
  return stdout;
}

/** Mean absolute difference of two gray frames inside a rectangle (or outside it, when `outside`). */
export function meanDiff(
  a: Buffer,
  b: Buffer,
  width: number,
  rect: { x: number; y: number; w: number; h: number },
  outside = false,
): number {
  let sum = 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    const x = i % width;
    const y = Math.floor(i / width);
    const inside = x >= rect.x && x < rect.x + rect.w && y >= rect.y && y < rect.y + rect.h;
    if (inside === outside) continue;
    sum += Math.abs(a[i]! - b[i]!);
    n++;
  }
  return n ? sum / n : 0;
}
