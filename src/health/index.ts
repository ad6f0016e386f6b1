/**
 * Liveness and readiness of a relay process, as Kubernetes and Docker probe them: `/livez` answers 200 while the
 * process's event loop runs (restart it when not); `/readyz` answers 200 only when what this process needs to do its
 * work answers (send it traffic when so), else 503 naming each failing check. Each process checks its own needs: the
 * API Redis, a live media node and a worker heartbeat; a media process Redis and its RTMP listener; a worker Redis,
 * its ffmpeg and a live media node.
 */
import fs from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import type { Redis } from 'ioredis';

/** One check: resolves null when fine, or what is wrong. */
export type Check = () => Promise<string | null>;

/** What `/readyz` answers. */
export interface Readiness {
  ready: boolean;
  /** Per check: `ok`, or what is wrong. */
  checks: Record<string, string>;
}

/** A check that does not answer within this long fails. */
const CHECK_TIMEOUT_MS = 2000;

/** Runs every check at once, each bounded by CHECK_TIMEOUT_MS. */
export async function readiness(checks: Record<string, Check>, timeoutMs = CHECK_TIMEOUT_MS): Promise<Readiness> {
  const results = await Promise.all(
    Object.entries(checks).map(async ([name, check]) => {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve(`no answer within ${timeoutMs} ms`), timeoutMs);
      });
      const problem = await Promise.race([check().catch((e: Error) => e.message || 'failed'), late]);
      clearTimeout(timer);
      return [name, problem ?? 'ok'] as const;
    }),
  );
  return { ready: results.every(([, r]) => r === 'ok'), checks: Object.fromEntries(results) };
}

/** The HTTP status and JSON body of `/readyz` for `r` (none: ready while the process runs). */
export function readyzAnswer(r: Readiness | undefined): { status: 200 | 503; body: Readiness & { code: number } } {
  const got = r ?? { ready: true, checks: {} };
  return { status: got.ready ? 200 : 503, body: { code: got.ready ? 0 : 503, ...got } };
}

/** Redis answers PING. */
export const redisCheck =
  (redis: Pick<Redis, 'ping'>): Check =>
  async () =>
    (await redis.ping()) === 'PONG' ? null : 'Redis did not answer PONG';

/** A TCP listener accepts connections at host:port (the media server's RTMP port). */
export const listeningCheck =
  (host: string, port: number, what: string): Check =>
  () =>
    new Promise((resolve) => {
      const s = net.connect({ host, port });
      const done = (problem: string | null) => {
        s.destroy();
        resolve(problem);
      };
      s.once('connect', () => done(null));
      s.once('error', (e) => done(`${what} at ${host}:${port}: ${e.message}`));
    });

/** The ffmpeg binary is there and executable. */
export const ffmpegCheck =
  (ffmpegPath: string): Check =>
  async () => {
    try {
      await fs.access(ffmpegPath, fs.constants.X_OK);
      return null;
    } catch {
      return `ffmpeg at ${ffmpegPath} is not executable (see README "ffmpeg")`;
    }
  };

/** At least one of something live (media nodes, workers) is known. */
export const someAlive =
  (what: string, count: () => Promise<number>): Check =>
  async () =>
    (await count()) > 0 ? null : `no live ${what} in this cluster (RELAY_REDIS_PREFIX)`;

/** The address to probe a listener bound to `bind` at (a wildcard bind is reached on loopback). */
export function probeHost(bind: string): string {
  return bind === '0.0.0.0' || bind === '::' || bind === '' ? '127.0.0.1' : bind;
}

/**
 * A tiny HTTP server answering only `/livez` and `/readyz` (for a process without another HTTP port: a worker);
 * resolves once listening, with its close.
 */
export async function serveHealth(
  port: number,
  host: string,
  ready: () => Promise<Readiness>,
): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
      res.end(JSON.stringify(body));
    };
    const url = (req.url ?? '').split('?')[0];
    if (url === '/livez') return send(200, { code: 0, live: true });
    if (url !== '/readyz') return send(404, { code: 404, message: 'not found', hint: 'GET /livez or /readyz' });
    void ready().then((r) => {
      const a = readyzAnswer(r);
      send(a.status, a.body);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
