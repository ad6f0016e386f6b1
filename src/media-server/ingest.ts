import type { Logger } from '../log.js';
import type { AppRegistry } from '../tenants/apps.js';
import type { RoomRegistry } from '../rooms/registry.js';
import type { Upstream, UpstreamStats } from '../rooms/model.js';
import type { MessageBus } from '../channels/messages.js';
import { INGEST_APP, ingestStreamName, parseIngestStreamName, type IngestKey } from '../rooms/ingest.js';
import { verifySignature } from '../auth/index.js';
import { broadcastsOf, closeViewers, refuseSession, type NmsContext, type NmsSession } from './nms.js';

const STATS_INTERVAL_MS = 2000;
/** How often the in-memory copy of the app secrets is refreshed from the registry. */
const SECRETS_REFRESH_MS = 2000;

/** Dependencies of the ingest. */
export interface IngestDeps {
  apps: Pick<AppRegistry, 'get' | 'list'>;
  rooms: Pick<RoomRegistry, 'register' | 'remove' | 'removeStaleIngest' | 'updateStats'>;
  bus: Pick<MessageBus, 'publish'>;
  /** This media node's name: its members' registrations carry it. */
  node: string;
  /** The media nodes alive in the cluster now; absent: none but this one. */
  aliveNodes?: () => Promise<Set<string>>;
  context: NmsContext;
  logger: Logger;
  /** WHIP bridges publish with a single-use token instead of the member's signature; absent: no WHIP. */
  whip?: { claimBridge(streamName: string, token: unknown): boolean };
}

type MemberSource = Extract<Upstream['source'], 'ingest' | 'whip'>;

/**
 * The built-in ingest: a member's signed publish registers it in its room (and is announced on the media topic, so
 * the control side may resume its channel), its end removes it; while it publishes, its figures go into the registry.
 */
export class Ingest {
  private statsTimer: NodeJS.Timeout | null = null;
  private secretsTimer: NodeJS.Timeout | null = null;
  /**
   * App secrets, kept in memory so that a publish is checked while node-media-server asks (before it accepts any
   * media): an unsigned publisher never holds a member's stream key, not even for the moment a Redis read takes.
   */
  private secrets = new Map<string, string>();
  private readonly lastInBytes = new Map<string, number>();
  /** How each publishing session registered its member (by session id): RTMP (`ingest`) or a WHIP bridge. */
  private readonly sources = new Map<string, MemberSource>();
  /** Whether the last stats write failed (a Redis outage is logged once, not every interval). */
  private statsFailing = false;

  constructor(private readonly deps: IngestDeps) {}

  private get log(): Logger {
    return this.deps.logger;
  }

  /** Clears the registrations of a previous run, loads the app secrets and starts the periodic stats and refresh. */
  async start(): Promise<void> {
    await this.refreshSecrets();
    this.secretsTimer = setInterval(() => {
      this.refreshSecrets().catch((e: Error) => this.log.debug({ err: e.message }, 'app secrets not refreshed'));
    }, SECRETS_REFRESH_MS);
    this.secretsTimer.unref();
    // Members registered by a previous run of this node, or by a node that is gone, are gone with it (they register
    // again when they publish); those of other live nodes of the cluster are theirs.
    const node = this.deps.node;
    const alive = (await this.deps.aliveNodes?.()) ?? new Set<string>();
    alive.delete(node);
    const stale = await this.deps.rooms.removeStaleIngest((u) => !u.node || u.node === node || !alive.has(u.node));
    if (stale) this.log.info({ stale, node }, 'cleared ingest registrations of gone media nodes');
    this.statsTimer = setInterval(() => {
      void this.saveStats();
    }, STATS_INTERVAL_MS);
    this.statsTimer.unref();
  }

  /** Stops the periodic stats. */
  close(): void {
    if (this.statsTimer) clearInterval(this.statsTimer);
    if (this.secretsTimer) clearInterval(this.secretsTimer);
    this.statsTimer = null;
    this.secretsTimer = null;
  }

