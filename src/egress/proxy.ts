/**
 * The egress proxy: a forward HTTP proxy on loopback through which a relay ffmpeg makes every HTTP(S) request of its
 * input (the upstream URL, the playlists, segments and keys an HLS playlist names, each redirect it follows). Each
 * request's host is resolved once, every address checked against the egress policy, and the connection made to the
 * checked address, so neither a playlist, a redirect nor a DNS answer that changed since the start check can reach an
 * internal address. Plain HTTP comes as absolute-form requests (`GET http://host/path`), HTTPS as `CONNECT host:port`
 * (the TLS stays end to end between ffmpeg and the upstream). A refusal answers 403 with the reason as text.
 *
 * Own code rather than a proxy package: the check-then-connect-to-the-checked-address is the point, and the proxy
 * packages resolve the host again themselves when they connect.
 */
import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.js';
import { RelayError } from '../errors/index.js';
import { resolveAllowed, systemResolver, type EgressPolicy, type Resolver } from './index.js';

/** Options of an egress proxy. */
export interface EgressProxyOptions {
  policy: EgressPolicy;
  logger: Pick<Logger, 'warn' | 'debug'>;
  /** How hosts are resolved (the system resolver by default; tests give their own). */
  resolve?: Resolver;
  /** Bound on connecting to an upstream address, in ms (default 10 000). */
  connectTimeoutMs?: number;
}

/** Where a request may go: the checked address to connect to. */
export interface EgressTarget {
  host: string;
  port: number;
  address: string;
}

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

function endToEnd(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  return Object.fromEntries(Object.entries(headers).filter(([k]) => !HOP_BY_HOP.has(k)));
}

/**
 * Decides where one proxied request may go: `target` is `http://host[:port]/…` (plain HTTP) or `host:port` (CONNECT).
 * Resolves the host once and checks every address; returns the first address to connect to. Throws RelayError 50002
 * whose message names host and port only (never the path or query, which may carry secrets).
 */
export async function egressTarget(
  target: string,
  connect: boolean,
  policy: EgressPolicy,
  resolve: Resolver = systemResolver,
): Promise<EgressTarget> {
  let url: URL;
  try {
    url = new URL(connect ? `http://${target}` : target);
  } catch {
    throw new RelayError(50002, `egress proxy: malformed request target`);
  }
  if (url.protocol !== 'http:' || (connect && (url.pathname !== '/' || url.search || !url.port)))
    throw new RelayError(50002, `egress proxy: only http:// requests and CONNECT host:port are proxied`);
  const port = Number(url.port || 80);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const addresses = await resolveAllowed(host, policy, `a request of the upstream to ${url.host}`, resolve);
  return { host, port, address: addresses[0]! };
}

/** A forward proxy on 127.0.0.1 that applies the egress policy to each request (see the module comment). */
export class EgressProxy {
  private readonly server: http.Server;
  private readonly sockets = new Set<Duplex>();
  private readonly refused: string[] = [];
  private served = 0;
  private lastWarnAt = 0;
  private unlogged = 0;

  private constructor(private readonly opts: EgressProxyOptions) {
    this.server = http.createServer((req, res) => void this.forward(req, res));
    this.server.on('connect', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      void this.tunnel(req, socket, head);
    });
    this.server.on('connection', (s: net.Socket) => this.track(s));
  }

  /** Starts a proxy listening on an ephemeral port of 127.0.0.1. */
  static async start(opts: EgressProxyOptions): Promise<EgressProxy> {
    const p = new EgressProxy(opts);
    await new Promise<void>((resolve, reject) => {
      p.server.once('error', reject);
      p.server.listen(0, '127.0.0.1', () => resolve());
    });
    return p;
  }

  /** The proxy URL for ffmpeg (`-http_proxy`, `http_proxy`): `http://127.0.0.1:<port>`. */
  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Requests let through so far (plain HTTP requests and CONNECT tunnels). */
  get requests(): number {
    return this.served;
  }

  /** The reasons of the refusals so far (the last 20), oldest first. */
  get refusals(): readonly string[] {
    return [...this.refused];
  }

  /** The latest refusal's reason, forgotten once taken (null when none since the last take). */
  takeRefusal(): string | null {
    const last = this.refused.at(-1) ?? null;
    this.refused.length = 0;
    return last;
  }

  /** Stops listening and ends every connection through it. */
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private track(s: Duplex): void {
    this.sockets.add(s);
    s.once('close', () => this.sockets.delete(s));
    s.on('error', () => s.destroy());
  }

  private async decide(target: string, connect: boolean): Promise<EgressTarget | string> {
    try {
      return await egressTarget(target, connect, this.opts.policy, this.opts.resolve);
    } catch (e) {
      const reason = e instanceof RelayError && e.hint ? `${e.message}; ${e.hint}` : (e as Error).message;
      this.refused.push(reason);
      if (this.refused.length > 20) this.refused.shift();
      // a playlist naming many refused segments would log each: at most one line per 5 s, with the count of the rest
      if (Date.now() - this.lastWarnAt >= 5000) {
        this.opts.logger.warn({ reason, alsoRefused: this.unlogged }, 'egress proxy refused a request of the upstream');
        this.lastWarnAt = Date.now();
        this.unlogged = 0;
      } else this.unlogged++;
      return reason;
    }
  }

  private async forward(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const t = await this.decide(req.url ?? '', false);
    if (typeof t === 'string') {
      res.writeHead(403, { 'content-type': 'text/plain; charset=utf-8', 'x-relay-egress': 'refused' }).end(t);
      return;
    }
    this.served++;
    const url = new URL(req.url!);
    const up = http.request({
      host: t.address,
      port: t.port,
      family: net.isIP(t.address),
      method: req.method,
      path: url.pathname + url.search,
      headers: { ...endToEnd(req.headers), host: req.headers.host ?? url.host },
      setHost: false,
      agent: false,
      timeout: this.opts.connectTimeoutMs ?? 10_000,
    });
    up.on('response', (r) => {
      res.writeHead(r.statusCode ?? 502, r.statusMessage, endToEnd(r.headers));
      r.pipe(res);
    });
    up.on('timeout', () => up.destroy(new Error('upstream timed out')));
    up.on('error', (e) => {
      this.opts.logger.debug({ err: e.message, host: t.host }, 'egress proxy: upstream error');
      if (res.headersSent) res.destroy();
      else res.writeHead(502, { 'content-type': 'text/plain; charset=utf-8' }).end(`upstream error: ${e.message}`);
    });
    res.on('close', () => up.destroy());
    req.pipe(up);
  }

  private async tunnel(req: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    this.track(socket);
    const t = await this.decide(req.url ?? '', true);
    if (typeof t === 'string') {
      const body = Buffer.from(t);
      socket.end(
        `HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\nX-Relay-Egress: refused\r\n` +
          `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${t}`,
      );
      return;
    }
    this.served++;
    const up = net.connect({ host: t.address, port: t.port, family: net.isIP(t.address) });
    this.track(up);
    let open = false;
    const timer = setTimeout(() => up.destroy(new Error('connect timed out')), this.opts.connectTimeoutMs ?? 10_000);
    up.once('connect', () => {
      open = true;
      clearTimeout(timer);
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    up.once('error', (e) => {
      this.opts.logger.debug({ err: e.message, host: t.host }, 'egress proxy: upstream error');
      if (!open) socket.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    });
    up.once('close', () => {
      clearTimeout(timer);
      if (open) socket.destroy();
    });
    socket.once('close', () => up.destroy());
  }
}
