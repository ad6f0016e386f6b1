import type { RelayConfig } from '../config/index.js';
import { redactTargetUrl, type Logger } from '../log.js';
import type { ChannelRecords } from '../channels/records.js';
import type { ChannelLifecycle } from '../channels/lifecycle.js';
import type { Channel, PushTarget, PushTargetStatus } from '../channels/types.js';
import { channelStreams, LIVE_APP } from '../channels/urls.js';
import { bestFirst } from '../channels/tiers.js';
import { runTokenQuery } from '../auth/run-tokens.js';
import { assertEgressAllowed, systemResolver, type Resolver } from '../egress/index.js';
import { TargetSupervisor } from './supervisor.js';
import type { TargetNotice } from './state.js';

/** What a run's targets need from the worker. */
export interface RunTargetsDeps {
  config: Pick<RelayConfig, 'ffmpegPath' | 'mediaInternalHost' | 'rtmpPort' | 'targets' | 'egress'>;
  store: Pick<ChannelRecords, 'get'>;
  lifecycle: Pick<ChannelLifecycle, 'patchRun' | 'notify'>;
  /** Shared secret signing internal URLs (the read tokens of the targets' ffmpegs). */
  secret: string;
  logger: Logger;
  /** How destinations' hosts are resolved for the egress check before each attempt (the system's DNS). */
  resolve?: Resolver;
  /** The media node the run publishes to (worker/run-node.ts), read there; absent: RELAY_MEDIA_INTERNAL_HOST. */
  mediaAt?: () => { host: string; rtmpPort: number };
}

const TICK_MS = 1000;
/** The channel's own ffmpeg reported no new frame for this long (as read from its record): its stream is silent. */
const SILENT_MS = 2000;

/**
 * The push targets of one run of a channel (any channel: the manager knows only its record): while the channel is
 * live and this run is its current one, one TargetSupervisor per target in the record, each reading the channel's tier
 * back from the media server with a read token of this run; targets added or removed are picked up on a control
 * message (refresh) or at the next tick (pub/sub is at most once); their status is written into the record each
 * tick, fenced by the run generation. close() ends every target's ffmpeg: none outlives the run.
 */
export class RunTargets {
  private readonly running = new Map<string, TargetSupervisor>();
  /** Targets this run found failed in the record (an earlier run gave up on them): not started again. */
  private inherited: Record<string, PushTargetStatus> | null = null;
  /** The status this run last wrote. */
  private written: Record<string, PushTargetStatus> = {};
  private closing: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private busy: Promise<void> | null = null;
  private again = false;
  private closed = false;
  private readonly log: Logger;
  /** The channel's frame count last read from its record, and when it last changed. */
  private frames: number | undefined;
  private framesAt = Date.now();

  constructor(
    private readonly deps: RunTargetsDeps,
    private readonly channelId: string,
    private readonly gen: number,
  ) {
    this.log = deps.logger.child({ channelId, runGen: gen });
  }

  start(): void {
    this.timer = setInterval(() => this.refresh(), TICK_MS);
    this.timer.unref();
    this.refresh();
  }

  /** Reads the record now (a target was added or removed). */
  refresh(): void {
    if (this.closed) return;
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = this.sync()
      .catch((e: Error) => this.log.debug({ err: e.message }, 'push targets not synced'))
      .finally(() => {
        this.busy = null;
        if (this.again && !this.closed) {
          this.again = false;
          this.refresh();
        }
      });
  }

  /**
   * Ends every target's ffmpeg, waits until they are gone, and writes their final status (`stopped`, or `failed`, with
   * the bytes of the run), fenced by the run: a record never claims a target live once its run has ended.
   */
  close(): Promise<void> {
    this.closing ??= this.end();
    return this.closing;
  }

