/**
 * The RTSP relay of one upstream of a run: a loopback TCP listener that the run's ffmpeg reads an rtsp(s) upstream
 * through, with RTP interleaved on the RTSP connection (`-rtsp_transport tcp`: no UDP, so a server cannot point media
 * at another address). Each connection from ffmpeg is relayed to the upstream's host resolved once and checked
 * against the egress policy (the address checked is the one connected to: no DNS rebinding); rtsps is spoken here
 * (TLS with Node's certificate verification, SNI and name check on the URL's host), ffmpeg speaks plain RTSP to the
 * relay. What the server sends is watched (rtsp-watch.ts): a 3xx response or a REDIRECT request closes both sides and
 * is kept as the run's failure (50002 "redirect to … refused"), since ffmpeg has no option to refuse redirects and
 * would follow one to any address (RFC 2326 11.3.3, RFC 7826 13.5).
 *
 * ffmpeg's requests pass unchanged (their URLs name the relay; RTSP servers answer by path, and Digest
 * authentication covers the URI ffmpeg sent).
 */
import net from 'node:net';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.js';
import { resolveAllowed, systemResolver, type EgressPolicy, type Resolver } from './index.js';
import { Refusals, type Refusal } from './refusals.js';
import { RtspWatch } from './rtsp-watch.js';

/** Options of an RTSP relay. */
export interface RtspRelayOptions {
  /** The upstream URL (`rtsp://` or `rtsps://`). */
  origin: string;
  policy: EgressPolicy;
  logger: Pick<Logger, 'warn' | 'debug'>;
  resolve?: Resolver;
  /** Bound on connecting to the upstream, in ms (default 10 000). */
  connectTimeoutMs?: number;
}

/** The hint of a refused redirect. */
export const REDIRECT_HINT =
  'register the URL the server redirects to: RTSP redirects are not followed (an internal address also needs ' +
  'RELAY_UPSTREAM_ALLOW)';

/** A loopback relay to one RTSP upstream (see the module comment). */
export class RtspRelay {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly refused: Refusals;
  private readonly origin: URL;

  private constructor(private readonly opts: RtspRelayOptions) {
    this.origin = new URL(opts.origin);
    if (!/^rtsps?:$/.test(this.origin.protocol)) throw new Error(`not an RTSP URL: ${this.origin.protocol}`);
    this.refused = new Refusals(opts.logger, 'RTSP relay');
    this.server = net.createServer((s) => void this.serve(s));
  }

  /** Starts a relay listening on an ephemeral port of 127.0.0.1. */
  static async start(opts: RtspRelayOptions): Promise<RtspRelay> {
    const r = new RtspRelay(opts);
    await new Promise<void>((resolve, reject) => {
      r.server.once('error', reject);
      r.server.listen(0, '127.0.0.1', () => resolve());
    });
    return r;
  }

  /** The URL ffmpeg reads: `rtsp://[user:password@]127.0.0.1:<port>/<path>?<query>` of the upstream URL. */
  get url(): string {
    const o = this.origin;
    const auth = o.username || o.password ? `${o.username}${o.password ? `:${o.password}` : ''}@` : '';
    return `rtsp://${auth}127.0.0.1:${(this.server.address() as AddressInfo).port}${o.pathname}${o.search}`;
  }

  /** The refusals kept (the last 20), oldest first. */
  get refusals(): readonly Refusal[] {
    return this.refused.all;
  }

  /** The latest refusal, forgotten once taken (null when none since the last take). */
  takeRefusal(): Refusal | null {
    return this.refused.take();
  }

  /** Stops listening and ends every connection. */
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private track(s: net.Socket): void {
    this.sockets.add(s);
    s.once('close', () => this.sockets.delete(s));
    s.on('error', () => s.destroy());
  }

  private async serve(client: net.Socket): Promise<void> {
    this.track(client);
    client.pause();
    const secure = this.origin.protocol === 'rtsps:';
    const host = this.origin.hostname.replace(/^\[(.*)\]$/, '$1');
    const port = Number(this.origin.port || (secure ? 322 : 554));
    const at = `${this.origin.hostname}:${port}`;
    let address: string;
    try {
      [address] = (await resolveAllowed(
        host,
        this.opts.policy,
        `the RTSP upstream ${at}`,
        this.opts.resolve ?? systemResolver,
      )) as [string];
    } catch (e) {
      this.refused.add((e as Error).message);
      return void client.destroy();
    }
    if (client.destroyed) return;
    const upstream = secure
      ? tls.connect({
          host: address,
          port,
          servername: net.isIP(host) ? '' : host,
          checkServerIdentity: (_h, cert) => tls.checkServerIdentity(host, cert),
        })
      : net.connect({ host: address, port, family: net.isIP(address) });
    this.track(upstream);
    const timer = setTimeout(
      () => upstream.destroy(new Error('connect timed out')),
      this.opts.connectTimeoutMs ?? 10_000,
    );
    const watch = new RtspWatch(at);
    const refuse = (reason: string) => {
      this.refused.add(reason, REDIRECT_HINT);
      upstream.destroy();
      client.destroy();
    };
    upstream.once(secure ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      client.pipe(upstream);
      client.resume();
    });
    upstream.on('data', (chunk: Buffer) => {
      const v = watch.feed(chunk);
      if ('refused' in v) return refuse(v.refused);
      if (v.pass.length && !client.write(v.pass)) {
        upstream.pause();
        client.once('drain', () => upstream.resume());
      }
    });
    let ended = false;
    upstream.once('end', () => {
      const refused = watch.end();
      if (refused) return refuse(refused);
      ended = true;
      client.end();
    });
    upstream.once('close', () => {
      clearTimeout(timer);
      if (!ended) client.destroy();
    });
    upstream.once('error', (e) =>
      this.opts.logger.debug({ err: e.message, upstream: at }, 'RTSP relay: upstream error'),
    );
    client.once('close', () => upstream.destroy());
  }
}
