import fs from 'node:fs';
import path from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** CORS headers on every media response, so players on other origins can fetch playlists, segments and FLV. */
export const CORS_HEADERS: Readonly<Record<string, string>> = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'GET, HEAD, OPTIONS',
  'Access-Control-Allow-Headers': 'Range, Content-Type, Authorization',
  'Access-Control-Expose-Headers': 'Content-Length, Content-Range',
};

/** Files a channel's HLS folder may hold; anything else is not served. */
const HLS_FILE = /^(index\.m3u8|seg_\d{1,9}\.ts)$/;

/** Writes a JSON refusal with CORS headers. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const data = JSON.stringify(body);
  res.writeHead(status, {
    ...CORS_HEADERS,
    ...headers,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(data),
  });
  res.end(data);
}

/** Headers of an HTTP-FLV answer: the FLV media type players and CDNs use (`video/x-flv`), no caching, CORS. */
export const FLV_HEADERS: Readonly<Record<string, string>> = {
  ...CORS_HEADERS,
  'Content-Type': 'video/x-flv',
  'Cache-Control': 'no-cache, no-store',
};

/**
 * Prepares a response that another handler (node-media-server's express app) streams HTTP-FLV on: the FLV headers
 * are set, and a header that only advertises the server software (`X-Powered-By`, which express adds) is never sent.
 */
export function prepareFlvResponse(res: ServerResponse): void {
  for (const [k, v] of Object.entries(FLV_HEADERS)) res.setHeader(k, v);
  const setHeader = res.setHeader.bind(res);
  res.setHeader = (name, value) => (name.toLowerCase() === 'x-powered-by' ? res : setHeader(name, value));
}

/**
 * Serves `<hlsRoot>/<dir>/<file>` for a checked folder and file name; 404 JSON when absent. A playlist of a protected
 * channel gets the play token on each URI (`rewrite`), so players carry it to segments and variants.
 */
export function serveHlsFile(
  req: IncomingMessage,
  res: ServerResponse,
  hlsRoot: string,
  dir: string,
  file: string,
  rewrite?: (text: string) => string,
): void {
  if (!HLS_FILE.test(file))
    return sendJson(res, 404, {
      code: 404,
      message: 'no such HLS file',
      hint: 'play the index.m3u8 URL returned by push/start',
    });
  const full = path.join(hlsRoot, dir, file);
  const isPlaylist = file.endsWith('.m3u8');
  fs.stat(full, (err, st) => {
    if (err || !st.isFile())
      return sendJson(res, 404, {
        code: 404,
        message: isPlaylist ? 'no playlist yet for this channel' : 'segment no longer available',
        hint: 'check the channel is live (GET /v1/push/{channelId})',
      });
    if (isPlaylist && rewrite) {
      fs.readFile(full, 'utf8', (e, text) => {
        if (e) return sendJson(res, 404, { code: 404, message: 'no playlist yet for this channel', hint: 'retry' });
        const body = rewrite(text);
        res.writeHead(200, {
          ...CORS_HEADERS,
          'Content-Type': 'application/vnd.apple.mpegurl',
          'Content-Length': Buffer.byteLength(body),
          'Cache-Control': 'no-cache, no-store',
        });
        res.end(req.method === 'HEAD' ? undefined : body);
      });
      return;
    }
    res.writeHead(200, {
      ...CORS_HEADERS,
      'Content-Type': isPlaylist ? 'application/vnd.apple.mpegurl' : 'video/mp2t',
      'Content-Length': st.size,
      'Cache-Control': isPlaylist ? 'no-cache, no-store' : 'public, max-age=60',
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const stream = fs.createReadStream(full);
    stream.on('error', () => res.destroy());
    stream.pipe(res);
  });
}
