/**
 * Where a play URL's bytes come from: the protocol a URL names, HTTP-FLV and WS-FLV read by the probe (their bytes go
 * to the decoder's stdin and through the FLV byte accounting), a server's refusal with its reason, and the relay's
 * channel clock (`/status/{channelId}` of its media server) for the latency of FLV and RTMP plays.
 */
import http from 'node:http';
import https from 'node:https';
import WebSocket from 'ws';
import type { PlayProtocol } from './stats.js';

/** A server said no: its HTTP status (or 0 for RTMP) and the reason it gave. */
export class PlayRefused extends Error {
  constructor(
    readonly status: number,
    reason: string,
  ) {
    super(reason);
    this.name = 'PlayRefused';
  }
}

/** The protocol of a play URL, or null for a URL no viewer protocol here reads. */
export function protocolOf(url: string): PlayProtocol | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  if (u.protocol === 'rtmp:' || u.protocol === 'rtmps:') return 'rtmp';
  if (u.protocol === 'ws:' || u.protocol === 'wss:') return 'ws-flv';
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
  return /\.m3u8$/i.test(u.pathname) ? 'hls' : 'http-flv';
}

/** The URL with the channel password as its `pwd` query parameter (how the relay's play URLs take it). */
export function withPassword(url: string, pwd: string | undefined): string {
  if (pwd === undefined) return url;
  const u = new URL(url);
  u.searchParams.set('pwd', pwd);
  return u.toString();
}

/** The reason a refusal's body gives: the relay's `{code, message, hint}`, else its first 200 characters. */
export function refusalReason(status: number, body: string): string {
  try {
    const j = JSON.parse(body) as { code?: number; message?: string; hint?: string };
    if (j.message) return `${status} ${j.message}${j.hint ? ` (${j.hint})` : ''}`;
  } catch {
    /* not JSON */
  }
  const text = body
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 200);
  return `${status}${text ? ` ${text}` : ''}`;
}

const readBody = (res: http.IncomingMessage): Promise<string> =>
  new Promise((resolve) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (d: string) => {
      if (body.length < 65536) body += d;
    });
    res.on('end', () => resolve(body));
    res.on('close', () => resolve(body));
    res.on('error', () => resolve(body));
  });

/** A byte stream being read: `done` resolves when the server ends it, rejects when it refuses or cannot be reached. */
export interface ByteSource {
  done: Promise<void>;
  close(): void;
  /** How the server ended it, when the protocol tells (HLS: ENDLIST, the playlist gone). */
  endReason?: string;
}

/** Reads an HTTP(S) response body into `onData`. */
export function readHttp(url: string, onData: (b: Buffer) => void): ByteSource {
  let req: http.ClientRequest | undefined;
  const done = new Promise<void>((resolve, reject) => {
    const get = url.startsWith('https:') ? https.get : http.get;
    req = get(url, (res) => {
      const status = res.statusCode ?? 0;
      if (status !== 200) {
        void readBody(res).then((b) =>
          reject(
            status >= 400 && status < 500
              ? new PlayRefused(status, refusalReason(status, b))
              : new Error(refusalReason(status, b)),
          ),
        );
        return;
      }
      const type = String(res.headers['content-type'] ?? '');
      if (/^(text\/|application\/(json|xml|xhtml))/i.test(type)) {
        res.destroy();
        reject(new Error(`the server answered ${type.split(';')[0]}, not a stream: is this a play URL?`));
        return;
      }
      res.on('data', onData);
      res.on('end', () => resolve());
      res.on('close', () => resolve());
      res.on('error', () => resolve());
    });
    req.on('error', reject);
  });
  return { done, close: () => req?.destroy() };
}

/** Reads a WebSocket's binary messages (WS-FLV) into `onData`; an HTTP answer other than the upgrade is a refusal. */
export function readWebSocket(url: string, onData: (b: Buffer) => void): ByteSource {
  const ws = new WebSocket(url);
  const done = new Promise<void>((resolve, reject) => {
    ws.on('unexpected-response', (_req, res) => {
      const status = res.statusCode ?? 0;
      void readBody(res).then((b) => {
        const reason = refusalReason(status, b);
        reject(status >= 400 && status < 500 ? new PlayRefused(status, reason) : new Error(reason));
        ws.terminate();
      });
    });
    ws.on('message', (d: Buffer | ArrayBuffer | Buffer[]) =>
      onData(Buffer.isBuffer(d) ? d : Array.isArray(d) ? Buffer.concat(d) : Buffer.from(d)),
    );
    ws.on('close', () => resolve());
    ws.on('error', (e) => reject(e));
  });
  done.catch(() => undefined);
  return { done, close: () => ws.terminate() };
}

