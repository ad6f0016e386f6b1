import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RelayConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import type { ChannelRecords, Moved } from '../channels/records.js';
import type { ChannelLifecycle } from '../channels/lifecycle.js';
import { startFailureCode } from '../channels/failure.js';
import { FINAL_STATES, type Channel } from '../channels/types.js';
import type { RoomRegistry } from '../rooms/registry.js';
import { channelHlsRoot } from '../channels/layout.js';
import { buildRelayArgs } from '../media/ffmpeg/args.js';
import { FfmpegProcess, FfmpegStartError } from '../media/ffmpeg/process.js';
import { progressFigures } from '../media/ffmpeg/progress.js';
import { writeAtomic } from '../media/hls.js';
import { masterFor, planDirs, planFor } from './plan.js';
import { afterStartFailure, mediaServerRefused, RestartPolicy, upstreamPresent, watchStall } from './restart-policy.js';
import type { KeyframeWatch } from './keyframes.js';
import { RecordFileAnnouncer } from './record-files.js';
import { sleepOrAbort, untilAbort } from './end-signal.js';

/**
 * Why a running channel is asked to end: an API stop, a worker shutdown (hand over), a lost job lock, or a newer run
 * of the channel (superseded: end at once and quietly, moving nothing).
 */
export type EndReason = 'stop' | 'shutdown' | 'lock-lost' | 'superseded';

/** What the runner needs from its worker. */
export interface RunnerDeps {
  config: RelayConfig;
  store: Pick<ChannelRecords, 'get'>;
  lifecycle: Pick<ChannelLifecycle, 'markLive' | 'finishStop' | 'fail' | 'interrupt' | 'patchRun' | 'recordFileReady'>;
  rooms: Pick<RoomRegistry, 'get'>;
  /** The media server's keyframe reports: a channel goes live on the first one if it comes before ffmpeg's progress. */
  keyframes?: Pick<KeyframeWatch, 'firstKeyframe'>;
  logger: Logger;
  /** Shared secret signing internal URLs. */
  secret: string;
  workerId: string;
}

/** How a run ended; `superseded`: a newer run of the channel (a higher run generation) owns it now. */
export type RunOutcome = 'stopped' | 'failed' | 'gone' | 'handover' | 'interrupted' | 'superseded';

const STATS_INTERVAL_MS = 1000;
/** The ingest unregisters a member a moment after its stream ends: wait this long before asking the registry. */
const UPSTREAM_SETTLE_MS = 500;

/**
 * Runs one channel on this worker as run generation `gen` (from ChannelLifecycle.beginRun): spawns its ffmpeg with
 * URLs signed for this run, reports state and stats, and ends it as asked. Every move it makes carries `gen`: once a
 * newer run has begun, it moves nothing, stops its ffmpeg and ends as `superseded`.
 */
export class ChannelRunner {
  private readonly log: Logger;
  /** Ends the run from inside (the record says stopping or is gone), when a pub/sub stop message was missed. */
  private readonly local = new AbortController();
  private channel: Channel | null = null;
  private readonly recordFiles: RecordFileAnnouncer;
  /** The ffmpeg of the current attempt. */
  private ff: FfmpegProcess | null = null;

  constructor(
    private readonly deps: RunnerDeps,
    private readonly channelId: string,
    private readonly gen: number,
    private readonly end: AbortSignal,
  ) {
    this.log = deps.logger.child({ channelId, runGen: gen });
    this.recordFiles = new RecordFileAnnouncer(deps.lifecycle, deps.config.recordsDir);
    // Another worker (lock lost) or a newer run of this one owns the channel: its ffmpeg stops now, even mid-start.
    for (const signal of [end, this.local.signal])
      signal.addEventListener('abort', () => {
        if (signal.reason === 'lock-lost' || signal.reason === 'superseded') void this.ff?.kill();
      });
  }

