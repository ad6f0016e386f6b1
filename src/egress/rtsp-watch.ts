/**
 * Watches what an RTSP server sends its client (RFC 2326 / RFC 7826) and refuses redirects: a 3xx response
 * (ffmpeg follows one to any address while it connects: libavformat/rtsp.c, "Status %d: Redirecting to %s") or a
 * REDIRECT request from the server. Over TCP the stream interleaves text messages with binary frames
 * (`$`, channel, 16-bit big-endian length, payload: RFC 2326 10.12).
 *
 * The bytes are read the way ffmpeg's ff_rtsp_read_reply reads them, so both see the same messages: lines end at LF,
 * CR is dropped wherever it stands, a `$` at the start of a line is an interleaved frame (skipped, the message goes
 * on), an empty line ends the header, the status is the second word of a first line whose first word starts with
 * `RTSP/`, and Content-Length (the last one, read as C's strtol into an int) bytes of body follow. Any line that reads
 * as a 3xx status line or a REDIRECT request is refused, wherever it stands. A line is passed on only once it is
 * whole and judged; frames and bodies pass as they come.
 */

/** What to do with the bytes fed: pass these on, or refuse the connection (why, naming host and port only). */
export type Verdict = { pass: Buffer } | { refused: string };

/** Longest line ffmpeg keeps (its line buffer is 4096 bytes); the rest of a longer line is dropped, as there. */
const MAX_KEPT = 4095;
/** Longest line held back at all: a server sending more without a line end is refused. */
const MAX_LINE = 64 * 1024;

/** C's strtol of a Content-Length value, stored into an int (as ffmpeg's RTSPMessageHeader.content_length). */
function contentLength(text: string): number {
  const m = /^[ \t\n\v\f\r]*([+-]?)(\d+)/.exec(text);
  if (!m) return 0;
  let v = BigInt(m[2]!);
  const max = 2n ** 63n - 1n;
  if (v > max) v = m[1] === '-' ? max + 1n : max;
  return Number(BigInt.asIntN(32, m[1] === '-' ? -v : v));
}

/** The server side of one RTSP connection, fed in order (see the module comment). */
export class RtspWatch {
  private line = '';
  private raw: number[] = [];
  private lineCount = 0;
  private length = 0;
  /** Bytes of a frame payload or body still to pass unread. */
  private skip = 0;
  /** Bytes of a frame header (channel, length) read so far, or null outside one. */
  private frame: number[] | null = null;
  /** A redirect being read to its end (for its Location), never passed on. */
  private redirect: { what: string; location: string | null } | null = null;

  /** `server`: host:port of the RTSP server, for the refusal. */
  constructor(private readonly server: string) {}

  /** Judges the next bytes from the server. */
  feed(chunk: Buffer): Verdict {
    const out: Buffer[] = [];
    let i = 0;
    while (i < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i);
        out.push(chunk.subarray(i, i + n));
        this.skip -= n;
        i += n;
        continue;
      }
      const c = chunk[i++]!;
      if (this.frame) {
        this.frame.push(c);
        out.push(Buffer.of(c));
        if (this.frame.length === 3) {
          this.skip = (this.frame[1]! << 8) | this.frame[2]!;
          this.frame = null;
        }
        continue;
      }
      if (c === 0x24 && this.line === '' && !this.redirect) {
        out.push(Buffer.from(this.raw), Buffer.of(c));
        this.raw = [];
        this.frame = [];
        continue;
      }
      this.raw.push(c);
      if (c === 0x0d) continue;
      if (c !== 0x0a) {
        if (this.line.length < MAX_KEPT) this.line += String.fromCharCode(c);
        if (this.raw.length > MAX_LINE) return { refused: `the RTSP server ${this.server} sent a line over 64 KiB` };
        continue;
      }
      const refused = this.endLine();
      if (refused) return { refused };
      if (!this.redirect) out.push(Buffer.from(this.raw));
      this.raw = [];
    }
    return { pass: Buffer.concat(out) };
  }

  /** The server closed the connection: a redirect being read is refused even without its end. */
  end(): string | null {
    return this.redirect ? this.refusal() : null;
  }

  private refusal(): string {
    const r = this.redirect!;
    let to = 'an unnamed location';
    try {
      const u = r.location ? new URL(r.location) : null;
      if (u) to = `${u.protocol}//${u.hostname}${u.port ? `:${u.port}` : ''}`;
    } catch {
      to = 'a location that is not a URL';
    }
    return `redirect to ${to} refused (the RTSP server ${this.server} ${r.what}; redirects are not followed)`;
  }

  /** A whole line was read: judge it. Returns a refusal, or null. */
  private endLine(): string | null {
    const line = this.line;
    this.line = '';
    if (line === '') {
      if (this.redirect) return this.refusal();
      if (this.lineCount > 0 && this.length > 0) this.skip = this.length;
      this.lineCount = 0;
      this.length = 0;
      return null;
    }
    const [first = '', second = ''] = line.split(/[ \t\r\n]+/).filter(Boolean);
    const status = first.startsWith('RTSP/') ? contentLength(second) : 0; // atoi
    if (status >= 300 && status < 400) this.redirect ??= { what: `answered ${status}`, location: null };
    else if (first.toUpperCase() === 'REDIRECT') this.redirect ??= { what: 'sent a REDIRECT request', location: null };
    if (this.lineCount > 0) {
      const location = /^location:[ \t]*(.*)$/i.exec(line);
      if (location && this.redirect) this.redirect.location = location[1]!;
      const length = /^content-length:(.*)$/i.exec(line);
      if (length) this.length = contentLength(length[1]!);
    }
    this.lineCount++;
    return null;
  }
}