/** GETs a small JSON document (status, playlists are read elsewhere); null on any failure. */
export async function getJson<T>(url: string, timeoutMs = 3000): Promise<{ status: number; body: T | null } | null> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    try {
      return { status: res.status, body: JSON.parse(text) as T };
    } catch {
      return { status: res.status, body: null };
    }
  } catch {
    return null;
  }
}

/** What the relay's `/status/{channelId}` tells a player. */
export interface RelayStatus {
  state?: string;
  passwordProtected?: boolean;
  /** Per stream name: the timestamp (ms) the media server last sent and how long ago (ms). */
  liveEdge?: Record<string, { timestampMs: number; ageMs: number }>;
}

/**
 * The relay status URL and stream name of a relay play URL: `/live/{stream}.flv` (HTTP, WS) or `rtmp://…/live/{stream}`
 * (with `httpBase`, the relay's media HTTP origin, since RTMP is on another port). Null when it is not of that shape.
 */
export function relayStatusOf(url: string, httpBase?: string): { statusUrl: string; stream: string } | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  const m = /^\/live\/([A-Za-z0-9_-]+?)(?:\.flv)?$/.exec(u.pathname);
  if (!m) return null;
  const stream = m[1]!;
  const channelId = stream.replace(/_r\d+$/, '');
  let origin: string;
  if (u.protocol === 'rtmp:' || u.protocol === 'rtmps:') {
    if (!httpBase) return null;
    origin = httpBase.replace(/\/+$/, '');
  } else origin = `${u.protocol === 'wss:' || u.protocol === 'https:' ? 'https' : 'http'}://${u.host}`;
  return { statusUrl: `${origin}/status/${channelId}`, stream };
}

/**
 * The relay's channel clock for a stream: the offset that turns a local `now()` into the stream's live timestamp
 * (ms), from its `/status` live edge, half the round trip added; null when the status tells none.
 */
export async function relayClockOffset(statusUrl: string, stream: string, now: () => number): Promise<number | null> {
  const sent = now();
  const r = await getJson<RelayStatus>(statusUrl, 2000);
  const got = now();
  const edges = r?.body?.liveEdge;
  if (!edges) return null;
  const e = edges[stream] ?? (Object.keys(edges).length === 1 ? Object.values(edges)[0] : undefined);
  return e ? e.timestampMs + e.ageMs + (got - sent) / 2 - got : null;
}

/**
 * Why the relay refused an RTMP play that got no frame (RTMP only closes the connection): from its public status
 * (no such channel, live ended) and, for a protected channel, a HEAD of its FLV URL with the same query, which the
 * media server answers after the same checks without making a viewer. Null when it says nothing.
 */
export async function relayRefusal(
  statusUrl: string,
  url: string,
  withPwd: boolean,
): Promise<{ status: number; reason: string } | null> {
  const r = await getJson<RelayStatus & { message?: string }>(statusUrl);
  if (!r) return null;
  if (r.status === 404) return { status: 404, reason: `404 ${r.body?.message ?? 'no such channel'}` };
  const state = r.body?.state;
  if (state && state !== 'live' && state !== 'starting')
    return { status: 404, reason: `404 live ended: channel is ${state}` };
  if (!r.body?.passwordProtected) return null;
  const flv = statusUrl.replace(/\/status\/([^/]+)$/, '/live/$1.flv') + new URL(url).search;
  const head = await fetch(flv, { method: 'HEAD', signal: AbortSignal.timeout(3000) }).catch(() => null);
  if (head?.status === 401)
    return { status: 401, reason: `401 password required${withPwd ? '' : ' (add --pwd <password>)'}` };
  if (head?.status === 403) return { status: 403, reason: '403 wrong password (check the channel password)' };
  return null;
}

/** The relay's status of an RTMP URL on the relay's default HTTP port (8000) of its host, when a relay answers there. */
export async function guessRelay(url: string): Promise<{ statusUrl: string; stream: string } | null> {
  const guess = relayStatusOf(url, `http://${new URL(url).hostname}:8000`);
  if (!guess) return null;
  const r = await getJson<RelayStatus & { code?: number; hint?: string }>(guess.statusUrl, 1000);
  const relayLike = r?.body && ('passwordProtected' in r.body || (r.status === 404 && 'hint' in r.body));
  return relayLike ? guess : null;
}

/** What the relay's status says of a channel whose stream it ended: lost upstream, stopped, failed; null if live. */
export async function relayEndReason(statusUrl: string): Promise<string | null> {
  const r = await getJson<RelayStatus>(statusUrl, 2000);
  if (!r) return null;
  if (r.status === 404) return 'the relay ended it: the channel is gone';
  const state = r.body?.state;
  if (state === 'interrupted') return 'the relay ended the live: its upstream was lost (channel interrupted)';
  if (state && state !== 'live' && state !== 'starting') return `the relay ended it: the channel is ${state}`;
  return null;
}
