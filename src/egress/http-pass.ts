/** Passing HTTP messages on, one hop to the next: end-to-end headers, content decoding, writes with backpressure. */
import type http from 'node:http';
import zlib from 'node:zlib';

/** Headers that belong to one hop (RFC 9110 7.6.1) and are not passed on. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);
export const endToEnd = (h: http.IncomingHttpHeaders): http.OutgoingHttpHeaders =>
  Object.fromEntries(Object.entries(h).filter(([k]) => !HOP_BY_HOP.has(k)));

/**
 * A decoder for a Content-Encoding. ffmpeg inflates any coding whose name starts with gzip or deflate (gzip or zlib
 * data); the gateway decodes those (and br, x-gzip) itself and drops the header in every case, so ffmpeg reads exactly
 * the bytes the gateway looked at.
 */
export function decoderFor(coding: string): NodeJS.ReadWriteStream | null {
  if (/^(x-)?gzip|^deflate/i.test(coding)) return zlib.createUnzip();
  if (/^br$/i.test(coding)) return zlib.createBrotliDecompress();
  return null;
}

/** Writes a chunk, waiting while the client's socket is full (resolves early if it closes). */
export function write(res: http.ServerResponse, chunk: Buffer): Promise<void> {
  if (res.destroyed) throw new Error('client gone');
  if (res.write(chunk)) return Promise.resolve();
  return new Promise((resolve) => {
    const go = () => {
      res.off('drain', go);
      res.off('close', go);
      resolve();
    };
    res.on('drain', go);
    res.on('close', go);
  });
}
