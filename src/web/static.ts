import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CORS_HEADERS, sendJson } from './http.js';

const require = createRequire(import.meta.url);
const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../web');

/** Player libraries served from the npm packages themselves (no CDN): URL name → file. */
const LIBS: Record<string, string> = {
  'hls.min.js': require.resolve('hls.js/dist/hls.min.js'),
  'mpegts.js': require.resolve('mpegts.js/dist/mpegts.js'),
};

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** Serves the web player: `/player/` (index.html), its own files, and `/player/lib/<hls.min.js|mpegts.js>`. */
export function servePlayer(req: IncomingMessage, res: ServerResponse, rel: string): void {
  serveWebFile(req, res, 'player', rel);
}

/** Serves the WHIP publisher page: `/publish/` (index.html) and its own files (plain JS, the browser's WebRTC). */
export function servePublisher(req: IncomingMessage, res: ServerResponse, rel: string): void {
  serveWebFile(req, res, 'publish', rel);
}

function serveWebFile(req: IncomingMessage, res: ServerResponse, page: 'player' | 'publish', rel: string): void {
  const name = rel === '' ? 'index.html' : rel;
  const lib = page === 'player' && name.startsWith('lib/') ? LIBS[name.slice(4)] : undefined;
  const file = lib ?? (/^[a-z0-9-]+\.(html|js|css|svg)$/.test(name) ? path.join(WEB, page, name) : null);
  const missing = { code: 404, message: `no such ${page} file`, hint: `open /${page}/` };
  if (!file) return sendJson(res, 404, missing);
  fs.stat(file, (err, st) => {
    if (err || !st.isFile()) return sendJson(res, 404, missing);
    res.writeHead(200, {
      ...CORS_HEADERS,
      'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream',
      'Content-Length': st.size,
      'Cache-Control': 'no-cache',
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    fs.createReadStream(file)
      .on('error', () => res.destroy())
      .pipe(res);
  });
}
