import fs from 'node:fs';
import path from 'node:path';
import type { RelayConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import type { AppRegistry } from '../tenants/apps.js';
import type { RoomRegistry } from '../rooms/registry.js';
import type { ChannelStore } from '../channels/store.js';
import type { MessageBus } from '../channels/messages.js';
import { LIVE_APP } from '../channels/urls.js';
import { INGEST_APP } from '../rooms/ingest.js';
import { MediaMetrics } from './metrics.js';
import type { CredentialThrottle } from '../auth/throttle.js';
import { MediaHttp } from './http.js';
import { RtmpAccess } from './rtmp.js';
import { Ingest } from './ingest.js';
import type { Readiness } from '../health/index.js';
import { mediaNodeId } from '../cluster/instance.js';
import type { BootMarker } from '../redis/boot.js';
import { patchSessions } from './session-patch.js';
import { PublisherIdleWatch } from './idle.js';
import { WhipServer } from '../whip/server.js';
import {
  closeAllSessions,
  createNms,
  guardHttp,
  listen,
  refuseSession,
  type NmsContext,
  type NmsInstance,
} from './nms.js';
import { NodeLoadMeter } from './load.js';
import type { ClusterView } from './owner.js';
import type { NodeLoad } from '../cluster/nodes.js';

/** Dependencies of the media server; it reads channel records and never changes them. */
export interface MediaServerDeps {
  config: RelayConfig;
  logger: Logger;
  /** Channel records, read-only: play authorisation and the status route. */
  channels: Pick<ChannelStore, 'get'>;
  /** Where ingest members are registered while they publish. */
  rooms: Pick<RoomRegistry, 'register' | 'remove' | 'removeStaleIngest' | 'updateStats'>;
  /** This media node's name (cluster/instance.ts `mediaNodeId`); default: `host:rtmpPort`. */
  node?: string;
  /** The media nodes alive in the cluster; absent: none but this one. */
  aliveNodes?: () => Promise<Set<string>>;
  /** What `/readyz` on the HTTP port checks; absent: ready while it runs. */
  readiness?: () => Promise<Readiness>;
  /** App secrets, for the signature of ingest publishes. */
  apps: Pick<AppRegistry, 'get' | 'list'>;
  /** Channel events in (`events`), media facts out (`media`). */
  bus: Pick<MessageBus, 'publish' | 'subscribe'>;
  /** The internal secret workers sign their publishes and ingest reads with. */
  secret: string;
  /** What this process knows of Redis losing its data (for /healthz); absent in tests of the media server alone. */
  boot?: Pick<BootMarker, 'status'>;
  /** Failed admin tokens at /metrics (shared counts in Redis); in memory when absent. */
  throttle?: CredentialThrottle;
  /** The cluster's media nodes: FLV plays and status of a channel placed on another node go there; absent: none. */
  cluster?: ClusterView;
}

/**
 * The embedded node-media-server (RTMP ingest and output, HTTP-FLV, WS-FLV) behind a guard that only lets well-formed
 * requests reach it, plus the HLS folder served with CORS, publish/play authorisation and ingest registration.
 */
export class MediaServer {
  private constructor(
    private readonly nms: NmsInstance,
    private readonly context: NmsContext,
    private readonly rtmp: RtmpAccess,
    private readonly ingest: Ingest,
    private readonly idle: PublisherIdleWatch,
    private readonly whip: WhipServer | null,
    private readonly meter: NodeLoadMeter,
  ) {}

  /** What this node carries since the previous call (its heartbeat's load). */
  load(): NodeLoad {
    return this.meter.read();
  }

  /** Starts the listeners; rejects (instead of exiting the process) when a port is taken. */
  static async start(deps: MediaServerDeps): Promise<MediaServer> {
    const { config, logger } = deps;
    if (!config.httpPort || !config.rtmpPort)
      throw new Error('the media server needs fixed RELAY_HTTP_PORT and RELAY_RTMP_PORT (0 is not allowed)');
    fs.mkdirSync(config.hlsDir, { recursive: true });
    const { nms, context } = createNms(
      {
        bind: config.bind,
        rtmp: { port: config.rtmpPort },
        http: { port: config.httpPort },
        store: { path: path.join(config.dataDir, 'media-server') },
        webadmin: { enable: false },
      },
      logger,
    );
    const metrics = new MediaMetrics(context);
    const whip = whipServer(deps, context);
    // Only requests the relay understands reach node-media-server: it crashes on some malformed FLV names.
    guardHttp(nms, logger, (nmsHandlers) => new MediaHttp({ ...deps, context, metrics, whip }, nmsHandlers).handlers());
    const rtmp = new RtmpAccess({ ...deps, context });
    const node = deps.node ?? mediaNodeId(config.rtmpPort);
    const ingest = new Ingest({ ...deps, node, context, ...(whip ? { whip } : {}) });
    patchSessions(context, logger, { playName: (app, name) => rtmp.playName(app, name) });
    const idle = new PublisherIdleWatch(context, logger, config.ingestIdleMs);
    nms.on('prePublish', (s) => {
      if (s.streamApp === LIVE_APP) return rtmp.onPublish(s);
      if (s.streamApp === INGEST_APP) return ingest.onPublish(s);
      refuseSession(context, logger, s, `unknown application ${s.streamApp}`);
    });
    nms.on('donePublish', (s) => ingest.onDone(s));
    nms.on('prePlay', (s) => {
      rtmp.onPlay(s);
      // a reader of a WHIP member (a channel starting) gets a fresh keyframe soon instead of waiting for the next
      if (s.streamApp === INGEST_APP) whip?.requestKeyframe(s.streamName);
    });
    const server = new MediaServer(nms, context, rtmp, ingest, idle, whip, new NodeLoadMeter(context));
    try {
      await ingest.start();
      await rtmp.start();
      await listen(nms);
      idle.start();
    } catch (e) {
      ingest.close();
      await rtmp.close();
      throw e;
    }
    logger.info({ http: config.httpPort, rtmp: config.rtmpPort }, 'media server listening');
    return server;
  }

  /** Registers the members publishing into the ingest again (after Redis lost its data); returns how many. */
  reregisterMembers(): Promise<number> {
    return this.ingest.reregister();
  }

  /** Stops the listeners and the subscriptions. */
  async close(): Promise<void> {
    this.idle.close();
    await this.whip?.close();
    this.ingest.close();
    closeAllSessions(this.context);
    await this.rtmp.close();
    await this.nms.stop();
  }
}

/** The WHIP endpoint of this media server; null when RELAY_WHIP_MAX_SESSIONS is 0. */
function whipServer(deps: MediaServerDeps, context: NmsContext): WhipServer | null {
  const { config, logger } = deps;
  if (config.whipMaxSessions === 0) return null;
  const wildcard = config.bind === '0.0.0.0' || config.bind === '::' || config.bind === '';
  return new WhipServer({
    config: {
      ffmpegPath: config.ffmpegPath,
      rtmpHost: wildcard ? '127.0.0.1' : config.bind,
      rtmpPort: config.rtmpPort,
      dataDir: config.dataDir,
      ingestIdleMs: config.ingestIdleMs,
      iceHosts: config.whipIceHosts,
      maxSessions: config.whipMaxSessions,
    },
    apps: deps.apps,
    isPublishing: (name) => {
      const p = context.broadcasts.get(`/${INGEST_APP}/${name}`)?.publisher;
      return !!p && !p.relayRejected;
    },
    logger,
  });
}
