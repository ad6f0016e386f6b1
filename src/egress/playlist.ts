/**
 * HLS playlists as the egress gateway hands them to ffmpeg: every URI they name (RFC 8216 and its draft successor:
 * URI lines, and the URI attribute of EXT-X-KEY, EXT-X-SESSION-KEY, EXT-X-MAP, EXT-X-MEDIA, EXT-X-I-FRAME-STREAM-INF,
 * EXT-X-PART, EXT-X-PRELOAD-HINT, EXT-X-RENDITION-REPORT, or of any other tag) is resolved against the playlist's own
 * URL and written back absolute, in gateway form, so ffmpeg asks the gateway for each of them; a URI of any scheme but
 * http or https refuses the whole playlist.
 *
 * What ffmpeg reads as a URI is decided the way its hls demuxer reads a playlist (libavformat/hls.c, 4.1 to 7.x):
 * lines end at LF, CR or CRLF (and at NUL, which is refused outright); a line not starting with `#` is a URI (leading
 * blanks included); tag attributes are read by ff_parse_key_value — `NAME=value` pairs after the tag's colon,
 * separated by commas or blanks, a value quoted (with backslash escapes) or running to the next comma or blank. Every
 * attribute whose name ends in URI is rewritten, in every `#EXT` line, whatever ffmpeg makes of that tag.
 */
import { isGatewayScheme, toGatewayUrl } from './gateway-form.js';

/** Whether a Content-Type names an HLS playlist (application/vnd.apple.mpegurl, audio/mpegurl, their x- forms). */
export function isPlaylistType(contentType: string | undefined): boolean {
  return /mpegurl/i.test(contentType ?? '');
}

/** How many bytes of a body decide whether it is a playlist (a shorter body is decided when it ends). */
export const SNIFF_BYTES = 64;

/**
 * Whether a body beginning with `head` is read as a playlist: `#EXTM3U` at its start (after a UTF-8 byte order mark
 * and blanks, which ffmpeg does not skip, to be safe). `undefined` while `head` is too short to tell.
 */
export function looksLikePlaylist(head: Buffer, ended: boolean): boolean | undefined {
  let i = head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf ? 3 : 0;
  while (i < head.length && isBlank(String.fromCharCode(head[i]!))) i++;
  const rest = head.subarray(i, i + 7).toString('latin1');
  if (rest === '#EXTM3U') return true;
  if (!ended && '#EXTM3U'.startsWith(rest) && head.length < SNIFF_BYTES) return undefined;
  return false;
}

/** C's isspace in the C locale (ffmpeg's av_isspace), not JavaScript's wider \s. */
const isBlank = (c: string | undefined) => c !== undefined && /^[ \t\n\v\f\r]$/.test(c);
const asciiTrim = (s: string) => s.replace(/^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g, '');

/** Longest line ffmpeg reads whole (MAX_URL_SIZE - 1); a longer rewritten line would be cut. */
const MAX_LINE = 4095;

/** A playlist rewritten for ffmpeg, or why it is refused (the reason names hosts and ports only). */
export type Rewritten = { body: Buffer } | { refused: string };

/**
 * Rewrites a playlist `body` fetched from `base` (its URL at the origin, after redirects) for the gateway at
 * `gateway` (`http://127.0.0.1:<port>`). Bytes other than the URIs are kept as they are.
 */
export function rewritePlaylist(body: Buffer, base: URL, gateway: string): Rewritten {
  const where = `a playlist of the upstream (${base.host})`;
  if (body.includes(0)) return { refused: `${where} holds a NUL byte` };
  const parts = body.toString('latin1').split(/(\r\n|\r|\n)/);
  const out: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const line = parts[i]!;
    if (i % 2 === 1 || asciiTrim(line) === '' || (line.startsWith('#') && !/^#EXT/i.test(line))) {
      out.push(line);
      continue;
    }
    const done = line.startsWith('#') ? rewriteTag(line, base, gateway) : gatewayOf(asciiTrim(line), base, gateway);
    if (typeof done !== 'string') return { refused: `${where} ${done.refused}` };
    if (done.length > MAX_LINE) return { refused: `${where} names a URI too long to pass on` };
    out.push(done);
  }
  return { body: Buffer.from(out.join(''), 'latin1') };
}

/** The gateway URL of one URI of the playlist (raw: latin1 text of its UTF-8 bytes), or why it is refused. */
function gatewayOf(raw: string, base: URL, gateway: string): string | { refused: string } {
  let url: URL;
  try {
    url = new URL(Buffer.from(raw, 'latin1').toString('utf8'), base);
  } catch {
    return { refused: 'names a URI that is not a URL' };
  }
  if (!isGatewayScheme(url)) {
    const to = url.host ? ` (to ${url.host})` : '';
    return { refused: `names a URI of scheme ${url.protocol}${to}, which is refused: only http and https are fetched` };
  }
  return toGatewayUrl(gateway, url);
}

/** A tag line with the value of every attribute named …URI replaced by its quoted gateway URL. */
function rewriteTag(line: string, base: URL, gateway: string): string | { refused: string } {
  const colon = line.indexOf(':');
  if (colon < 0) return line;
  let out = line.slice(0, colon + 1);
  let copied = colon + 1;
  let i = colon + 1;
  // ff_parse_key_value, step by step
  for (;;) {
    while (i < line.length && (isBlank(line[i]) || line[i] === ',')) i++;
    const eq = line.indexOf('=', i);
    if (i >= line.length || eq < 0) break;
    const key = line.slice(i, eq).trim().toUpperCase();
    const from = eq + 1;
    let value = '';
    i = from;
    if (line[i] === '"') {
      for (i++; i < line.length && line[i] !== '"';) {
        if (line[i] === '\\') {
          if (i + 1 >= line.length) break;
          value += line[i + 1];
          i += 2;
        } else value += line[i++];
      }
      if (line[i] === '"') i++;
    } else for (; i < line.length && !isBlank(line[i]) && line[i] !== ','; i++) value += line[i];
    if (!key.endsWith('URI')) continue;
    const url = gatewayOf(value, base, gateway);
    if (typeof url !== 'string') return url;
    out += `${line.slice(copied, from)}"${url.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
    copied = i;
  }
  return out + line.slice(copied);
}