  /**
   * Registers every member publishing now again (after Redis lost its data, their room entries are gone while they
   * still publish here); returns how many.
   */
  async reregister(): Promise<number> {
    let n = 0;
    for (const [name, b] of broadcastsOf(this.deps.context, INGEST_APP)) {
      const key = b.publisher && !b.publisher.relayRejected ? parseIngestStreamName(name) : null;
      if (!key) continue;
      const source = this.sources.get(b.publisher!.id) ?? 'ingest';
      await this.deps.rooms.register({ ...key, source, node: this.deps.node, registeredAt: Date.now() });
      n++;
    }
    if (n) this.log.info({ members: n }, 'ingest members registered again');
    return n;
  }

  private async refreshSecrets(): Promise<void> {
    this.secrets = new Map((await this.deps.apps.list()).map((a) => [a.sdkAppId, a.secretKey]));
  }

  private refuse(s: NmsSession, why: string): void {
    refuseSession(this.deps.context, this.log, s, why);
  }

  /** A publish to the ingest application: accepted with the app's signature, then registered and announced. */
  onPublish(s: NmsSession): void {
    const key = parseIngestStreamName(s.streamName);
    if (!key) return this.refuse(s, 'ingest stream name is not <sdkAppId>_<roomId>_<userId>_<camera|screen>');
    // A member that leaves is removed at once: no publish grace on the ingest.
    const broadcast = this.deps.context.broadcasts.get(s.streamPath);
    if (broadcast) broadcast.publishGraceMs = 0;
    // the member publishes already (RTMP, or its WHIP bridge): node-media-server refuses this one after this hook, so
    // it must not touch the member's registration (it would replace the entry, then remove it when it is cut)
    if (broadcast?.publisher && broadcast.publisher !== s)
      return this.refuse(s, 'the member is already publishing (RTMP or WHIP)');
    // a WHIP session's bridge ffmpeg: its single-use token, never the member's signature (not reusable from `ps`)
    if (s.streamQuery?.token !== undefined) {
      if (!this.deps.whip?.claimBridge(s.streamName, s.streamQuery.token))
        return this.refuse(s, 'ingest publish with a wrong or used bridge token');
      void this.register(s, key, 'whip');
      return;
    }
    const known = this.secrets.get(key.sdkAppId);
    if (known !== undefined) {
      // the usual case, decided before node-media-server goes on with the publish
      if (!verifySignature(known, ingestStreamName(key), s.streamQuery?.sig))
        return this.refuse(s, 'ingest publish with a missing or wrong sig');
      void this.register(s, key, 'ingest');
      return;
    }
    // An app this process has not seen yet (created in the last seconds, or none): read it from the registry.
    void this.deps.apps
      .get(key.sdkAppId)
      .then(async (app) => {
        if (!app || !verifySignature(app.secretKey, ingestStreamName(key), s.streamQuery?.sig))
          return this.refuse(s, 'ingest publish with a missing or wrong sig');
        this.secrets.set(app.sdkAppId, app.secretKey);
        await this.register(s, key, 'ingest');
      })
      .catch((e: Error) => this.refuse(s, `ingest check failed: ${e.message}`));
  }

  // A signed publish: the member joins its room and the control side hears of it.
  private async register(s: NmsSession, key: IngestKey, source: MemberSource): Promise<void> {
    this.sources.set(s.id, source);
    try {
      await this.deps.rooms.register({ ...key, source, node: this.deps.node, registeredAt: Date.now() });
    } catch (e) {
      return this.refuse(s, `ingest registration failed: ${(e as Error).message}`);
    }
    this.log.info(
      { sdkAppId: key.sdkAppId, roomId: key.roomId, userId: key.userId, srcType: key.srcType, source },
      'upstream registered from ingest',
    );
    await this.announce(key);
  }

