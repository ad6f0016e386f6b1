import fs from 'node:fs/promises';
import path from 'node:path';
import type { RelayConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import type { Channel } from '../channels/types.js';
import type { ChannelRecords, Moved } from '../channels/records.js';
import type { ChannelLifecycle } from '../channels/lifecycle.js';
import { startFailureCode } from '../channels/failure.js';
import { FINAL_STATES } from '../channels/types.js';
import type { RoomRegistry } from '../rooms/registry.js';
import { channelHlsRoot } from '../channels/layout.js';
import { buildRelayArgs } from '../media/ffmpeg/args.js';
import { FfmpegProcess, FfmpegStartError } from '../media/ffmpeg/process.js';
import { writeAtomic } from '../media/hls.js';
import { masterFor, planDirs, planFor } from './plan.js';
import { afterStartFailure, mediaServerRefused, RestartPolicy, watchStall } from './restart-policy.js';
import type { KeyframeWatch } from './keyframes.js';
import { RecordFileAnnouncer } from './record-files.js';
import { runEgress, type RunEgress } from './egress.js';

/** Why a running channel is asked to end: an API stop, a worker shutdown (hand over), or a lost job lock. */
export type EndReason = 'stop' | 'shutdown' | 'lock-lost';

/** What the runner needs from its worker. */
export interface RunnerDeps {
  config: RelayConfig;
  store: Pick<ChannelRecords, 'get'>;
  lifecycle: Pick<ChannelLifecycle, 'markLive' | 'finishStop' | 'fail' | 'interrupt' | 'patch' | 'recordFileReady'>;
  rooms: Pick<RoomRegistry, 'get'>;
  /** The media server's keyframe reports: a channel goes live on the first one if it comes before ffmpeg's progress. */
  keyframes?: Pick<KeyframeWatch, 'firstKeyframe'>;
  logger: Logger;
  /** Shared secret signing internal URLs. */
  secret: string;
  workerId: string;
}

/** How a run ended. */
export type RunOutcome = 'stopped' | 'failed' | 'gone' | 'handover' | 'interrupted';

const STATS_INTERVAL_MS = 1000;
/** The ingest unregisters a member a moment after its stream ends: wait this long before asking the registry. */
const UPSTREAM_SETTLE_MS = 500;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Runs one channel on this worker: spawns its ffmpeg, reports state and stats, and ends it as asked. */
export class ChannelRunner {
  private readonly log: Logger;
  /** Ends the run from inside (the record says stopping or is gone), when a pub/sub stop message was missed. */
  private readonly local = new AbortController();
  private channel: Channel | null = null;
  private readonly recordFiles: RecordFileAnnouncer;
  private egress: RunEgress | null = null;

  constructor(
    private readonly deps: RunnerDeps,
    private readonly channelId: string,
    private readonly end: AbortSignal,
  ) {
    this.log = deps.logger.child({ channelId });
    this.recordFiles = new RecordFileAnnouncer(deps.lifecycle, deps.config.recordsDir);
  }

  async run(): Promise<RunOutcome> {
    try {
      return await this.runChannel();
    } finally {
      await this.egress?.close();
      // ffmpeg has ended, however the run ended: every file it wrote is complete
      if (this.channel)
        await this.recordFiles
          .announce(this.channel, true)
          .catch((e: Error) => this.log.warn({ err: e.message }, 'recording files not announced'));
    }
  }

  private async runChannel(): Promise<RunOutcome> {
    const { store, config } = this.deps;
    const ch = await store.get(this.channelId);
    this.channel = ch;
    if (!ch || FINAL_STATES.includes(ch.state) || ch.state === 'interrupted') return 'gone';
    if (ch.state === 'stopping') return this.finishStop(ch);
    // A brand-new channel refuses its start on the first failure; a channel that has been live retries or waits.
    const newChannel = ch.state === 'starting' && ch.startedAt === undefined;
    const egress = (this.egress = await runEgress(planFor(ch, config, this.deps.secret), config, this.log));
    for (const dir of planDirs(egress.plan)) await fs.mkdir(dir, { recursive: true });
    const policy = new RestartPolicy(config.maxRestarts);
    let restarts = 0;
    for (let attempt = 0; ; attempt++) {
      const ff = new FfmpegProcess({
        ffmpegPath: config.ffmpegPath,
        args: buildRelayArgs(egress.plan),
        env: egress.env,
        logger: this.log,
        startTimeoutMs: config.startTimeoutMs,
      });
      const t0 = Date.now();
      const e = await this.startFfmpeg(ff);
      if (e) {
        this.log.warn({ kind: e.kind, attempt, stderr: e.stderrTail.slice(-5) }, 'ffmpeg did not start');
        const refused = egress.takeRefusal(); // a request the egress policy refused says why (50002)
        if (refused) return this.fail(ch, 50002, refused);
        const { code, message } = startFailureCode(e.kind);
        // The media server itself is away (restarting): retry; its members come back with it.
        const mediaDown = mediaServerRefused(e.stderrTail, `${config.mediaInternalHost}:${config.rtmpPort}`);
        const action = await afterStartFailure(e.kind, {
          firstStartOfNewChannel: newChannel && attempt === 0,
          mediaDown,
          upstreamPresent: () => this.upstreamPresent(ch),
        });
        if (action === 'fail') return this.fail(ch, code, message);
        if (action === 'interrupt') return this.interrupt(ch, `upstream lost: ${message}`);
        const next = await this.afterFailure(ch, policy, mediaDown);
        if (next) return next;
        continue;
      }
      if (attempt === 0) {
        const live = await this.goLive(ch, ff, t0);
        if (live) return live;
      } else {
        restarts++;
        await this.deps.lifecycle.patch(this.channelId, { restarts }, ['live']);
        this.log.info({ restarts }, 'ffmpeg restarted');
      }
      const ended = await this.supervise(ch, ff);
      if (ended !== 'died') return ended;
      const refused = egress.takeRefusal();
      if (refused) return this.fail(ch, 50002, refused);
      const now = await store.get(this.channelId);
      if (!now || now.state !== 'live') return now?.state === 'stopping' ? this.finishStop(ch) : 'gone';
      await sleep(UPSTREAM_SETTLE_MS);
      if (!(await this.upstreamPresent(ch))) return this.interrupt(ch, 'upstream lost: the member stopped publishing');
      const next = await this.afterFailure(ch, policy, false);
      if (next) return next;
    }
  }

  // Starts ffmpeg; media flows on its first progress report or the media server's first keyframe, whichever is first.
  private async startFfmpeg(ff: FfmpegProcess): Promise<FfmpegStartError | null> {
    const watch = new AbortController();
    try {
      await ff.start(
        this.deps.keyframes ? { flowing: this.deps.keyframes.firstKeyframe(this.channelId, watch.signal) } : {},
      );
      return null;
    } catch (e) {
      await ff.kill();
      if (!(e instanceof FfmpegStartError)) throw e;
      return e;
    } finally {
      watch.abort();
    }
  }

  // First media of this run: write the master playlist, mark the channel live. Returns an outcome if it cannot go on.
  private async goLive(ch: Channel, ff: FfmpegProcess, t0: number): Promise<RunOutcome | null> {
    const { config, lifecycle, workerId } = this.deps;
    if (ch.hls && ch.option.rateTypes.length > 1) {
      await writeAtomic(
        path.join(channelHlsRoot(this.channelId, config), 'index.m3u8'),
        masterFor(ch, ff.inputVideo, ch.input.kind === 'ingest' ? ch.input.videoKbps : undefined),
      );
    }
    const resumed = ch.state === 'live' || ch.startedAt !== undefined;
    const moved = await lifecycle.markLive(ch, { workerId, resumed });
    if (!moved.ok) {
      await ff.close();
      return this.afterLostMove(ch, moved);
    }
    this.log.info({ startMs: Date.now() - t0, resumed }, 'channel live');
    return null;
  }

  /**
   * Counts a crash or stall (RestartPolicy): after too many the channel fails — or, when the media server was away,
   * is interrupted and resumes by itself once its member publishes again. Else waits the backoff.
   */
  private async afterFailure(ch: Channel, policy: RestartPolicy, mediaDown: boolean): Promise<RunOutcome | null> {
    const next = policy.afterFailure(mediaDown);
    if (next.action === 'interrupt') {
      await this.deps.lifecycle.patch(this.channelId, { resumeOnReturn: true });
      return this.interrupt(ch, 'the media server stayed unreachable');
    }
    if (next.action === 'fail')
      return this.fail(ch, 6012, `the relay ffmpeg failed ${next.failures} times within a minute`);
    this.log.warn({ failures: next.failures, backoffMs: next.backoffMs }, 'restarting ffmpeg after backoff');
    const reason = await this.waitOrEnd(next.backoffMs);
    if (reason === null) return null;
    return reason === 'stop' ? this.finishStop(ch) : 'handover';
  }

  /** Whether the member still publishes (ingest); an external URL is assumed there until ffmpeg cannot read it. */
  private async upstreamPresent(ch: Channel): Promise<boolean> {
    if (ch.input.kind !== 'ingest') return true;
    const up = await this.deps.rooms.get(ch.sdkAppId, ch.roomId, ch.userId, ch.srcType);
    return up?.source === 'ingest';
  }

  private endSignal(): Promise<EndReason> {
    return new Promise<EndReason>((resolve) => {
      for (const signal of [this.end, this.local.signal]) {
        if (signal.aborted) resolve(signal.reason as EndReason);
        signal.addEventListener('abort', () => resolve(signal.reason as EndReason), { once: true });
      }
    });
  }

  // Sleeps, unless the channel is asked to end first (then says why).
  private async waitOrEnd(ms: number): Promise<EndReason | null> {
    let timer: NodeJS.Timeout | undefined;
    const slept = new Promise<null>((r) => {
      timer = setTimeout(() => r(null), ms);
    });
    try {
      return await Promise.race([slept, this.endSignal()]);
    } finally {
      clearTimeout(timer);
    }
  }

  // Waits until the channel is asked to end or ffmpeg dies or stalls, saving stats meanwhile.
  private async supervise(ch: Channel, ff: FfmpegProcess): Promise<RunOutcome | 'died'> {
    const stopStallWatch = watchStall(ff, this.deps.config.stallMs, this.log);
    const timer = setInterval(() => {
      void this.tick(ff);
    }, STATS_INTERVAL_MS);
    try {
      const first = await Promise.race([
        this.endSignal().then((reason) => ({ reason })),
        ff.done.then((exit) => ({ exit })),
      ]);
      if ('exit' in first) {
        this.log.warn(
          { exit: { code: first.exit.code, signal: first.exit.signal }, stderr: first.exit.stderrTail.slice(-5) },
          'ffmpeg died',
        );
        return 'died';
      }
      if (first.reason === 'lock-lost') {
        await ff.kill();
        return 'handover';
      }
      await ff.close();
      if (first.reason === 'shutdown') return 'handover';
      return this.finishStop(ch);
    } finally {
      clearInterval(timer);
      stopStallWatch();
    }
  }

  // Saves the figures and, by the same write, notices a stop whose message never arrived.
  private async tick(ff: FfmpegProcess): Promise<void> {
    if (this.channel)
      void this.recordFiles
        .announce(this.channel, false)
        .catch((e: Error) => this.log.debug({ err: e.message }, 'recording files not announced yet'));
    const p = ff.progress;
    const stats = p
      ? {
          frames: p.frame,
          fps: p.fps,
          speed: p.speed,
          outTimeMs: Math.round(p.outTimeUs / 1000),
          updatedAt: Date.now(),
        }
      : undefined;
    try {
      const live = await this.deps.lifecycle.patch(this.channelId, stats ? { stats } : {}, ['live']);
      if (!live && !this.local.signal.aborted) this.local.abort('stop' satisfies EndReason);
    } catch (e) {
      this.log.debug({ err: (e as Error).message }, 'stats not saved');
    }
  }

  // A move this run wanted did not happen: a stop won meanwhile (finish it), or the channel is someone else's.
  private afterLostMove(ch: Channel, moved: Moved): Promise<RunOutcome> | RunOutcome {
    return moved.state === 'stopping' || moved.state === 'stopped' ? this.finishStop(ch) : 'gone';
  }

  private async interrupt(ch: Channel, reason: string): Promise<RunOutcome> {
    const moved = await this.deps.lifecycle.interrupt(ch, reason);
    if (!moved.ok) return this.afterLostMove(ch, moved);
    this.log.info({ reason }, 'channel interrupted');
    return 'interrupted';
  }

  private async finishStop(ch: Channel): Promise<RunOutcome> {
    if (!(await this.deps.lifecycle.finishStop(ch, 'stopped by request')).ok) return 'gone';
    this.log.info('channel stopped');
    return 'stopped';
  }

  private async fail(ch: Channel, code: number, message: string): Promise<RunOutcome> {
    const moved = await this.deps.lifecycle.fail(ch, { code, message });
    return moved.ok ? 'failed' : this.afterLostMove(ch, moved);
  }
}