  async run(): Promise<RunOutcome> {
    let outcome: RunOutcome | undefined;
    try {
      return (outcome = await this.runChannel());
    } finally {
      // ffmpeg has ended, however the run ended: every file it wrote is complete (a newer run announces them)
      if (this.channel && outcome !== 'superseded')
        await this.recordFiles
          .announce(this.channel, true)
          .catch((e: Error) => this.log.warn({ err: e.message }, 'recording files not announced'));
    }
  }

  private async runChannel(): Promise<RunOutcome> {
    const { store, config } = this.deps;
    const ch = await store.get(this.channelId);
    this.channel = ch;
    if (ch && (ch.runGen ?? 0) !== this.gen) return this.superseded();
    if (!ch || FINAL_STATES.includes(ch.state) || ch.state === 'interrupted') return 'gone';
    if (ch.state === 'stopping') return this.finishStop(ch);
    // A brand-new channel refuses its start on the first failure; a channel that has been live retries or waits.
    const newChannel = ch.state === 'starting' && ch.startedAt === undefined;
    const run = { secret: this.deps.secret, gen: this.gen };
    for (const dir of planDirs(planFor(ch, config, run))) await fs.mkdir(dir, { recursive: true });
    const policy = new RestartPolicy(config.maxRestarts);
    let restarts = 0;
    for (let attempt = 0; ; attempt++) {
      // a plan per attempt: its internal URLs carry tokens that the media server accepts once
      const ff = new FfmpegProcess({
        ffmpegPath: config.ffmpegPath,
        args: buildRelayArgs(planFor(ch, config, run)),
        logger: this.log,
        startTimeoutMs: config.startTimeoutMs,
      });
      const t0 = Date.now();
      const e = await this.startFfmpeg(ff);
      const asked = this.endReason();
      if (e && asked) return asked === 'stop' ? this.finishStop(ch) : this.endedBy(asked);
      if (e) {
        this.log.warn({ kind: e.kind, attempt, stderr: e.stderrTail.slice(-5) }, 'ffmpeg did not start');
        const { code, message } = startFailureCode(e.kind);
        // The media server itself is away (restarting): retry; its members come back with it.
        const mediaDown = mediaServerRefused(e.stderrTail, `${config.mediaInternalHost}:${config.rtmpPort}`);
        const action = await afterStartFailure(e.kind, {
          firstStartOfNewChannel: newChannel && attempt === 0,
          mediaDown,
          upstreamPresent: () => upstreamPresent(this.deps.rooms, ch),
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
        await this.deps.lifecycle.patchRun(this.channelId, this.gen, { restarts }, ['live']);
        this.log.info({ restarts }, 'ffmpeg restarted');
      }
      const ended = await this.supervise(ch, ff);
      if (ended !== 'died') return ended;
      const now = await store.get(this.channelId);
      if (now && (now.runGen ?? 0) !== this.gen) return this.superseded();
      if (!now || now.state !== 'live') return now?.state === 'stopping' ? this.finishStop(ch) : 'gone';
      await sleep(UPSTREAM_SETTLE_MS);
      if (!(await upstreamPresent(this.deps.rooms, ch)))
        return this.interrupt(ch, 'upstream lost: the member stopped publishing');
      const next = await this.afterFailure(ch, policy, false);
      if (next) return next;
    }
  }

  // Starts ffmpeg; media flows on its first progress report or the media server's first keyframe, whichever is first.
  private async startFfmpeg(ff: FfmpegProcess): Promise<FfmpegStartError | null> {
    const watch = new AbortController();
    this.ff = ff;
    try {
      if (this.endReason() === 'superseded' || this.endReason() === 'lock-lost')
        throw new FfmpegStartError('exited', 'the run ended before ffmpeg started', []);
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
    const moved = await lifecycle.markLive(ch, { workerId, resumed, gen: this.gen });
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
      const patched = await this.deps.lifecycle.patchRun(this.channelId, this.gen, { resumeOnReturn: true });
      return patched.fenced ? this.superseded() : this.interrupt(ch, 'the media server stayed unreachable');
    }
    if (next.action === 'fail')
      return this.fail(ch, 6012, `the relay ffmpeg failed ${next.failures} times within a minute`);
    this.log.warn({ failures: next.failures, backoffMs: next.backoffMs }, 'restarting ffmpeg after backoff');
    const reason = await sleepOrAbort<EndReason>(next.backoffMs, [this.end, this.local.signal]);
    if (reason === null) return null;
    return reason === 'stop' ? this.finishStop(ch) : this.endedBy(reason);
  }

  /** Why the run was asked to end, if it was. */
  private endReason(): EndReason | null {
    const asked = [this.end, this.local.signal].find((s) => s.aborted);
    return asked ? (asked.reason as EndReason) : null;
  }

  // How a run asked to end (other than by a stop) ends: handed over, or superseded by a newer run.
  private endedBy(reason: Exclude<EndReason, 'stop'>): RunOutcome {
    return reason === 'superseded' ? this.superseded() : 'handover';
  }

  // Waits until the channel is asked to end or ffmpeg dies or stalls, saving stats meanwhile.
  private async supervise(ch: Channel, ff: FfmpegProcess): Promise<RunOutcome | 'died'> {
    const stopStallWatch = watchStall(ff, this.deps.config.stallMs, this.log);
    const timer = setInterval(() => {
      void this.tick(ff);
    }, STATS_INTERVAL_MS);
    try {
      const first = await untilAbort<Awaited<typeof ff.done>, EndReason>(ff.done, [this.end, this.local.signal]);
      if ('done' in first) {
        const exit = first.done;
        this.log.warn(
          { exit: { code: exit.code, signal: exit.signal }, stderr: exit.stderrTail.slice(-5) },
          'ffmpeg died',
        );
        return 'died';
      }
      if (first.reason === 'lock-lost' || first.reason === 'superseded') {
        await ff.kill();
        return this.endedBy(first.reason);
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
    const stats = ff.progress ? { stats: progressFigures(ff.progress, Date.now()) } : {};
    try {
      const live = await this.deps.lifecycle.patchRun(this.channelId, this.gen, stats, ['live']);
      if (!live.ok && !this.local.signal.aborted) this.local.abort((live.fenced ? 'superseded' : 'stop') as EndReason);
    } catch (e) {
      this.log.debug({ err: (e as Error).message }, 'stats not saved');
    }
  }

  // A move this run wanted did not happen: a newer run owns the channel, a stop won meanwhile (finish it), or it is gone.
  private afterLostMove(ch: Channel, moved: Moved): Promise<RunOutcome> | RunOutcome {
    if (moved.fenced) return this.superseded();
    return moved.state === 'stopping' || moved.state === 'stopped' ? this.finishStop(ch) : 'gone';
  }

  // A newer run of the channel has begun (here or on another worker): this one ends without a move.
  private superseded(): RunOutcome {
    this.log.info('a newer run of the channel took over: this run ends without a move');
    return 'superseded';
  }

  private async interrupt(ch: Channel, reason: string): Promise<RunOutcome> {
    const moved = await this.deps.lifecycle.interrupt(ch, reason, this.gen);
    if (!moved.ok) return this.afterLostMove(ch, moved);
    this.log.info({ reason }, 'channel interrupted');
    return 'interrupted';
  }

  private async finishStop(ch: Channel): Promise<RunOutcome> {
    const moved = await this.deps.lifecycle.finishStop(ch, 'stopped by request', this.gen);
    if (moved.fenced) return this.superseded();
    if (!moved.ok) return 'gone';
    this.log.info('channel stopped');
    return 'stopped';
  }

  private async fail(ch: Channel, code: number, message: string): Promise<RunOutcome> {
    const moved = await this.deps.lifecycle.fail(ch, { code, message }, this.gen);
    return moved.ok ? 'failed' : this.afterLostMove(ch, moved);
  }
}
