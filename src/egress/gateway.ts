/**
 * The egress gateway of one run: a loopback HTTP server through which the run's ffmpeg fetches everything of an
 * http(s) upstream, so that ffmpeg itself speaks plain HTTP to 127.0.0.1 only — no TLS, no proxy protocol.
 *
 * - ffmpeg names an origin URL in gateway form (gateway-form.ts): `GET /https/cdn.example/live/a.m3u8`. It also sends
 *   every other plain-HTTP request of its own through the gateway as a forward proxy (`-http_proxy` and the
 *   `http_proxy` environment variable, absolute form `GET http://host/path`), so a URL that reached ffmpeg some other
 *   way (a DASH manifest, a demuxer's side request) meets the same policy.
 * - Each request's host is resolved once and every address checked against the egress policy; the gateway connects
 *   to the address it checked (no DNS rebinding), and speaks TLS itself to https origins with Node's certificate
 *   verification (system CAs plus NODE_EXTRA_CA_CERTS; SNI and the name check use the URL's host).
 * - A response that is an HLS playlist (by Content-Type, or a body starting with #EXTM3U) is read whole and its URIs
 *   written into gateway form (playlist.ts); a URI of another scheme refuses the playlist. A redirect's Location is
 *   written into gateway form too, so the next hop comes back here and is checked in turn. Everything else streams
 *   through unbuffered (a live FLV or TS over HTTP never ends).
 * - A refusal answers ffmpeg 403 (text reason, `X-Relay-Egress: refused`) and is kept for the run's failure (50002).
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import type { Logger } from '../log.js';
import { ALLOW_SETTING, resolveAllowed, systemResolver, type EgressPolicy, type Resolver } from './index.js';
import { fromGatewayPath, isGatewayScheme, scopeSetCookie, toGatewayUrl } from './gateway-form.js';
import { isPlaylistType, looksLikePlaylist, rewritePlaylist } from './playlist.js';
import { Refusals, type Refusal } from './refusals.js';
import { decoderFor, endToEnd, write } from './http-pass.js';

/** Options of a gateway. */
export interface GatewayOptions {
  policy: EgressPolicy;
  logger: Pick<Logger, 'warn' | 'debug'>;
  /** How hosts are resolved (the system resolver by default; tests give their own). */
  resolve?: Resolver;
  /** Bound on connecting to an origin and on its silence, in ms (default 10 000). */
  timeoutMs?: number;
  /** Largest playlist read and rewritten, in bytes (default 4 MiB); a larger one answers 502. */
  maxPlaylistBytes?: number;
}

/** The hint of a refused URI scheme (in a playlist or a redirect): the allow-list admits hosts, never schemes. */
const SCHEME_HINT =
  'an upstream, its playlists and redirects may name http and https URLs only; ' +
  `${ALLOW_SETTING} allows internal hosts, not other schemes`;

/** `host:port` of a URL with the port always written (refusal messages name host and port, never path or query). */
const hostPort = (u: URL) => `${u.hostname}:${u.port || (u.protocol === 'https:' ? 443 : 80)}`;

/** The egress gateway of one run (see the module comment). */
export class EgressGateway {
  private readonly server: http.Server;
  private readonly agents = {
    http: new http.Agent({ keepAlive: true, maxSockets: 16 }),
    https: new https.Agent({ keepAlive: true, maxSockets: 16 }),
  };
  private readonly refused: Refusals;
  private served = 0;

  private constructor(private readonly opts: GatewayOptions) {
    this.refused = new Refusals(opts.logger, 'egress gateway');
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.server.on('connect', (_req: http.IncomingMessage, socket: net.Socket) => {
      const { reason } = this.refused.add(
        'a CONNECT request of the upstream is refused (the gateway speaks TLS itself)',
      );
      socket.on('error', () => socket.destroy());
      socket.end(`HTTP/1.1 405 Method Not Allowed\r\nContent-Length: ${Buffer.byteLength(reason)}\r\n\r\n${reason}`);
    });
  }

  /** Starts a gateway listening on an ephemeral port of 127.0.0.1. */
  static async start(opts: GatewayOptions): Promise<EgressGateway> {
    const g = new EgressGateway(opts);
    await new Promise<void>((resolve, reject) => {
      g.server.once('error', reject);
      g.server.listen(0, '127.0.0.1', () => resolve());
    });
    return g;
  }

  /** `http://127.0.0.1:<port>`: the gateway's own origin, and ffmpeg's `-http_proxy`. */
  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** The gateway form of an http(s) origin URL, for ffmpeg's input. */
  gatewayUrl(origin: string): string {
    return toGatewayUrl(this.url, new URL(origin));
  }

  /** Requests passed to an origin so far. */
  get requests(): number {
    return this.served;
  }

  /** The refusals kept (the last 20), oldest first. */
  get refusals(): readonly Refusal[] {
    return this.refused.all;
  }

  /** The latest refusal, forgotten once taken (null when none since the last take). */
  takeRefusal(): Refusal | null {
    return this.refused.take();
  }

  /** Stops listening and ends every connection, to ffmpeg and to origins. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    this.agents.http.destroy();
    this.agents.https.destroy();
    await closed;
  }

  /** The origin URL a request names: gateway form, or absolute form as a forward proxy (plain http only). */
  private originOf(target: string): URL | null {
    if (target.startsWith('/')) return fromGatewayPath(target);
    try {
      const u = new URL(target);
      if (u.protocol !== 'http:') return null;
      return u.host === new URL(this.url).host ? fromGatewayPath(u.pathname + u.search) : u;
    } catch {
      return null;
    }
  }

