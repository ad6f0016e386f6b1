import path from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { RelayConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import type { ChannelStore } from '../channels/store.js';
import { playTokenOf, tokenisePlaylist } from '../channels/password.js';
import type { Channel } from '../channels/types.js';
import { servePlayer, servePublisher } from '../web/static.js';
import { CORS_HEADERS, FLV_HEADERS, prepareFlvResponse, sendJson, serveHlsFile } from '../web/http.js';
import { liveEnded, playDecision, queryOf } from './access.js';
import type { MediaMetrics } from './metrics.js';
import { isRedisUnavailable } from '../redis/index.js';
import { metricsRefusal as METRICS_REFUSAL } from '../auth/index.js';
import { CredentialThrottle, guardAdmin } from '../auth/throttle.js';
import { RelayError } from '../errors/index.js';
import type { HttpHandlers, NmsContext } from './nms.js';
import { routeOf, tiersOf, unsuffixedStream, upgradeChannelOf, withFlvStream, type MediaRoute } from './routes.js';
import { PlaylistWait } from './hls-wait.js';
import { readyzAnswer, type Readiness } from '../health/index.js';
import { isWhipUrl } from '../whip/http.js';
import { proxyUpgrade, redirect, redirectUrl, whereabouts, type ClusterView } from './owner.js';
import { liveFigures } from './figures.js';

/** Dependencies of the HTTP guard. */
export interface MediaHttpDeps {
  config: Pick<RelayConfig, 'hlsDir' | 'liveEndedAfterMs' | 'adminToken' | 'hlsSegmentSeconds'>;
  channels: Pick<ChannelStore, 'get'>;
  metrics: MediaMetrics;
  context: NmsContext;
  logger: Logger;
  /** Whether Redis lost its data under this process, for /healthz. */
  boot?: { status(): { dataLosses: number; lastDataLossAt: number | null } } | undefined;
  /** Failed admin tokens at /metrics, counted per client address (in Redis, shared with the API); in memory when absent. */
  throttle?: CredentialThrottle;
  /** What `/readyz` checks (Redis, the RTMP listener); absent: ready while it runs. */
  readiness?: () => Promise<Readiness>;
  /** The WHIP endpoint (`/whip/…`); absent or null: none. */
  whip?: { handle(req: IncomingMessage, res: ServerResponse): Promise<void> } | null;
  /** The cluster's media nodes (FLV and status of a channel on another node are sent there); absent: this one only. */
  cluster?: ClusterView;
}

/** The answer to a play of a channel whose media node is gone and that no other node took within MOVE_WAIT_MS. */
const MOVING = {
  code: 50006,
  message: "the channel's media node is gone and the channel is not placed on another one yet",
  hint: 'retry in a few seconds: the same URL plays once its worker publishes on another node',
};

/**
 * The media server's HTTP side: only requests the relay understands reach node-media-server (it crashes on some
 * malformed FLV names). FLV and WS-FLV are authorised here (a tiered channel's unsuffixed name plays its best tier),
 * HLS files (a playlist asked for before it exists is held, see `PlaylistWait`), the player, channel status, metrics and
 * the health check are served here.
 */
export class MediaHttp {
  private readonly throttle: CredentialThrottle;
  private readonly playlists = new PlaylistWait();

  constructor(
    private readonly deps: MediaHttpDeps,
    private readonly nms: HttpHandlers,
  ) {
    this.throttle = deps.throttle ?? new CredentialThrottle();
  }

  /** The handlers that take node-media-server's place on its HTTP server. */
  handlers(): HttpHandlers {
    return {
      request: (req, res) => {
        this.onRequest(req, res).catch((e: Error) => {
          this.deps.logger.warn({ err: e.message }, 'media request failed');
          if (isRedisUnavailable(e))
            sendJson(res, 503, {
              code: 50006,
              message: 'the state store is unreachable',
              hint: 'retry in a few seconds',
            });
          else sendJson(res, 500, { code: 500, message: 'internal error', hint: 'retry' });
        });
      },
      upgrade: (req, socket, head) => {
        this.onUpgrade(req, socket, head).catch((e: Error) => {
          this.deps.logger.warn({ err: e.message }, 'media upgrade failed');
          socket.destroy();
        });
      },
    };
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.deps.whip && isWhipUrl(req.url)) return this.deps.whip.handle(req, res);
    if (req.method === 'OPTIONS') {
      res.writeHead(204, CORS_HEADERS);
      res.end();
      return;
    }
    const route = routeOf(req.url);
    if (route.kind === 'malformed')
      return sendJson(res, 400, {
        code: 400,
        message: 'malformed request path',
        hint: 'use a play URL returned by push/start',
      });
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return sendJson(res, 405, { code: 405, message: `${req.method} is not allowed`, hint: 'players use GET' });
    const { config, channels, metrics } = this.deps;
    switch (route.kind) {
      case 'livez':
        return sendJson(res, 200, { code: 0, live: true });
      case 'readyz': {
        const a = readyzAnswer(await this.deps.readiness?.());
        return sendJson(res, a.status, { ...a.body });
      }
      case 'healthz':
        return sendJson(res, 200, { ok: true, ...(this.deps.boot ? { redis: this.deps.boot.status() } : {}) });
      case 'metrics': {
        // it lists every tenant's channel ids (the play keys of channels without a password): operators only
        const { adminToken } = this.deps.config;
        const { message, hint } = METRICS_REFUSAL(adminToken);
        const wrong = new RelayError(1001, message, { hint });
        const address = req.socket.remoteAddress ?? '';
        const refused = await guardAdmin(this.throttle, address, req.headers.authorization, adminToken, wrong).then(
          () => null,
          (e: RelayError) => e,
        );
        if (refused?.details.retryAfterMs)
          res.setHeader('Retry-After', Math.ceil(Number(refused.details.retryAfterMs) / 1000));
        if (refused) return sendJson(res, refused.status, refused.toBody());
        const text = await metrics.registry.metrics();
        res.writeHead(200, { 'Content-Type': metrics.registry.contentType });
        res.end(text);
        return;
      }
      case 'player-redirect':
        res.writeHead(301, { ...CORS_HEADERS, Location: '/player/' });
        res.end();
        return;
      case 'player':
        return servePlayer(req, res, route.file);
      case 'publisher-redirect':
        res.writeHead(301, { ...CORS_HEADERS, Location: '/publish/' });
        res.end();
        return;
      case 'publisher':
        return servePublisher(req, res, route.file);
      case 'status':
        return this.sendStatus(req, res, route.channelId);
      case 'hls': {
        const { channel, refusal } = await playDecision(
          channels,
          route.channelId,
          queryOf(req.url),
          false,
          config.liveEndedAfterMs,
        );
        if (refusal) return sendJson(res, refusal.status, refusal.body);
        const token = channel.passwordHash ? playTokenOf(channel.passwordHash) : null;
        metrics.hlsRequest(route.channelId, route.file.endsWith('.m3u8'));
        await this.awaitPlaylist(req, channel, route);
        return serveHlsFile(
          req,
          res,
          config.hlsDir,
          route.dir,
          route.file,
          token ? (t) => tokenisePlaylist(t, token) : undefined,
        );
      }
      case 'flv': {
        if (!route.channelId)
          return sendJson(res, 404, { code: 404, message: 'no such channel', hint: 'check the play URL' });
        const { channel, refusal } = await playDecision(
          channels,
          route.channelId,
          queryOf(req.url),
          true,
          config.liveEndedAfterMs,
        );
        if (refusal) return sendJson(res, refusal.status, refusal.body);
        // node-media-server would subscribe a HEAD as a viewer and never end it: answered here, headers only
        if (req.method === 'HEAD') {
          res.writeHead(200, FLV_HEADERS);
          res.end();
          return;
        }
        const where = await whereabouts(channel, this.deps.cluster, channels, () => req.socket.destroyed);
        if (where.at === 'moving') return sendJson(res, 503, MOVING, { 'Retry-After': '1' });
        if (where.at === 'node') return redirect(res, redirectUrl(where.beat, this.deps.cluster!, req.url!));
        if (route.rateType === null)
          req.url = withFlvStream(req.url!, unsuffixedStream(channel.channelId, tiersOf(channel)));
        prepareFlvResponse(res);
        this.nms.request(req, res);
        return;
      }
      case 'not-found':
        return sendJson(res, 404, {
          code: 404,
          message: 'not found',
          hint: 'FLV: /live/{channelId}.flv, HLS: /hls/{channelId}/index.m3u8',
        });
    }
  }

  // Public facts of a channel for players (no secrets, no credentials needed): state, URLs, tiers, live figures.
  private async sendStatus(req: IncomingMessage, res: ServerResponse, channelId: string): Promise<void> {
    const ch = await this.deps.channels.get(channelId);
    if (!ch || ch.state === 'recycled')
      return sendJson(res, 404, { code: 404, message: 'no such channel', hint: 'check the channel id' });
    // its live figures are those of the node that holds its streams
    const where = await whereabouts(ch, this.deps.cluster, this.deps.channels, () => req.socket.destroyed);
    if (where.at === 'node') return redirect(res, redirectUrl(where.beat, this.deps.cluster!, req.url!));
    const figures = liveFigures(this.deps.context, channelId, Date.now());
    // the unsuffixed name of a tiered channel plays its best tier (RTMP and FLV): its edge under that name too
    const served = figures.liveEdge[unsuffixedStream(channelId, tiersOf(ch))];
    if (served && !figures.liveEdge[channelId]) figures.liveEdge[channelId] = served;
    sendJson(res, 200, {
      code: 0,
      channelId,
      state: ch.state,
      liveEnded: liveEnded(ch, this.deps.config.liveEndedAfterMs, Date.now()),
      passwordProtected: !!ch.passwordHash,
      channelName: ch.option.channelName ?? null,
      rateTypes: ch.option.rateTypes,
      urls: ch.urls,
      startedAt: ch.startedAt ?? null,
      interruptedAt: ch.interruptedAt ?? null,
      stats: ch.stats ?? null,
      ...figures,
    });
  }

  private async onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    // an upgrade's socket has no error listener of Node's any more: a viewer resetting it while its play is decided
    // (a Redis read, or a wait for its channel to move) must not end this process
    socket.on('error', () => socket.destroy());
    const route = routeOf(req.url);
    const channelId = upgradeChannelOf(req.url);
    const decision = channelId
      ? await playDecision(this.deps.channels, channelId, queryOf(req.url), true, this.deps.config.liveEndedAfterMs)
      : null;
    const refusal = decision
      ? decision.refusal
      : { status: 404, body: { code: 404, message: 'not found', hint: 'WS-FLV: /live/{channelId}.flv' } };
    if (refusal) {
      const text = { 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found' }[refusal.status];
      socket.end(
        `HTTP/1.1 ${refusal.status} ${text}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${JSON.stringify(refusal.body)}`,
      );
      return;
    }
    const gone = () => socket.destroyed;
    const where = await whereabouts(decision!.channel!, this.deps.cluster, this.deps.channels, gone);
    if (where.at === 'node') return proxyUpgrade(req, socket, head, where.beat, this.deps.cluster!);
    if (where.at === 'moving')
      return void socket.end(`HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\n\r\n`);
    if (route.kind === 'flv' && route.rateType === null && decision?.channel)
      req.url = withFlvStream(req.url!, unsuffixedStream(decision.channel.channelId, tiersOf(decision.channel)));
    this.nms.upgrade(req, socket, head);
  }

  /**
   * Holds a playlist request of a starting or live channel until the playlist exists, at most three target durations
   * (RELAY_HLS_SEGMENT_SECONDS × 3: the first segment ends at the upstream's first keyframe after one target duration),
   * so a player opening the HLS URL right after the start answer gets the playlist instead of a 404. Only playlists the
   * channel writes are waited for (its own folder, or one of its tiers'); a viewer that goes away ends the wait.
   */
  private async awaitPlaylist(req: IncomingMessage, ch: Channel, route: Extract<MediaRoute, { kind: 'hls' }>) {
    const tiers = tiersOf(ch);
    const ours = route.rateType === null || (tiers.length > 1 && tiers.includes(route.rateType));
    if (route.file !== 'index.m3u8' || !ch.hls || !ours || (ch.state !== 'starting' && ch.state !== 'live')) return;
    const gone = new AbortController();
    const onClose = () => gone.abort();
    req.socket.once('close', onClose);
    const file = path.join(this.deps.config.hlsDir, route.dir, route.file);
    await this.playlists.until(file, this.deps.config.hlsSegmentSeconds * 3000, gone.signal);
    req.socket.off('close', onClose);
  }
}