  private async end(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    // told at once (before the channel's own ffmpeg ends): the end of their input is then no destination's failure
    const told = [...this.running.values()].map((s) => s.stop());
    await this.busy;
    await Promise.all([...told, ...[...this.running.values()].map((s) => s.stop())]);
    const now = Date.now();
    const status: Record<string, PushTargetStatus> = {};
    for (const [id, t] of Object.entries(this.written))
      status[id] = this.running.get(id)?.status(now) ?? (t.state === 'failed' ? t : stoppedAt(t, now));
    this.running.clear();
    if (!Object.keys(status).length) return;
    await this.deps.lifecycle.patchRun(this.channelId, this.gen, { targetStatus: status }).catch(() => undefined);
  }

  private async sync(): Promise<void> {
    const ch = await this.deps.store.get(this.channelId);
    if (this.closed) return;
    const current = !!ch && (ch.runGen ?? 0) === this.gen;
    if (ch?.stats?.frames !== this.frames) [this.frames, this.framesAt] = [ch?.stats?.frames, Date.now()];
    this.inherited ??= current ? failedIn(ch) : {};
    const wanted = new Map<string, PushTarget>(
      current && ch.state === 'live' ? (ch.pushTargets ?? []).map((t) => [t.targetId, t]) : [],
    );
    const ending: Promise<void>[] = [];
    for (const [id, s] of this.running) {
      const w = wanted.get(id);
      if (w && w.url === s.target.url && w.rateType === s.target.rateType) continue;
      this.running.delete(id);
      ending.push(s.stop());
    }
    for (const [id, t] of wanted) {
      if (this.running.has(id) || this.inherited[id]) continue;
      const s = new TargetSupervisor(t, {
        ffmpegPath: this.deps.config.ffmpegPath,
        policy: this.deps.config.targets,
        inputUrl: (target) => this.inputOf(ch!, target),
        // the policy, or what the host resolves to, may have changed since the target was added
        check: (url) =>
          assertEgressAllowed(url, this.deps.config.egress, 'push target url', this.deps.resolve ?? systemResolver),
        notify: (n) => this.notify(ch!, t, n),
        inputSilent: () => this.frames !== undefined && Date.now() - this.framesAt >= SILENT_MS,
        changed: () => this.refresh(),
        logger: this.log,
      });
      this.running.set(id, s);
      s.start();
    }
    await Promise.all(ending);
    if (!current || ch.state !== 'live') return;
    const now = Date.now();
    const status: Record<string, PushTargetStatus> = {};
    for (const [id, t] of Object.entries(this.inherited)) if (wanted.has(id)) status[id] = t;
    for (const [id, s] of this.running) status[id] = s.status(now);
    const moved = await this.deps.lifecycle.patchRun(this.channelId, this.gen, { targetStatus: status }, ['live']);
    if (moved.ok) this.written = status;
  }

  // The tier the target sends (its own, else the channel's best), read from the media server with a fresh read token.
  private inputOf(ch: Channel, t: PushTarget): string {
    const rateType = t.rateType ?? bestFirst(ch.option.rateTypes)[0];
    const streams = channelStreams(ch.channelId, ch.option.rateTypes);
    const stream = streams.find((s) => s.rateType === rateType) ?? streams[0]!;
    const path = `/${LIVE_APP}/${stream.streamName}`;
    const query = runTokenQuery(this.deps.secret, 'read', path, { channelId: ch.channelId, gen: this.gen });
    const { mediaInternalHost, rtmpPort } = this.deps.config;
    const at = this.deps.mediaAt?.() ?? { host: mediaInternalHost, rtmpPort };
    return `rtmp://${at.host}:${at.rtmpPort}${path}?${query}`;
  }

  private notify(ch: Channel, t: PushTarget, n: TargetNotice): void {
    const data = { targetId: t.targetId, url: redactTargetUrl(t.url), ...n.data };
    this.log.warn({ targetId: t.targetId, event: n.type, final: n.data.final }, 'push target event');
    void this.deps.lifecycle.notify(n.type, ch, data);
  }
}

function stoppedAt(t: PushTargetStatus, now: number): PushTargetStatus {
  return { ...t, state: 'stopped', since: now, updatedAt: now };
}

function failedIn(ch: Channel): Record<string, PushTargetStatus> {
  return Object.fromEntries(Object.entries(ch.targetStatus ?? {}).filter(([, s]) => s.state === 'failed'));
}
