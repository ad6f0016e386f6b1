import type { Logger } from '../log.js';
import type { NmsContext, NmsSession } from './nms.js';
import { mediaPacketsOf } from './session-patch.js';

/** The internals of an nms 4.4.3 session reached here: its connection to destroy (RTMP socket, or FLV request's). */
interface RawSession extends NmsSession {
  socket?: { destroy(): void };
  req?: { socket?: { destroy(): void } };
}

/** What the watch last saw of a publisher: its media packet count, and since when it has not changed (ms). */
interface Seen {
  packets: number;
  since: number;
}

/**
 * Drops publishers that have sent no media for `idleMs` (RELAY_INGEST_IDLE_MS): node-media-server has no publisher idle
 * timeout, so a publisher whose connection stays open without data (a phone behind a dead NAT, a stopped encoder, a
 * frozen worker's ffmpeg) would hold its stream key for as long as the connection lives and every republish would be
 * refused. SRS (`publish_normal_timeout`) and nginx-rtmp (`drop_idle_publisher`) drop such publishers the same way.
 *
 * A dropped publisher's connection is destroyed, so node-media-server ends its publish as when the publisher
 * disconnects: an ingest member is unregistered and its readers are ended (its channel is interrupted and may resume
 * when the member publishes again), a channel stream waits for its run's next publish within its publish grace. Every
 * publisher of every application is watched, checked every `min(1 s, idleMs / 4)`, so one is dropped between `idleMs`
 * and `idleMs` + that interval after its last media packet (or after its publish began, if it never sent one).
 */
export class PublisherIdleWatch {
  private readonly seen = new WeakMap<NmsSession, Seen>();
  private timer: NodeJS.Timeout | null = null;

  /** `idleMs` 0 turns the watch off. */
  constructor(
    private readonly context: NmsContext,
    private readonly logger: Logger,
    private readonly idleMs: number,
  ) {}

  /** How often publishers are checked (ms). */
  get intervalMs(): number {
    return Math.max(50, Math.min(1000, Math.floor(this.idleMs / 4)));
  }

  /** Starts checking (nothing when `idleMs` is 0). */
  start(): void {
    if (!this.idleMs || this.timer) return;
    this.timer = setInterval(() => this.check(Date.now()), this.intervalMs);
    this.timer.unref();
  }

  /** Stops checking. */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Checks every publisher once at `now` (ms); returns the sessions it dropped. */
  check(now: number): NmsSession[] {
    const dropped: NmsSession[] = [];
    for (const b of this.context.broadcasts.values()) {
      const p = b.publisher;
      // a publisher already gone (nms keeps it through its publish grace), or one the relay refused or dropped
      if (!p || p.relayRejected || !this.context.sessions.has(p.id)) continue;
      const packets = mediaPacketsOf(p);
      const seen = this.seen.get(p);
      if (!seen || seen.packets !== packets) {
        this.seen.set(p, { packets, since: now });
        continue;
      }
      if (now - seen.since < this.idleMs) continue;
      this.drop(p, now - seen.since);
      dropped.push(p);
    }
    return dropped;
  }

  // Destroyed, not marked refused: nms ends the publish as a disconnect, and the ingest unregisters the member.
  private drop(p: NmsSession, silentMs: number): void {
    this.seen.delete(p);
    this.logger.warn(
      { path: p.streamPath, ip: p.ip, protocol: p.protocol, silentMs, idleMs: this.idleMs },
      'dropped an idle publisher: no media within the idle timeout',
    );
    const raw = p as RawSession;
    try {
      const socket = raw.socket ?? raw.req?.socket;
      if (socket) socket.destroy();
      else p.close();
    } catch {
      /* already gone */
    }
  }
}
