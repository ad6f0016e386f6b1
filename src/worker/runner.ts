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
import { FfmpegProcess } from '../media/ffmpeg/process.js';
import { writeAtomic } from '../media/hls.js';
import { masterFor, planDirs, planFor } from './plan.js';
import { afterStartFailure, mediaServerRefused, RestartPolicy, watchStall } from './restart-policy.js';
import { startFlowing, type KeyframeWatch } from './keyframes.js';
import { isDiskFull } from '../records/disk.js';
import type { StoragePolicy } from '../records/storage.js';
import { RunRecording } from './recording.js';
import { endSignal, waitOrEnd, type EndReason } from './end-signal.js';
import { runEgress, type RunEgress } from './egress.js';

export type { EndReason } from './end-signal.js';

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
  /** Account storage quotas of running recordings; none: not checked. */
  storage?: Pick<StoragePolicy, 'overQuota'>;
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
  private recording: RunRecording | null = null;
  private egress: RunEgress | null = null;

  constructor(
    private readonly deps: RunnerDeps,
    private readonly channelId: string,
    private readonly end: AbortSignal,
  ) {
    this.log = deps.logger.child({ channelId });
  }

  async run(): Promise<RunOutcome> {
    try {
      return await this.runChannel();
    } finally {
      await this.egress?.close();
      // ffmpeg has ended, however the run ended: its files are finalised (unless another run may write them now)
      await this.recording
        ?.finish(this.end.reason !== 'lock-lost')
        .catch((e: Error) => this.log.warn({ err: e.message }, 'recording files not finalised'));
    }
  }

  private async runChannel(): Promise<RunOutcome> {
    const { store, config } = this.deps;
    const ch = await store.get(this.channelId);
    if (!ch || FINAL_STATES.includes(ch.state) || ch.state === 'interrupted') return 'gone';
    if (ch.state === 'stopping') return this.finishStop(ch);
    const egress = (this.egress = await runEgress(planFor(ch, config, this.deps.secret), config, this.log));
    // the run's plans keep the egress's sources; their recording outputs go once recording stops
    const planOf = (c: Channel) => ({ ...planFor(c, config, this.deps.secret), sources: egress.plan.sources });
    const rec = (this.recording = new RunRecording({ ...this.deps, logger: this.log }, ch, planOf));
    // A brand-new channel refuses its start on the first failure; a channel that has been live retries or waits.
    const newChannel = ch.state === 'starting' && ch.startedAt === undefined;
    let plan = rec.plan;
    for (const dir of planDirs(plan)) await fs.mkdir(dir, { recursive: true });
    const policy = new RestartPolicy(config.maxRestarts);
    let restarts = 0;
    let replanned = false; // ffmpeg ended to run again without recording: no failure, no restart counted
    for (let attempt = 0; ; attempt++) {
      const ff = new FfmpegProcess({
        ffmpegPath: config.ffmpegPath,
        args: buildRelayArgs(plan),
        env: egress.env,
        logger: this.log,
        startTimeoutMs: config.startTimeoutMs,
      });
      const t0 = Date.now();
      const e = await startFlowing(ff, this.channelId, this.deps.keyframes);
      if (e) {
        this.log.warn({ kind: e.kind, attempt, stderr: e.stderrTail.slice(-5) }, 'ffmpeg did not start');
        const refused = egress.takeRefusal(); // a request the egress policy refused says why (50002)
        if (refused) return this.fail(ch, 50002, refused);
        if (isDiskFull(e.stderrTail)) {
          const failure = await rec.diskFull(newChannel && attempt === 0);
          if (failure) return this.fail(ch, failure.code, failure.message);
          plan = (await rec.replan()) ?? plan;
          continue;
        }
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
      } else if (!replanned) {
        restarts++;
        await this.deps.lifecycle.patch(this.channelId, { restarts }, ['live']);
        this.log.info({ restarts }, 'ffmpeg restarted');
      }
      replanned = false;
      const ended = await this.supervise(ch, ff, rec);
      if (ended !== 'died') return ended;
      const refused = egress.takeRefusal();
      if (refused) return this.fail(ch, 50002, refused);
      const now = await store.get(this.channelId);
      if (!now || now.state !== 'live') return now?.state === 'stopping' ? this.finishStop(ch) : 'gone';
      // a full disk (no retry: it does not empty itself), or a recording stopped for its quota: run without it
      const failure = isDiskFull(ff.stderrTail) ? await rec.diskFull(false) : null;
      if (failure) return this.fail(ch, failure.code, failure.message);
      const without = await rec.replan();
      if (without) {
        [plan, replanned] = [without, true];
        continue;
      }
      await sleep(UPSTREAM_SETTLE_MS);
      if (!(await this.upstreamPresent(ch))) return this.interrupt(ch, 'upstream lost: the member stopped publishing');
      const next = await this.afterFailure(ch, policy, false);
      if (next) return next;
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
    const reason = await waitOrEnd(next.backoffMs, this.signals);
    if (reason === null) return null;
    return reason === 'stop' ? this.finishStop(ch) : 'handover';
  }

  /** Whether the member still publishes (ingest); an external URL is assumed there until ffmpeg cannot read it. */
  private async upstreamPresent(ch: Channel): Promise<boolean> {
    if (ch.input.kind !== 'ingest') return true;
    const up = await this.deps.rooms.get(ch.sdkAppId, ch.roomId, ch.userId, ch.srcType);
    return up?.source === 'ingest';
  }

  private get signals(): AbortSignal[] {
    return [this.end, this.local.signal];
  }

  // Waits until the channel is asked to end or ffmpeg dies or stalls, saving stats meanwhile.
  private async supervise(ch: Channel, ff: FfmpegProcess, rec: RunRecording): Promise<RunOutcome | 'died'> {
    const stopStallWatch = watchStall(ff, this.deps.config.stallMs, this.log);
    const timer = setInterval(() => {
      void this.tick(ff, rec);
    }, STATS_INTERVAL_MS);
    try {
      const first = await Promise.race([
        endSignal(this.signals).then((reason) => ({ reason })),
        ff.done.then((exit) => ({ exit })),
      ]);
      if ('exit' in first && first.exit.expected) return 'died'; // ended to run again (recording stopped)
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
  private async tick(ff: FfmpegProcess, rec: RunRecording): Promise<void> {
    void rec.announce().catch((e: Error) => this.log.debug({ err: e.message }, 'recording files not announced yet'));
    // the account reached its storage quota: ffmpeg ends its files (SIGINT) and runs again without recording
    void rec.quotaReached().then(
      (reached) => (reached ? ff.close() : undefined),
      (e: Error) => this.log.debug({ err: e.message }, 'storage quota not checked'),
    );
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
    const moved = await this.deps.lifecycle.finishStop(ch, 'stopped by request');
    if (moved.state === '') this.log.error('the channel record is gone from Redis (its data lost?): ffmpeg ended');
    if (!moved.ok) return 'gone';
    this.log.info('channel stopped');
    return 'stopped';
  }

  private async fail(ch: Channel, code: number, message: string): Promise<RunOutcome> {
    const moved = await this.deps.lifecycle.fail(ch, { code, message });
    return moved.ok ? 'failed' : this.afterLostMove(ch, moved);
  }
}