  private refuse(res: http.ServerResponse, reason: string, hint?: string): void {
    const r = this.refused.add(reason, hint);
    const body = `${r.reason}; ${r.hint}`;
    res.writeHead(403, { 'content-type': 'text/plain; charset=utf-8', 'x-relay-egress': 'refused' }).end(body);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    res.on('error', () => res.destroy());
    const origin = this.originOf(req.url ?? '');
    if (!origin || !isGatewayScheme(origin))
      return void res.writeHead(400, { 'content-type': 'text/plain' }).end('not a request of the gateway');
    const at = hostPort(origin);
    let address: string;
    try {
      [address] = (await resolveAllowed(
        origin.hostname,
        this.opts.policy,
        `a request of the upstream to ${at}`,
        this.opts.resolve ?? systemResolver,
      )) as [string];
    } catch (e) {
      return this.refuse(res, (e as Error).message);
    }
    this.served++;
    const secure = origin.protocol === 'https:';
    const name = origin.hostname.replace(/^\[(.*)\]$/, '$1');
    const up = (secure ? https : http).request({
      host: address,
      port: Number(origin.port || (secure ? 443 : 80)),
      family: net.isIP(address),
      method: req.method,
      path: origin.pathname + origin.search,
      headers: { ...endToEnd(req.headers), host: origin.host, 'accept-encoding': 'identity' },
      setHost: false,
      agent: secure ? this.agents.https : this.agents.http,
      timeout: this.opts.timeoutMs ?? 10_000,
      ...(secure
        ? {
            servername: net.isIP(name) ? '' : name,
            checkServerIdentity: (_h: string, cert: tls.PeerCertificate) => tls.checkServerIdentity(name, cert),
          }
        : {}),
    });
    let done = false;
    res.on('close', () => done || up.destroy());
    up.on('timeout', () => up.destroy(new Error('the origin did not answer in time')));
    up.on('error', (e) => {
      this.opts.logger.debug({ err: e.message, origin: at }, 'egress gateway: origin error');
      if (res.headersSent) res.destroy();
      else res.writeHead(502, { 'content-type': 'text/plain; charset=utf-8' }).end(`origin error: ${e.message}`);
    });
    up.on('response', (r) => {
      this.respond(req, r, res, origin)
        .catch(() => res.destroy())
        .finally(() => (done = true));
    });
    req.pipe(up);
  }

  /** Passes an origin's response on: Location and cookies in gateway form, playlists rewritten, the rest streamed. */
  private async respond(req: http.IncomingMessage, r: http.IncomingMessage, res: http.ServerResponse, origin: URL) {
    const headers = endToEnd(r.headers);
    const status = r.statusCode ?? 502;
    if (r.headers.location !== undefined) {
      let to: URL | null = null;
      try {
        to = new URL(r.headers.location, origin);
      } catch {
        /* refused below */
      }
      if (!to || !isGatewayScheme(to)) {
        r.destroy();
        const scheme = to ? `${to.protocol} URL` : 'URL that is not one';
        return this.refuse(
          res,
          `the upstream ${hostPort(origin)} redirected to a ${scheme}, which is refused`,
          SCHEME_HINT,
        );
      }
      headers.location = toGatewayUrl(this.url, to);
    }
    if (r.headers['set-cookie']) headers['set-cookie'] = r.headers['set-cookie'].map((c) => scopeSetCookie(c, origin));
    if (req.method === 'HEAD' || status === 204 || status === 304) return void res.writeHead(status, headers).end();
    let body: Readable = r;
    const decoder = decoderFor(String(r.headers['content-encoding'] ?? '').trim());
    delete headers['content-encoding'];
    if (decoder) {
      body = r.pipe(decoder) as unknown as Readable;
      r.on('error', (e) => body.destroy(e));
      delete headers['content-length'];
    }
    const chunks = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    const head: Buffer[] = [];
    let ended = false;
    let playlist: boolean | undefined = isPlaylistType(r.headers['content-type']) || undefined;
    while (playlist === undefined) {
      const next = await chunks.next();
      if (next.done) ended = true;
      else head.push(next.value);
      playlist = looksLikePlaylist(Buffer.concat(head), ended);
    }
    if (playlist) return this.sendPlaylist(chunks, head, ended, status, headers, res, origin);
    res.writeHead(status, headers);
    for (const c of head) await write(res, c);
    while (!ended) {
      const next = await chunks.next();
      if (next.done) break;
      await write(res, next.value);
    }
    res.end();
  }

  private async sendPlaylist(
    chunks: AsyncIterator<Buffer>,
    head: Buffer[],
    ended: boolean,
    status: number,
    headers: http.OutgoingHttpHeaders,
    res: http.ServerResponse,
    origin: URL,
  ): Promise<void> {
    const max = this.opts.maxPlaylistBytes ?? 4 * 1024 * 1024;
    let size = head.reduce((n, c) => n + c.length, 0);
    while (!ended && size <= max) {
      const next = await chunks.next();
      if (next.done) break;
      head.push(next.value);
      size += next.value.length;
    }
    if (size > max) {
      await chunks.return?.();
      return void res.writeHead(502, { 'content-type': 'text/plain' }).end(`playlist larger than ${max} bytes`);
    }
    const out = rewritePlaylist(Buffer.concat(head), origin, this.url);
    if ('refused' in out) return this.refuse(res, out.refused, SCHEME_HINT);
    for (const h of ['content-length', 'content-range', 'accept-ranges', 'etag', 'content-md5']) delete headers[h];
    headers['content-length'] = out.body.length;
    res.writeHead(status === 206 ? 200 : status, headers).end(out.body);
  }
}
