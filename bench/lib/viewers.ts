/** What a viewer sees: the first FLV keyframe, the first HLS segment, the wall-clock time of every video tag. */
import http from 'node:http';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Calls `onTag(type, keyframe)` for each complete FLV tag of a byte stream. */
function flvTags(onTag: (type: number, keyframe: boolean) => boolean | void): (d: Buffer) => void {
  let buf = Buffer.alloc(0);
  let off = 13; // FLV header + first PreviousTagSize
  return (d) => {
    buf = Buffer.concat([buf, d]);
    while (off + 11 <= buf.length) {
      const size = buf.readUIntBE(off + 1, 3);
      if (off + 11 + size + 4 > buf.length) break;
      if (onTag(buf[off]!, buf[off] === 9 && buf[off + 11]! >> 4 === 1) === true) return;
      off += 11 + size + 4;
    }
    // keep only the unparsed tail: copying a growing buffer per chunk starves the bench's own event loop with many viewers
    if (off <= buf.length) { buf = buf.subarray(off); off = 0; }
  };
}

/** ms from now until an HTTP-FLV URL delivers a video keyframe tag (retrying while it answers 404). */
export function firstKeyframe(url: string, timeoutMs = 15000): Promise<number> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    let req: http.ClientRequest | null = null;
    let done = false;
    const deadline = setTimeout(() => { done = true; req?.destroy(); reject(new Error(`no keyframe at ${url} in ${timeoutMs} ms`)); }, timeoutMs);
    const attempt = () => {
      if (done) return;
      req = http.get(url, (res) => {
        if (res.statusCode !== 200) { res.resume(); setTimeout(attempt, 20); return; }
        res.on('data', flvTags((_type, key) => {
          if (!key || done) return false;
          done = true;
          clearTimeout(deadline);
          req?.destroy();
          resolve(Date.now() - t0);
          return true;
        }));
      });
      req.on('error', () => setTimeout(attempt, 20));
    };
    attempt();
  });
}

/** ms from now until a playlist lists a segment. */
export async function firstSegment(url: string, timeoutMs = 15000): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    const text = await fetch(url).then((r) => (r.ok ? r.text() : '')).catch(() => '');
    if (text.includes('#EXTINF')) return Date.now() - t0;
    await sleep(20);
  }
  throw new Error(`no segment at ${url} in ${timeoutMs} ms`);
}

/** An HTTP-FLV viewer that notes the wall-clock time of every video tag and counts bytes. */
export class FlvWatcher {
  readonly videoTimes: number[] = [];
  bytes = 0;
  private readonly req: http.ClientRequest;

  constructor(url: string) {
    const parse = flvTags((type) => { if (type === 9) this.videoTimes.push(Date.now()); });
    this.req = http.get(url, (res) => res.on('data', (d: Buffer) => { this.bytes += d.length; parse(d); }));
    this.req.on('error', () => undefined);
  }

  /** Largest wall-clock gap between video tags received from `from` - 1 s on. */
  maxGapSince(from: number): number {
    const t = this.videoTimes.filter((x) => x >= from - 1000);
    return t.length < 2 ? Infinity : Math.max(...t.slice(1).map((x, i) => x - t[i]!));
  }

  close(): void { this.req.destroy(); }
}
