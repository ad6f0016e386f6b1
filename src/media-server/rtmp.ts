import type { RelayConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import type { ChannelStore } from '../channels/store.js';
import type { ChannelEvent, MessageBus } from '../channels/messages.js';
import { LIVE_APP, parseStreamName } from '../channels/urls.js';
import { checkPlay } from '../channels/password.js';
import { FINAL_STATES, type RateType } from '../channels/types.js';
import { bestFirst } from '../channels/tiers.js';
import { INGEST_APP } from '../rooms/ingest.js';
import { RunTokenGate } from '../auth/run-tokens.js';
import { playDecision } from './access.js';
import { broadcastsOf, closeViewers, onFirstKeyframe, refuseSession, type NmsContext, type NmsSession } from './nms.js';
import { dropSession, holdOutput, takeOverPublish } from './sessions.js';
import { tiersOf, unsuffixedStream } from './routes.js';

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

/** A worker's session (channel publish or ingest read): the channel and run generation of its token. */
interface RunSession {
  channelId: string;
  gen: number;
}

/**
 * Who may publish and play RTMP: a channel's current run publishes its streams and reads its member from the ingest,
 * each connection with a single-use run token (auth/run-tokens.ts) checked while node-media-server asks; viewers play
 * channels (with the password when there is one). Sessions of an older run of a channel are refused or dropped as
 * soon as a newer run shows itself, and each run is confirmed against the channel record. Announces each channel
 * stream's first keyframe, and disconnects a channel's viewers when the channel ends.
 */
export class RtmpAccess {
  /** Password hash (or null) of each channel whose current run publishes here, from its record. */
  private readonly passwords = new Map<string, string | null>();
  /** The tiers of each channel whose current run publishes here, from its record. */
  private readonly tiers = new Map<string, readonly RateType[]>();
  /** When each channel published here lost its upstream (until it is live again). */
  private readonly interruptedAt = new Map<string, number>();
  private readonly gate: RunTokenGate;
  private readonly runs = new WeakMap<NmsSession, RunSession>();
  private unsubscribe: (() => Promise<void>) | null = null;

  constructor(private readonly deps: RtmpDeps) {
    this.gate = new RunTokenGate(deps.secret);
  }

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

  /**
   * A publish to the live application: only a channel stream, with a run token of that channel (a newer or the same
   * run as its current publisher, which then gives way).
   */
  onPublish(s: NmsSession): void {
    const stream = parseStreamName(s.streamName);
    if (!stream) return this.refuse(s, 'publish to a stream that is not a channel');
    const run = this.gate.admit('publish', s.streamPath, s.streamQuery, Date.now(), stream.channelId);
    if (!run.ok) return this.refuse(s, `channel publish: ${run.why}`);
    const broadcast = this.deps.context.broadcasts.get(s.streamPath);
    const current = broadcast?.publisher ? this.runs.get(broadcast.publisher) : undefined;
    if (current && current.gen > run.gen) return this.refuse(s, 'channel publish: an older run than the publisher');
    this.admitRun(s, run, true);
    if (!broadcast) return;
    takeOverPublish(this.deps.context, this.deps.logger, broadcast, s, 'its channel is published by a newer run');
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

  /**
   * The stream an RTMP play of `/<app>/<name>` is served from (asked as nms reads the play command, before `onPlay`):
   * a tiered channel's unsuffixed name `live/{channelId}` plays its best tier (`unsuffixedStream`), as HTTP-FLV and
   * WS-FLV do; the tiers come from the record of the channel's run publishing here, or else from the tiers publishing.
   * Every other name is left alone.
   */
  playName(app: string, name: string): string {
    const stream = app === LIVE_APP ? parseStreamName(name) : null;
    if (!stream || stream.rateType !== null) return name;
    const known = this.tiers.get(stream.channelId);
    if (known) return unsuffixedStream(stream.channelId, known);
    const publishing: RateType[] = [];
    for (const [other, b] of broadcastsOf(this.deps.context, LIVE_APP)) {
      const s = parseStreamName(other);
      if (b.publisher && s?.channelId === stream.channelId && s.rateType !== null) publishing.push(s.rateType);
    }
    // only a tiered channel publishes suffixed streams
    return publishing.length ? `${stream.channelId}_r${bestFirst(publishing)[0]}` : name;
  }

  /**
   * A play: a run's read of the ingest or of its own channel (push targets), or a viewer of a channel (RTMP checked
   * here, FLV in http.ts).
   */
  onPlay(s: NmsSession): void {
    if (s.streamApp === INGEST_APP) {
      const run = this.gate.admit('read', s.streamPath, s.streamQuery, Date.now());
      return run.ok ? this.admitRun(s, run, false) : this.refuse(s, `ingest read: ${run.why}`);
    }
    const stream = s.streamApp === LIVE_APP ? parseStreamName(s.streamName) : null;
    if (!stream) return this.refuse(s, 'play of a stream that is not a channel');
    // a run's read of its own channel (a push target's ffmpeg): a read token of the channel, whatever its password
    if (s.protocol === 'rtmp' && s.streamQuery && 'nonce' in s.streamQuery) {
      const run = this.gate.admit('read', s.streamPath, s.streamQuery, Date.now(), stream.channelId);
      return run.ok ? this.admitRun(s, run, false) : this.refuse(s, `channel read: ${run.why}`);
    }
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
    // Its password is not known here yet (no run published since this server started, or the record is being read):
    // nothing of the stream reaches this viewer until the record says it may play.
    const held = holdOutput(s, (why) => this.refuse(s, why));
    void playDecision(
      this.deps.channels,
      stream.channelId,
      s.streamQuery ?? {},
      true,
      this.deps.config.liveEndedAfterMs,
    )
      .then(({ channel, refusal }) => {
        if (refusal) return held.refuse(refusal.body.message);
        // a tiered channel not yet publishing here (playName could not tell its tiers): refused rather than left waiting
        // on a stream that never has a publisher
        const tiers = tiersOf(channel);
        if (stream.rateType === null && tiers.length > 1)
          return held.refuse(`a channel with several tiers: play ${unsuffixedStream(stream.channelId, tiers)}`);
        held.release();
      })
      .catch((e: Error) => held.refuse(`channel check failed: ${e.message}`));
  }

  // An admitted run session: a newer run than any seen drops the older runs' sessions; the record confirms it.
  private admitRun(s: NmsSession, run: RunSession & { raised: boolean }, publish: boolean): void {
    this.runs.set(s, { channelId: run.channelId, gen: run.gen });
    if (run.raised) this.dropStale(run.channelId, run.gen);
    void this.confirmRun(s, run, publish);
  }

  // Drops the sessions of a channel's runs older than `gen` (their worker stalled or lost the channel).
  private dropStale(channelId: string, gen: number): void {
    for (const s of this.deps.context.sessions.values()) {
      const r = this.runs.get(s);
      if (r?.channelId === channelId && r.gen < gen)
        dropSession(this.deps.logger, s, `run ${r.gen} of the channel is stale (current ${gen})`);
    }
  }

  // The channel record has the last word: a session of another run than its current one, or of an ended channel, goes.
  private async confirmRun(s: NmsSession, run: RunSession, publish: boolean): Promise<void> {
    const ch = await this.deps.channels.get(run.channelId).catch((e: Error) => {
      this.deps.logger.debug({ channelId: run.channelId, err: e.message }, 'run not confirmed: record unreadable');
      return undefined;
    });
    if (ch === undefined) return;
    const current = ch?.runGen ?? 0;
    if (ch && current > run.gen) {
      this.gate.raise(run.channelId, current);
      this.dropStale(run.channelId, current);
    }
    if (!ch || FINAL_STATES.includes(ch.state))
      return dropSession(this.deps.logger, s, `its channel has ended (${ch ? ch.state : 'no record'})`);
    if (current !== run.gen)
      return dropSession(this.deps.logger, s, `not the current run of its channel (${run.gen}, record ${current})`);
    // known before the first RTMP play is decided synchronously; until then plays are held (onPlay)
    if (publish) {
      this.passwords.set(run.channelId, ch.passwordHash ?? null);
      this.tiers.set(run.channelId, tiersOf(ch));
    }
  }

  /**
   * A stopped or failed channel disconnects its viewers at once instead of leaving them waiting for a publisher; an
   * interrupted one (its upstream lost) keeps them through a short loss and ends them once the loss has lasted
   * `liveEndedAfterMs`, when viewers joining are told the live ended too (they come back on the same URLs if it
   * resumes).
   */
  private onChannelEvent(ev: ChannelEvent): void {
    if (ev.state === 'interrupted') {
      const at = Date.now();
      this.interruptedAt.set(ev.channelId, at);
      setTimeout(() => {
        if (this.interruptedAt.get(ev.channelId) === at)
          this.endViewers(ev.channelId, 'live ended: the upstream was lost', false);
      }, this.deps.config.liveEndedAfterMs).unref();
    }
    if (ev.state === 'live') this.interruptedAt.delete(ev.channelId);
    if (ev.state !== 'stopped' && ev.state !== 'failed' && ev.state !== 'recycled') return;
    this.passwords.delete(ev.channelId);
    this.tiers.delete(ev.channelId);
    this.interruptedAt.delete(ev.channelId);
    this.gate.forget(ev.channelId);
    this.endViewers(ev.channelId, 'channel ended');
  }

  /**
   * Ends the viewers of a channel's streams. When its live was lost (`ended` false) a stream publishing again is left
   * alone (its run came back before the news did), and so are the channel's own readers (push targets): their
   * supervisor reads again when the channel is back.
   */
  private endViewers(channelId: string, why: string, ended = true): void {
    for (const [name, b] of broadcastsOf(this.deps.context, LIVE_APP)) {
      if (parseStreamName(name)?.channelId !== channelId) continue;
      if (ended) b.publishGraceMs = 0;
      else if (b.getPublishStatus?.() === 'publishing') continue;
      const viewers = ended ? closeViewers(b) : closeViewers(b, (s) => !this.runs.has(s));
      this.deps.logger.info({ channelId, stream: name, viewers }, `${why}: viewers disconnected`);
    }
  }
}
