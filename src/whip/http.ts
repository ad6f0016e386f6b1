import type { IncomingMessage, ServerResponse } from 'node:http';
import { RelayError } from '../errors/index.js';
import { parseIngestStreamName } from '../rooms/ingest.js';

/** CORS headers of every WHIP answer: browsers on other origins POST offers and read `Location`. */
export const WHIP_CORS: Readonly<Record<string, string>> = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'POST, DELETE, PATCH, OPTIONS',
  'Access-Control-Allow-Headers': 'Authorization, Content-Type, If-Match',
  'Access-Control-Expose-Headers': 'Location, ETag, Accept-Patch, Link',
  'Access-Control-Max-Age': '600',
};

/** Largest SDP offer read (a browser's is 4-12 KiB). */
export const MAX_OFFER_BYTES = 64 * 1024;

/** What a WHIP request path names. */
export type WhipRoute =
  { kind: 'endpoint'; streamName: string } | { kind: 'session'; id: string } | { kind: 'not-found' };

const ENDPOINT = /^\/whip\/(\d{1,20})\/(\d{1,10})\/([A-Za-z0-9_-]{1,32})\/(camera|screen)$/;
const SESSION = /^\/whip\/session\/([0-9a-f]{32})$/;

/** Whether a request URL is one of WHIP's. */
export function isWhipUrl(url: string | undefined): boolean {
  return !!url && (url === '/whip' || url.startsWith('/whip/'));
}

/** The WHIP route of a request URL (its query ignored). */
export function whipRouteOf(rawUrl: string): WhipRoute {
  const p = rawUrl.split('?')[0]!;
  const e = ENDPOINT.exec(p);
  if (e) {
    const name = `${e[1]}_${e[2]}_${e[3]}_${e[4]}`;
    return parseIngestStreamName(name) ? { kind: 'endpoint', streamName: name } : { kind: 'not-found' };
  }
  const s = SESSION.exec(p);
  return s ? { kind: 'session', id: s[1]! } : { kind: 'not-found' };
}

/** The bearer token of an Authorization header; null when there is none. */
export function bearerOf(header: string | undefined): string | null {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m ? m[1]! : null;
}

/** Writes a WHIP refusal: the product's JSON error body with CORS and any extra headers. */
export function sendRefusal(res: ServerResponse, e: RelayError, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const data = JSON.stringify(e.toBody());
  res.writeHead(e.status, {
    ...WHIP_CORS,
    ...headers,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(data),
  });
  res.end(data);
}

/** A 405 naming the methods the resource allows (RFC 9725: PATCH without trickle ICE support is answered so). */
export function methodNotAllowed(method: string, allow: string): RelayError {
  return new RelayError(50002, `${method} is not allowed here`, {
    status: 405,
    hint: `allowed: ${allow}${method === 'PATCH' ? ' (no trickle ICE: send the offer with all its candidates)' : ''}`,
  });
}

/** Reads a request body up to `max` bytes; rejects with 413 beyond. */
export function readBody(req: IncomingMessage, max: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const tooLarge = () => {
      reject(new RelayError(50002, `the offer is over ${max} bytes`, { status: 413, hint: 'send one SDP offer' }));
      // the rest is read and dropped, so the client gets the 413 answer instead of a reset connection
      req.removeAllListeners('data');
      req.resume();
    };
    if (Number(req.headers['content-length'] ?? 0) > max) return tooLarge();
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) return tooLarge();
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