  // The member is registered either way; a lost announcement only means its channel does not resume by itself.
  private async announce(key: IngestKey): Promise<void> {
    const ev = {
      type: 'member-published',
      sdkAppId: key.sdkAppId,
      roomId: key.roomId,
      userId: key.userId,
      srcType: key.srcType,
      at: Date.now(),
    } as const;
    await this.deps.bus
      .publish('media', ev)
      .catch((e: Error) =>
        this.log.warn(
          { roomId: key.roomId, userId: key.userId, srcType: key.srcType, err: e.message },
          'could not announce the member publish',
        ),
      );
  }

  /** The end of a publish: a member that leaves the ingest leaves its room. */
  onDone(s: NmsSession): void {
    if (s.relayRejected || s.streamApp !== INGEST_APP) return;
    const key = parseIngestStreamName(s.streamName);
    if (!key) return;
    const source = this.sources.get(s.id) ?? 'ingest';
    this.sources.delete(s.id);
    // The member left: its readers (relay ffmpegs) get an end of stream now instead of waiting for a new publisher.
    const b = this.deps.context.broadcasts.get(s.streamPath);
    if (b && b.publisher === null) closeViewers(b);
    void this.deps.rooms
      .remove(key.sdkAppId, key.roomId, key.userId, key.srcType, source, this.deps.node)
      .then((removed) => {
        if (removed)
          this.log.info({ roomId: key.roomId, userId: key.userId, srcType: key.srcType }, 'upstream left the ingest');
      })
      .catch((e: Error) => this.log.warn({ err: e.message }, 'could not remove upstream'));
  }

  // What the ingest measures of each publishing member goes into its registry entry (bitrate, size, codecs).
  private async saveStats(): Promise<void> {
    const now = Date.now();
    const publishing = new Set<string>();
    for (const [name, b] of broadcastsOf(this.deps.context, INGEST_APP)) {
      const p = b.publisher;
      if (!p || p.relayRejected) continue;
      const key = parseIngestStreamName(name);
      if (!key) continue;
      publishing.add(p.id);
      const prev = this.lastInBytes.get(p.id);
      this.lastInBytes.set(p.id, p.inBytes);
      if (prev === undefined) continue;
      await this.deps.rooms.updateStats(key, statsOf(p, prev, now)).then(
        () => {
          this.statsFailing = false;
        },
        (e: Error) => {
          if (!this.statsFailing) this.log.warn({ err: e.message }, 'could not save ingest stats');
          this.statsFailing = true;
        },
      );
    }
    for (const id of this.lastInBytes.keys()) if (!publishing.has(id)) this.lastInBytes.delete(id);
  }
}

/** A publisher's figures; a track it does not send has no codec (null) and no bitrate. */
export function statsOf(
  p: Pick<NmsSession, 'inBytes' | 'videoCodec' | 'videoWidth' | 'videoHeight' | 'videoFramerate' | 'audioCodec'> &
    Partial<Pick<NmsSession, 'audioDatarate'>>,
  prevInBytes: number,
  now: number,
): UpstreamStats {
  const totalKbps = Math.round(((p.inBytes - prevInBytes) * 8) / STATS_INTERVAL_MS);
  const video = Boolean(p.videoCodec);
  return {
    totalKbps,
    videoKbps: video ? Math.max(0, totalKbps - (p.audioCodec ? Math.round(p.audioDatarate || 96) : 0)) : 0,
    width: video ? p.videoWidth : 0,
    height: video ? p.videoHeight : 0,
    fps: video ? p.videoFramerate : 0,
    videoCodec: !video ? null : p.videoCodec === 7 ? 'h264' : p.videoCodec === 12 ? 'hevc' : String(p.videoCodec),
    audioCodec: p.audioCodec === 10 ? 'aac' : p.audioCodec ? String(p.audioCodec) : null,
    updatedAt: now,
  };
}
