import fs from 'node:fs';
import path from 'node:path';
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Redis } from 'ioredis';
import type { RelayConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import { Keys } from '../redis/index.js';
import { AppRegistry } from '../tenants/apps.js';
import { RoomRegistry } from '../rooms/registry.js';
import { INGEST_APP, ingestStreamName, parseIngestStreamName, type IngestKey } from '../rooms/ingest.js';
import { resumeChannel } from '../channels/lifecycle.js';
import { pushQueue, type PushJobData, type PushJobResult } from '../queue/index.js';
import type { Queue } from 'bullmq';
import { ChannelStore } from '../channels/store.js';
import { HLS_ROUTE, LIVE_APP, parseStreamName } from '../channels/urls.js';
import { checkPlay, playTokenOf, tokenisePlaylist } from '../channels/password.js';
import type { UpstreamStats } from '../rooms/model.js';
import { liveEnded, playDecision, queryOf } from './access.js';
import { servePlayer } from '../web/static.js';
import { MediaMetrics } from './metrics.js';
import { CHANNEL_ID_SOURCE, RATE_TYPE_SOURCE } from '../channels/types.js';
import type { ChannelEvent } from '../channels/messages.js';
import { createNms, type NmsBroadcast, type NmsContext, type NmsInstance, type NmsSession } from './nms.js';
import { CORS_HEADERS, sendJson, serveHlsFile } from '../web/http.js';
import { internalSecret, publishToken, readToken, verifySignature } from '../auth/index.js';

/** How long viewers of a channel wait for its publisher to come back (worker failover) before the broadcast ends. */
const LIVE_PUBLISH_GRACE_MS = 10_000;

const FLV_PATH = new RegExp(`^/${LIVE_APP}/([A-Za-z0-9_-]{1,64})\\.flv$`);
const HLS_PATH = new RegExp(`^${HLS_ROUTE}/(${CHANNEL_ID_SOURCE})/(?:(r${RATE_TYPE_SOURCE})/)?([A-Za-z0-9_.-]{1,64})$`);
const STATS_INTERVAL_MS = 2000;
const STATUS_PATH = new RegExp(`^/status/(${CHANNEL_ID_SOURCE})$`);

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
  private readonly queue: Queue<PushJobData, PushJobResult>;
  private readonly metrics: MediaMetrics;
  /** Password hash (or null) of each channel published here, from the worker's publish. */
  private readonly passwords = new Map<string, string | null>();
  /** When each channel published here lost its upstream (until it is live again). */
  private readonly interruptedAt = new Map<string, number>();
  private statsTimer: NodeJS.Timeout | null = null;
  private readonly lastInBytes = new Map<string, number>();

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
    this.queue = pushQueue(deps.redis.duplicate({ connectionName: 'relay-media-queue' }), deps.config.redisPrefix);
    this.metrics = new MediaMetrics(context);
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
    // Members registered by a previous run of this server are gone with it; they register again when they publish.
    const stale = await this.rooms.removeAllIngest();
    if (stale) this.log.info({ stale }, 'cleared ingest registrations of the previous run');
    await this.deps.subscriber.subscribe(this.keys.events());
    this.deps.subscriber.on('message', (channel, message) => {
      if (channel === this.keys.events()) this.onChannelEvent(message);
    });
    void this.nms.run();
    // nms exits the process on a listen error; take its place so start() can reject instead.
    for (const srv of [http, this.nms.rtmpServer.tcpServer]) srv?.removeAllListeners('error');
    await Promise.all([listeningOf(http), listeningOf(this.nms.rtmpServer.tcpServer)]);
    this.statsTimer = setInterval(() => { void this.saveIngestStats(); }, STATS_INTERVAL_MS);
    this.statsTimer.unref();
    this.log.info({ http: this.deps.config.httpPort, rtmp: this.deps.config.rtmpPort }, 'media server listening');
  }

  /** Stops the listeners and the subscriptions. */
  async close(): Promise<void> {
    if (this.statsTimer) clearInterval(this.statsTimer);
    for (const b of this.context.broadcasts.values()) {
      for (const s of b.subscribers.values()) s.close();
      b.publisher?.close();
    }
    await this.deps.subscriber.unsubscribe(this.keys.events()).catch(() => undefined);
    await this.queue.close();
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
    if (url === '/metrics') {
      const text = await this.metrics.registry.metrics();
      res.writeHead(200, { 'Content-Type': this.metrics.registry.contentType });
      res.end(text);
      return;
    }
    if (url === '/player') { res.writeHead(301, { ...CORS_HEADERS, Location: '/player/' }); res.end(); return; }
    if (url.startsWith('/player/')) return servePlayer(req, res, url.slice('/player/'.length));
    const status = STATUS_PATH.exec(url);
    if (status) return this.sendStatus(res, status[1]!);
    const hls = HLS_PATH.exec(url);
    if (hls) {
      const [, channelId, tierDir, file] = hls as unknown as [string, string, string | undefined, string];
      const { channel, refusal } = await playDecision(this.channels, channelId, queryOf(req.url), false, this.deps.config.liveEndedAfterMs);
      if (refusal) return sendJson(res, refusal.status, refusal.body);
      const token = channel.passwordHash ? playTokenOf(channel.passwordHash) : null;
      this.metrics.hlsRequest(channelId, file.endsWith('.m3u8'));
      return serveHlsFile(req, res, this.deps.config.hlsDir, tierDir ? `${channelId}/${tierDir}` : channelId, file, token ? (t) => tokenisePlaylist(t, token) : undefined);
    }
    const flv = FLV_PATH.exec(url);
    if (flv) {
      const stream = parseStreamName(flv[1]!);
      if (!stream) return sendJson(res, 404, { code: 404, message: 'no such channel', hint: 'check the play URL' });
      const { refusal } = await playDecision(this.channels, stream.channelId, queryOf(req.url), true, this.deps.config.liveEndedAfterMs);
      if (refusal) return sendJson(res, refusal.status, refusal.body);
      app(req, res);
      return;
    }
    sendJson(res, 404, { code: 404, message: 'not found', hint: 'FLV: /live/{channelId}.flv, HLS: /hls/{channelId}/index.m3u8' });
  }

  // Public facts of a channel for players (no secrets, no credentials needed): state, URLs, tiers, live figures.
  private async sendStatus(res: ServerResponse, channelId: string): Promise<void> {
    const ch = await this.channels.get(channelId);
    if (!ch || ch.state === 'recycled') return sendJson(res, 404, { code: 404, message: 'no such channel', hint: 'check the channel id' });
    const own = [...this.context.broadcasts.entries()].filter(([p]) => p.startsWith(`/${LIVE_APP}/`) && parseStreamName(p.slice(LIVE_APP.length + 2))?.channelId === channelId);
    const viewers = own.reduce((n, [, b]) => n + b.subscribers.size, 0);
    // average bitrate published since each stream's publish began, summed over tiers
    const bitrateKbps = Math.round(own.reduce((k, [, b]) => {
      const p = b.publisher as (NmsSession & { createTime?: number }) | null;
      return p?.createTime && Date.now() > p.createTime ? k + (p.inBytes * 8) / (Date.now() - p.createTime) : k;
    }, 0));
    sendJson(res, 200, {
      code: 0, channelId, state: ch.state, liveEnded: liveEnded(ch, this.deps.config.liveEndedAfterMs, Date.now()),
      passwordProtected: !!ch.passwordHash, channelName: ch.option.channelName ?? null, rateTypes: ch.option.rateTypes,
      urls: ch.urls, startedAt: ch.startedAt ?? null, interruptedAt: ch.interruptedAt ?? null,
      stats: ch.stats ?? null, viewers, bitrateKbps,
    });
  }

  private async onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, upgrades: UpgradeListener[]): Promise<void> {
    const url = parsePath(req.url);
    const flv = url ? FLV_PATH.exec(url) : null;
    const stream = flv ? parseStreamName(flv[1]!) : null;
    const decision = stream ? await playDecision(this.channels, stream.channelId, queryOf(req.url), true, this.deps.config.liveEndedAfterMs) : null;
    const refusal = decision ? decision.refusal : { status: 404, body: { code: 404, message: 'not found', hint: 'WS-FLV: /live/{channelId}.flv' } };
    if (refusal) {
      const text = { 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found' }[refusal.status];
      socket.end(`HTTP/1.1 ${refusal.status} ${text}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${JSON.stringify(refusal.body)}`);
      return;
    }
    for (const l of upgrades) l(req, socket, head);
  }

  // What the ingest measures of each publishing member goes into its registry entry (bitrate, size, codecs).
  private async saveIngestStats(): Promise<void> {
    const now = Date.now();
    for (const [streamPath, b] of this.context.broadcasts) {
      const p = b.publisher;
      if (!p || p.relayRejected || !streamPath.startsWith(`/${INGEST_APP}/`)) continue;
      const key = parseIngestStreamName(p.streamName);
      if (!key) continue;
      const prev = this.lastInBytes.get(p.id);
      this.lastInBytes.set(p.id, p.inBytes);
      if (prev === undefined) continue;
      const totalKbps = Math.round(((p.inBytes - prev) * 8) / STATS_INTERVAL_MS);
      const stats: UpstreamStats = {
        totalKbps,
        videoKbps: Math.max(0, totalKbps - (p.audioCodec ? Math.round(p.audioDatarate || 96) : 0)),
        width: p.videoWidth, height: p.videoHeight, fps: p.videoFramerate,
        videoCodec: p.videoCodec === 7 ? 'h264' : p.videoCodec === 12 ? 'hevc' : String(p.videoCodec),
        audioCodec: p.audioCodec === 10 ? 'aac' : p.audioCodec ? String(p.audioCodec) : null,
        updatedAt: now,
      };
      await this.rooms.updateStats(key, stats).catch(() => undefined);
    }
    const publishing = new Set([...this.context.broadcasts.values()].map((b) => b.publisher?.id));
    for (const id of this.lastInBytes.keys()) if (!publishing.has(id)) this.lastInBytes.delete(id);
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
      const stream = parseStreamName(s.streamName);
      if (!stream || !verifySignature(this.secret, publishToken(s.streamPath), s.streamQuery?.token)) return this.reject(s, 'publish to a channel without a valid worker token');
      // The worker's signed publish carries the password hash: known before the first frame, so RTMP plays check it synchronously.
      const ph = s.streamQuery?.ph;
      this.passwords.set(stream.channelId, typeof ph === 'string' && /^[0-9a-f]{64}$/.test(ph) ? ph : null);
      if (broadcast) {
        broadcast.publishGraceMs = LIVE_PUBLISH_GRACE_MS;
        this.announceFirstKeyframe(broadcast, stream.channelId, s.streamName);
      }
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
      await this.autoResume(key);
    }).catch((e: Error) => this.reject(s, `ingest check failed: ${e.message}`));
  }

  // A member back within the retention time resumes its interrupted channel when that channel asked for it.
  private async autoResume(key: IngestKey): Promise<void> {
    const channelId = await this.deps.redis.get(this.keys.upstreamChannel(key.sdkAppId, key.roomId, key.userId, key.srcType));
    const ch = channelId ? await this.channels.get(channelId) : null;
    if (!ch || ch.state !== 'interrupted' || !(ch.option.autoResume || ch.resumeOnReturn)) return;
    const resumed = await resumeChannel(this.channels, this.queue, ch, 'resumed: the member published again', this.deps.config.maxChannelsPerRoom).catch(() => false);
    if (resumed) this.log.info({ channelId: ch.channelId }, 'channel resumed by itself');
  }

  // Tells the worker the moment its publish carries a keyframe (viewers can play from then on): the start answers
  // without waiting for ffmpeg's next progress report.
  private announceFirstKeyframe(b: NmsBroadcast, channelId: string, stream: string): void {
    const original = b.broadcastMessage;
    b.broadcastMessage = (packet) => {
      original(packet);
      if (packet.codec_type === 9 && packet.flags === 3) {
        b.broadcastMessage = original;
        void this.deps.redis.publish(this.keys.media(), JSON.stringify({ channelId, stream, keyframeAt: Date.now() })).catch(() => undefined);
      }
    };
  }

  private onDonePublish(s: NmsSession): void {
    if (s.relayRejected || s.streamApp !== INGEST_APP) return;
    const key = parseIngestStreamName(s.streamName);
    if (!key) return;
    // The member left: its readers (relay ffmpegs) get an end of stream now instead of waiting for a new publisher.
    const b = this.context.broadcasts.get(s.streamPath);
    if (b && b.publisher === null) for (const sub of [...b.subscribers.values()]) sub.close();
    void this.rooms.remove(key.sdkAppId, key.roomId, key.userId, key.srcType, 'ingest')
      .then((removed) => { if (removed) this.log.info({ roomId: key.roomId, userId: key.userId, srcType: key.srcType }, 'upstream left the ingest'); })
      .catch((e: Error) => this.log.warn({ err: e.message }, 'could not remove upstream'));
  }

  private onPrePlay(s: NmsSession): void {
    if (s.streamApp === INGEST_APP && verifySignature(this.secret, readToken(s.streamPath), s.streamQuery?.token)) return;
    const stream = s.streamApp === LIVE_APP ? parseStreamName(s.streamName) : null;
    if (!stream) return this.reject(s, 'play of a stream that is not a channel');
    // HTTP-FLV and WS-FLV were checked before reaching node-media-server; RTMP is checked here.
    if (s.protocol !== 'rtmp') return;
    if (this.passwords.has(stream.channelId)) {
      const auth = checkPlay(stream.channelId, this.passwords.get(stream.channelId) ?? undefined, s.streamQuery);
      if (auth !== 'ok') return this.reject(s, `RTMP play with ${auth} password`);
      const lostAt = this.interruptedAt.get(stream.channelId);
      if (lostAt !== undefined && Date.now() - lostAt >= this.deps.config.liveEndedAfterMs) this.reject(s, 'live ended: the upstream was lost');
      return;
    }
    // Not published since this server started: nothing flows until it is, so the record can be checked meanwhile.
    void playDecision(this.channels, stream.channelId, s.streamQuery ?? {}, true, this.deps.config.liveEndedAfterMs)
      .then(({ refusal }) => { if (refusal) this.reject(s, refusal.body.message); })
      .catch(() => this.reject(s, 'channel check failed'));
  }

  // A stopped or failed channel disconnects its viewers at once instead of leaving them waiting for a publisher.
  private onChannelEvent(message: string): void {
    let ev: ChannelEvent;
    try { ev = JSON.parse(message) as ChannelEvent; } catch { return; }
    if (ev.state === 'interrupted') this.interruptedAt.set(ev.channelId, Date.now());
    if (ev.state === 'live') this.interruptedAt.delete(ev.channelId);
    if (ev.state !== 'stopped' && ev.state !== 'failed' && ev.state !== 'recycled') return;
    this.passwords.delete(ev.channelId);
    this.interruptedAt.delete(ev.channelId);
    for (const [streamPath, b] of this.context.broadcasts) {
      const name = streamPath.slice(LIVE_APP.length + 2);
      if (!streamPath.startsWith(`/${LIVE_APP}/`) || parseStreamName(name)?.channelId !== ev.channelId) continue;
      b.publishGraceMs = 0;
      const viewers = b.subscribers.size;
      for (const sub of [...b.subscribers.values()]) sub.close();
      this.log.info({ channelId: ev.channelId, stream: name, viewers }, 'channel ended: viewers disconnected');
    }
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
