import type { RelayConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import type { ChannelStore } from '../channels/store.js';
import type { ChannelEvent, MessageBus } from '../channels/messages.js';
import { LIVE_APP, parseStreamName } from '../channels/urls.js';
import { checkPlay } from '../channels/password.js';
import { INGEST_APP } from '../rooms/ingest.js';
import { publishToken, readToken, verifySignature } from '../auth/index.js';
import { playDecision } from './access.js';
import { broadcastsOf, closeViewers, onFirstKeyframe, refuseSession, type NmsContext, type NmsSession } from './nms.js';

/** How long viewers of a channel wait for its publisher to come back (worker failover) before the broadcast ends. */
const LIVE_PUBLISH_GRACE_MS = 10_000;

/** Dependencies of the RTMP side. */
export interface RtmpDeps {
  config: Pick<RelayConfig, 'liveEndedAfterMs'>;
  channels: Pick<ChannelStore, 'get'>;
  bus: Pick<MessageBus, 'publish' | 'subscribe'>;
  context: NmsContext;
  /** The internal secret workers sign their publishes and ingest reads with. */
  secret: string;
  logger: Logger;
}

/**
 * Who may publish and play RTMP: workers publish channels with a signed token, workers read the ingest with one,
 * viewers play channels (with the password when there is one). Announces each channel stream's first keyframe, and
 * disconnects a channel's viewers when the channel ends.
 */
export class RtmpAccess {
  /** Password hash (or null) of each channel published here, from the worker's publish. */
  private readonly passwords = new Map<string, string | null>();
  /** When each channel published here lost its upstream (until it is live again). */
  private readonly interruptedAt = new Map<string, number>();
  private unsubscribe: (() => Promise<void>) | null = null;

  constructor(private readonly deps: RtmpDeps) {}

  /** Starts following channel events. */
  async start(): Promise<void> {
    this.unsubscribe = await this.deps.bus.subscribe('events', (ev) => this.onChannelEvent(ev));
  }

  /** Stops following channel events. */
  async close(): Promise<void> {
    await this.unsubscribe?.();
    this.unsubscribe = null;
  }

  private refuse(s: NmsSession, why: string): void {
    refuseSession(this.deps.context, this.deps.logger, s, why);
  }

  /** A publish to the live application: only a worker's signed publish of a channel stream. */
  onPublish(s: NmsSession): void {
    const stream = parseStreamName(s.streamName);
    if (!stream || !verifySignature(this.deps.secret, publishToken(s.streamPath), s.streamQuery?.token))
      return this.refuse(s, 'publish to a channel without a valid worker token');
    // The worker's signed publish carries the password hash: known before the first frame, so RTMP plays check it
    // synchronously.
    const ph = s.streamQuery?.ph;
    this.passwords.set(stream.channelId, typeof ph === 'string' && /^[0-9a-f]{64}$/.test(ph) ? ph : null);
    const broadcast = this.deps.context.broadcasts.get(s.streamPath);
    if (!broadcast) return;
    broadcast.publishGraceMs = LIVE_PUBLISH_GRACE_MS;
    // The worker's start answers the moment viewers can play, without waiting for ffmpeg's next progress report.
    onFirstKeyframe(broadcast, () => {
      this.deps.bus
        .publish('media', { type: 'keyframe', channelId: stream.channelId, stream: s.streamName, at: Date.now() })
        .catch((e: Error) =>
          this.deps.logger.warn(
            { channelId: stream.channelId, err: e.message },
            'could not announce the first keyframe',
          ),
        );
    });
  }

  /** A play: a worker's signed read of the ingest, or a viewer of a channel (RTMP checked here, FLV in http.ts). */
  onPlay(s: NmsSession): void {
    if (s.streamApp === INGEST_APP && verifySignature(this.deps.secret, readToken(s.streamPath), s.streamQuery?.token))
      return;
    const stream = s.streamApp === LIVE_APP ? parseStreamName(s.streamName) : null;
    if (!stream) return this.refuse(s, 'play of a stream that is not a channel');
    // HTTP-FLV and WS-FLV were checked before reaching node-media-server; RTMP is checked here.
    if (s.protocol !== 'rtmp') return;
    if (this.passwords.has(stream.channelId)) {
      const auth = checkPlay(stream.channelId, this.passwords.get(stream.channelId) ?? undefined, s.streamQuery);
      if (auth !== 'ok') return this.refuse(s, `RTMP play with ${auth} password`);
      const lostAt = this.interruptedAt.get(stream.channelId);
      if (lostAt !== undefined && Date.now() - lostAt >= this.deps.config.liveEndedAfterMs)
        this.refuse(s, 'live ended: the upstream was lost');
      return;
    }
    // Not published since this server started: nothing flows until it is, so the record can be checked meanwhile.
    void playDecision(
      this.deps.channels,
      stream.channelId,
      s.streamQuery ?? {},
      true,
      this.deps.config.liveEndedAfterMs,
    )
      .then(({ refusal }) => {
        if (refusal) this.refuse(s, refusal.body.message);
      })
      .catch((e: Error) => this.refuse(s, `channel check failed: ${e.message}`));
  }

  // A stopped or failed channel disconnects its viewers at once instead of leaving them waiting for a publisher.
  private onChannelEvent(ev: ChannelEvent): void {
    if (ev.state === 'interrupted') this.interruptedAt.set(ev.channelId, Date.now());
    if (ev.state === 'live') this.interruptedAt.delete(ev.channelId);
    if (ev.state !== 'stopped' && ev.state !== 'failed' && ev.state !== 'recycled') return;
    this.passwords.delete(ev.channelId);
    this.interruptedAt.delete(ev.channelId);
    for (const [name, b] of broadcastsOf(this.deps.context, LIVE_APP)) {
      if (parseStreamName(name)?.channelId !== ev.channelId) continue;
      b.publishGraceMs = 0;
      const viewers = closeViewers(b);
      this.deps.logger.info({ channelId: ev.channelId, stream: name, viewers }, 'channel ended: viewers disconnected');
    }
  }
}
