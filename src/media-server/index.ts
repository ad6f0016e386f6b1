import fs from 'node:fs';
import path from 'node:path';
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Redis } from 'ioredis';
import type { RelayConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import { Keys } from '../redis/index.js';
import { AppRegistry, internalSecret, verifySignature } from '../apps/index.js';
import { RoomRegistry } from '../rooms/registry.js';
import { INGEST_APP, ingestStreamName, parseIngestStreamName } from '../rooms/ingest.js';
import { ChannelStore, CHANNEL_ID_PATTERN } from '../channels/store.js';
import { HLS_ROUTE, LIVE_APP } from '../channels/urls.js';
import type { ChannelEvent } from '../channels/types.js';
import { createNms, type NmsContext, type NmsInstance, type NmsSession } from './nms.js';
import { CORS_HEADERS, sendJson, serveHlsFile } from './http-files.js';
import { publishToken, readToken } from './tokens.js';

/** How long viewers of a channel wait for its publisher to come back (worker failover) before the broadcast ends. */
const LIVE_PUBLISH_GRACE_MS = 10_000;

const FLV_PATH = new RegExp(`^/${LIVE_APP}/([A-Za-z0-9_-]{1,64})\\.flv$`);
const HLS_PATH = new RegExp(`^${HLS_ROUTE}/([A-Za-z0-9_-]{1,64})/([A-Za-z0-9_.-]{1,64})$`);

/** Dependencies of the media server. */
export interface MediaServerDeps {
  config: RelayConfig;
  redis: Redis;
  /** A dedicated connection for pub/sub. */
  subscriber: Redis;
  logger: Logger;
}

type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;
type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

/**
 * The embedded node-media-server (RTMP ingest and output, HTTP-FLV, WS-FLV) behind a guard that only lets well-formed
 * requests reach it, plus the HLS folder served with CORS, publish/play authorisation and ingest registration.
 */
export class MediaServer {
  private readonly keys: Keys;
  private readonly channels: ChannelStore;
  private readonly rooms: RoomRegistry;
  private readonly apps: AppRegistry;

  private constructor(
    private readonly deps: MediaServerDeps,
    private readonly nms: NmsInstance,
    private readonly context: NmsContext,
    private readonly secret: string,
  ) {
    this.keys = new Keys(deps.config.redisPrefix);
    this.channels = new ChannelStore(deps.redis, this.keys);
    this.rooms = new RoomRegistry(deps.redis, this.keys);
    this.apps = new AppRegistry(deps.redis, this.keys);
  }

  private get log(): Logger { return this.deps.logger; }

  /** Starts the listeners; rejects (instead of exiting the process) when a port is taken. */
  static async start(deps: MediaServerDeps): Promise<MediaServer> {
    const { config } = deps;
    if (!config.httpPort || !config.rtmpPort) throw new Error('the media server needs fixed RELAY_HTTP_PORT and RELAY_RTMP_PORT (0 is not allowed)');
    fs.mkdirSync(config.hlsDir, { recursive: true });
    const { nms, context } = createNms({
      bind: config.bind,
      rtmp: { port: config.rtmpPort },
      http: { port: config.httpPort },
      store: { path: path.join(config.dataDir, 'media-server') },
      webadmin: { enable: false },
    }, deps.logger);
    const server = new MediaServer(deps, nms, context, await internalSecret(deps.redis, new Keys(config.redisPrefix)));
    await server.run();
    return server;
  }

  private async run(): Promise<void> {
    const http = this.nms.httpServer.httpServer;
    if (!http) throw new Error('node-media-server created no HTTP server');
    this.guard(http);
    this.nms.on('prePublish', (s) => this.onPrePublish(s));
    this.nms.on('donePublish', (s) => this.onDonePublish(s));
    this.nms.on('prePlay', (s) => this.onPrePlay(s));
    await this.deps.subscriber.subscribe(this.keys.events());
    this.deps.subscriber.on('message', (channel, message) => {
      if (channel === this.keys.events()) this.onChannelEvent(message);
    });
    void this.nms.run();
    // nms exits the process on a listen error; take its place so start() can reject instead.
    for (const srv of [http, this.nms.rtmpServer.tcpServer]) srv?.removeAllListeners('error');
    await Promise.all([listeningOf(http), listeningOf(this.nms.rtmpServer.tcpServer)]);
    this.log.info({ http: this.deps.config.httpPort, rtmp: this.deps.config.rtmpPort }, 'media server listening');
  }

  /** Stops the listeners and the subscriptions. */
  async close(): Promise<void> {
    for (const b of this.context.broadcasts.values()) {
      for (const s of b.subscribers.values()) s.close();
      b.publisher?.close();
    }
    await this.deps.subscriber.unsubscribe(this.keys.events()).catch(() => undefined);
    await this.nms.stop();
  }

  // Only requests the relay understands reach node-media-server: it crashes on some malformed FLV names.
  private guard(http: HttpServer): void {
    const app = http.listeners('request')[0] as RequestListener;
    const upgrades = http.listeners('upgrade') as UpgradeListener[];
    http.removeAllListeners('request');
    http.removeAllListeners('upgrade');
    http.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.onRequest(req, res, app).catch((e: Error) => {
        this.log.warn({ err: e.message }, 'media request failed');
        sendJson(res, 500, { code: 500, message: 'internal error', hint: 'retry' });
      });
    });
    http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.onUpgrade(req, socket, head, upgrades).catch(() => socket.destroy());
    });
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse, app: RequestListener): Promise<void> {
    const url = parsePath(req.url);
    if (req.method === 'OPTIONS') { res.writeHead(204, CORS_HEADERS); res.end(); return; }
    if (url === null) return sendJson(res, 400, { code: 400, message: 'malformed request path', hint: 'use a play URL returned by push/start' });
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, { code: 405, message: `${req.method} is not allowed`, hint: 'players use GET' });
    if (url === '/healthz') return sendJson(res, 200, { ok: true });
    const hls = HLS_PATH.exec(url);
    if (hls) {
      if (!CHANNEL_ID_PATTERN.test(hls[1]!)) return sendJson(res, 404, { code: 404, message: 'no such channel', hint: 'check the play URL' });
      return serveHlsFile(req, res, this.deps.config.hlsDir, hls[1]!, hls[2]!);
    }
    const flv = FLV_PATH.exec(url);
    if (flv) {
      const refusal = await this.playRefusal(flv[1]!);
      if (refusal) return sendJson(res, 404, refusal);
      app(req, res);
      return;
    }
    sendJson(res, 404, { code: 404, message: 'not found', hint: 'FLV: /live/{channelId}.flv, HLS: /hls/{channelId}/index.m3u8' });
  }

  private async onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, upgrades: UpgradeListener[]): Promise<void> {
    const url = parsePath(req.url);
    const flv = url ? FLV_PATH.exec(url) : null;
    const refusal = flv ? await this.playRefusal(flv[1]!) : { code: 404, message: 'not found' };
    if (refusal) {
      socket.end(`HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${JSON.stringify(refusal)}`);
      return;
    }
    for (const l of upgrades) l(req, socket, head);
  }

  /** Why a viewer may not play this channel now, or null when it may. */
  private async playRefusal(channelId: string): Promise<Record<string, unknown> | null> {
    const ch = CHANNEL_ID_PATTERN.test(channelId) ? await this.channels.get(channelId) : null;
    if (!ch) return { code: 404, message: 'no such channel', hint: 'check the play URL' };
    if (ch.state !== 'starting' && ch.state !== 'live') return { code: 404, message: `live ended: channel is ${ch.state}`, hint: 'start the push again' };
    return null;
  }

  private reject(s: NmsSession, why: string): void {
    s.relayRejected = true;
    const b = this.context.broadcasts.get(s.streamPath);
    if (b && b.publisher === null) b.publishGraceMs = 0;
    this.log.warn({ path: s.streamPath, ip: s.ip, protocol: s.protocol, publisher: s.isPublisher }, `refused: ${why}`);
    s.close();
  }

  private onPrePublish(s: NmsSession): void {
    const broadcast = this.context.broadcasts.get(s.streamPath);
    if (s.streamApp === LIVE_APP) {
      if (!verifySignature(this.secret, publishToken(s.streamPath), s.streamQuery?.token)) return this.reject(s, 'publish to a channel without a valid worker token');
      if (broadcast) broadcast.publishGraceMs = LIVE_PUBLISH_GRACE_MS;
      return;
    }
    if (s.streamApp !== INGEST_APP) return this.reject(s, `unknown application ${s.streamApp}`);
    const key = parseIngestStreamName(s.streamName);
    if (!key) return this.reject(s, 'ingest stream name is not <sdkAppId>_<roomId>_<userId>_<camera|screen>');
    // A member that leaves is removed at once: no publish grace on the ingest.
    if (broadcast) broadcast.publishGraceMs = 0;
    void this.apps.get(key.sdkAppId).then(async (app) => {
      if (!app || !verifySignature(app.secretKey, ingestStreamName(key), s.streamQuery?.sig)) return this.reject(s, 'ingest publish with a missing or wrong sig');
      await this.rooms.register({ ...key, source: 'ingest', registeredAt: Date.now() });
      this.log.info({ sdkAppId: key.sdkAppId, roomId: key.roomId, userId: key.userId, srcType: key.srcType }, 'upstream registered from ingest');
    }).catch((e: Error) => this.reject(s, `ingest check failed: ${e.message}`));
  }

  private onDonePublish(s: NmsSession): void {
    if (s.relayRejected || s.streamApp !== INGEST_APP) return;
    const key = parseIngestStreamName(s.streamName);
    if (!key) return;
    void this.rooms.remove(key.sdkAppId, key.roomId, key.userId, key.srcType, 'ingest')
      .then((removed) => { if (removed) this.log.info({ roomId: key.roomId, userId: key.userId, srcType: key.srcType }, 'upstream left the ingest'); })
      .catch((e: Error) => this.log.warn({ err: e.message }, 'could not remove upstream'));
  }

  private onPrePlay(s: NmsSession): void {
    if (s.streamApp === LIVE_APP) return;
    if (s.streamApp === INGEST_APP && verifySignature(this.secret, readToken(s.streamPath), s.streamQuery?.token)) return;
    this.reject(s, 'play of a stream that is not a channel');
  }

  // A stopped or failed channel disconnects its viewers at once instead of leaving them waiting for a publisher.
  private onChannelEvent(message: string): void {
    let ev: ChannelEvent;
    try { ev = JSON.parse(message) as ChannelEvent; } catch { return; }
    if (ev.state !== 'stopped' && ev.state !== 'failed') return;
    const b = this.context.broadcasts.get(`/${LIVE_APP}/${ev.channelId}`);
    if (!b) return;
    b.publishGraceMs = 0;
    for (const s of [...b.subscribers.values()]) s.close();
    this.log.info({ channelId: ev.channelId, viewers: b.subscribers.size }, 'channel ended: viewers disconnected');
  }
}

function parsePath(raw: string | undefined): string | null {
  if (!raw || raw.length > 2048 || raw[0] !== '/') return null;
  const q = raw.indexOf('?');
  const p = q >= 0 ? raw.slice(0, q) : raw;
  return /^[A-Za-z0-9_.\-/]*$/.test(p) && !p.includes('..') ? p : null;
}

function listeningOf(server: { once(ev: string, fn: (...a: unknown[]) => void): unknown } | undefined): Promise<void> {
  if (!server) return Promise.reject(new Error('listener missing'));
  return new Promise((resolve, reject) => {
    server.once('listening', () => resolve());
    server.once('error', (e) => reject(e instanceof Error ? new Error(`media server cannot listen: ${e.message}`) : new Error('listen failed')));
  });
}
