import fs from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RelayConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import type { ChannelRecords } from '../channels/records.js';
import type { ChannelLifecycle } from '../channels/lifecycle.js';
import { startFailureCode } from '../channels/failure.js';
import { FINAL_STATES, type Channel } from '../channels/types.js';
import type { RoomRegistry } from '../rooms/registry.js';
import { buildRelayArgs } from '../media/ffmpeg/args.js';
import { FfmpegProcess, FfmpegStartError } from '../media/ffmpeg/process.js';
import type { MasterPlaylistWriter } from '../media/hls-master.js';
import { continuePlaylists, masterWriter, planDirs, planFor, publishHost, type MediaAt } from './plan.js';
import type { RunNode } from './run-node.js';
import { afterStartFailure, mediaServerRefused, RestartPolicy, upstreamPresent, watchStall } from './restart-policy.js';
import { startFlowing, type KeyframeWatch } from './keyframes.js';
import type { StoragePolicy } from '../records/storage.js';
import { RunRecording } from './recording.js';
import { sleepOrAbort, untilAbort, type EndReason } from './end-signal.js';
import { runEgress, type RunEgress } from './egress.js';
import { RunMoves, type RunOutcome } from './run-moves.js';
import { RunTracks } from './tracks.js';
import { MixRun } from './mix-run.js';
import { statsTick } from './run-stats.js';

export type { EndReason } from './end-signal.js';

/** What the runner needs from its worker. */
export interface RunnerDeps {
  config: RelayConfig;
  store: Pick<ChannelRecords, 'get'>;
  lifecycle: Pick<
    ChannelLifecycle,
    'markLive' | 'finishStop' | 'fail' | 'interrupt' | 'patch' | 'patchRun' | 'recordFileReady'
  >;
  rooms: Pick<RoomRegistry, 'get'>;
  /** The media server's keyframe reports: a channel goes live on the first one if it comes before ffmpeg's progress. */
  keyframes?: Pick<KeyframeWatch, 'firstKeyframe'>;
  logger: Logger;
  /** Shared secret signing internal URLs. */
  secret: string;
  workerId: string;
  /** Account storage quotas of running recordings; none: not checked. */
  storage?: Pick<StoragePolicy, 'overQuota'>;
  /** Called before the run closes its ffmpeg on an ending of its own (the push targets reading it end first). */
  beforeEnd?: () => Promise<unknown>;
  /** A mix run applied the record's layout (whatever told it: the control message or its 1 s check). */
  onMixApplied?: (ch: Channel) => void;
  /** The channel's media node, placed again when gone (cluster of media nodes); absent: RELAY_MEDIA_INTERNAL_HOST. */
  node?: RunNode;
}

export type { RunOutcome } from './run-moves.js';

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
  private recording: RunRecording | null = null;
  private egress: RunEgress | null = null;
  private master: MasterPlaylistWriter | null = null;
  /** A mix channel's composition: outlives its encoder ffmpegs. */
  private mix: MixRun | null = null;
  /** The ffmpeg of the current attempt. */
  private ff: FfmpegProcess | null = null;
  private readonly moves: RunMoves;
  /** Why the run stopped by itself (a mix whose members all stayed away), when it did: its history says so. */
  private stopWhy: string | undefined;

  constructor(
    private readonly deps: RunnerDeps,
    private readonly channelId: string,
    private readonly gen: number,
    private readonly end: AbortSignal,
  ) {
    this.log = deps.logger.child({ channelId, runGen: gen });
    this.moves = new RunMoves(deps.lifecycle, gen, this.log);
    // Another worker (lock lost) or a newer run of this one owns the channel: its ffmpeg stops now, even mid-start.
    for (const signal of this.signals)
      signal.addEventListener('abort', () => {
        if (signal.reason === 'lock-lost' || signal.reason === 'superseded') void this.ff?.kill();
      });
  }

  async run(): Promise<RunOutcome> {
    let outcome: RunOutcome | undefined;
    try {
      return (outcome = await this.runChannel());
    } finally {
      await Promise.all([this.egress?.close(), this.master?.stop(), this.mix?.stop()]);
      // ffmpeg has ended, however the run ended: its files are finalised (unless another run may write them now)
      await this.recording
        ?.finish(this.end.reason !== 'lock-lost' && outcome !== 'superseded')
        .catch((e: Error) => this.log.warn({ err: e.message }, 'recording files not finalised'));
    }
  }

  private async runChannel(): Promise<RunOutcome> {
    const { store, config } = this.deps;
    const ch = await store.get(this.channelId);
    if (ch && (ch.runGen ?? 0) !== this.gen) return this.moves.superseded();
    if (!ch || FINAL_STATES.includes(ch.state) || ch.state === 'interrupted') return 'gone';
    if (ch.state === 'stopping') return this.moves.finishStop(ch);
    const run = { secret: this.deps.secret, gen: this.gen };
    const egress = (this.egress = await runEgress(planFor(ch, config, run), config, this.log));
    const allGone = () => {
      this.stopWhy = 'every member away for the retention time';
      this.local.abort('stop' satisfies EndReason);
    };
    if (ch.mix) this.mix = await MixRun.start({ ...this.deps, logger: this.log }, ch, this.gen, allGone);
    // a plan per ffmpeg (its run tokens are single use) through the run's egress; no recording once it stopped
    const tracks = new RunTracks({ ...this.deps, costs: config.costs, log: this.log, gen: this.gen }, ch);
    let at: MediaAt = {}; // the media nodes of the attempt
    const planOf = (c: Channel) => egress.apply(planFor(tracks.channel(c), config, run, at));
    const rec = (this.recording = new RunRecording({ ...this.deps, logger: this.log }, ch, planOf));
    // A brand-new channel refuses its start on the first failure; a channel that has been live retries or waits.
    const newChannel = ch.state === 'starting' && ch.startedAt === undefined;
    for (const dir of planDirs(rec.plan)) await fs.mkdir(dir, { recursive: true });
    const policy = new RestartPolicy(config.maxRestarts);
    let restarts = 0;
    let replanned = false; // ffmpeg ended to run again without recording: no failure, no restart counted
    let first = 0; // the attempt that goes live: a start that failed only to convert a track does not count
    for (let attempt = 0; ; attempt++) {
      at = (await this.deps.node?.attempt(ch)) ?? at;
      const ff = new FfmpegProcess({
        ffmpegPath: config.ffmpegPath,
        args: buildRelayArgs(continuePlaylists(rec.plan)),
        env: egress.env,
        logger: this.log,
        startTimeoutMs: config.startTimeoutMs,
        ...this.mix?.encoderPipes,
      });
      const t0 = Date.now();
      this.ff = ff;
      const e = await this.startFfmpeg(ff);
      const asked = this.endReason();
      if (e && asked) return asked === 'stop' ? this.moves.finishStop(ch, this.stopWhy) : this.endedBy(asked);
      if (e) {
        this.log.warn(
          { kind: e.kind, reason: e.reason, attempt, stderr: e.stderrTail.slice(-8) },
          'ffmpeg did not start',
        );
        const refused = egress.takeRefusal(); // a request the egress policy refused says why (50002)
        if (refused) return this.moves.fail(ch, 50002, refused.message, refused.hint);
        if (rec.metDiskFull(e.stderrTail)) {
          const failure = await rec.diskFull(newChannel && attempt === first);
          if (failure) return this.moves.fail(ch, failure.code, failure.message);
          await rec.replan();
          continue;
        }
        // a track ORIGINAL cannot copy (ffmpeg's report says which): start again at once, converting it
        if (attempt === first && (await tracks.afterFailure(e.kind, ff.inputCodecs))) first = attempt + 1;
        if (first > attempt) continue;
        const { code, message } = startFailureCode(e.kind, e.reason, config.fileUpstreamDir);
        // The media server itself is away (restarting): retry; its members come back with it.
        const mediaDown = mediaServerRefused(e.stderrTail, publishHost(config, at));
        const action = await afterStartFailure(e.kind, {
          firstStartOfNewChannel: newChannel && attempt === first,
          mediaDown,
          upstreamPresent: () => upstreamPresent(this.deps.rooms, ch),
        });
        if (action === 'fail') return this.moves.fail(ch, code, message);
        if (action === 'interrupt') return this.moves.interrupt(ch, `upstream lost: ${message}`);
        const next = await this.afterFailure(ch, policy, mediaDown);
        if (next) return next;
        continue;
      }
      if (attempt === first) {
        // copying cannot rotate; no audio wants a silent track: start again so before going live (killed: no segment)
        if ((await tracks.whenLive(ff.inputCodecs)) && (await ff.kill(), (first = attempt + 1))) continue;
        const live = await this.goLive(tracks.channel(ch), ff, t0);
        if (live) return live;
      } else if (!replanned) {
        restarts++;
        await this.deps.lifecycle.patchRun(this.channelId, this.gen, { restarts }, ['live']);
        this.log.info({ restarts }, 'ffmpeg restarted');
      }
      replanned = false;
      const ended = await this.supervise(ch, ff, rec);
      if (ended !== 'died') return ended;
      const refused = egress.takeRefusal();
      if (refused) return this.moves.fail(ch, 50002, refused.message, refused.hint);
      const now = await store.get(this.channelId);
      if (now && (now.runGen ?? 0) !== this.gen) return this.moves.superseded();
      if (!now || now.state !== 'live') return now?.state === 'stopping' ? this.moves.finishStop(ch) : 'gone';
      // a full disk (no retry: it does not empty itself), or a recording stopped for its quota: run without it
      const failure = rec.metDiskFull(ff.stderrTail) ? await rec.diskFull(false) : null;
      if (failure) return this.moves.fail(ch, failure.code, failure.message);
      if (await rec.replan()) {
        replanned = true;
        continue;
      }
      await sleep(UPSTREAM_SETTLE_MS);
      if (!(await upstreamPresent(this.deps.rooms, ch)))
        return this.moves.interrupt(ch, 'upstream lost: the member stopped publishing');
      const next = await this.afterFailure(ch, policy, false);
      if (next) return next;
    }
  }

  // Starts ffmpeg (media flows on its first progress report or keyframe), unless a newer run or another worker has it.
  private startFfmpeg(ff: FfmpegProcess): Promise<FfmpegStartError | null> {
    const asked = this.endReason();
    if (asked === 'superseded' || asked === 'lock-lost')
      return Promise.resolve(new FfmpegStartError('exited', 'the run ended before ffmpeg started', []));
    return startFlowing(ff, this.channelId, this.deps.keyframes);
  }

  // First media of this run: write the master playlist, mark the channel live. Returns an outcome if it cannot go on.
  private async goLive(ch: Channel, ff: FfmpegProcess, t0: number): Promise<RunOutcome | null> {
    const { config, lifecycle, workerId } = this.deps;
    if (ch.hls && ch.option.rateTypes.length > 1) (this.master = masterWriter(ch, ff, config, this.log)).start();
    const resumed = ch.state === 'live' || ch.startedAt !== undefined;
    const moved = await lifecycle.markLive(ch, { workerId, resumed, gen: this.gen });
    if (!moved.ok) {
      await this.deps.beforeEnd?.();
      await ff.close();
      return this.moves.afterLost(ch, moved);
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
      return patched.fenced ? this.moves.superseded() : this.moves.interrupt(ch, 'the media server stayed unreachable');
    }
    if (next.action === 'fail')
      return this.moves.fail(ch, 6012, `the relay ffmpeg failed ${next.failures} times within a minute`);
    this.log.warn({ failures: next.failures, backoffMs: next.backoffMs }, 'restarting ffmpeg after backoff');
    const reason = await sleepOrAbort<EndReason>(next.backoffMs, this.signals);
    if (reason === null) return null;
    return reason === 'stop' ? this.moves.finishStop(ch, this.stopWhy) : this.endedBy(reason);
  }

  /** A mix's layout changed (control message): apply it now rather than at the next check. */
  readonly mixChanged = (): void => void this.mix?.refresh();

  /** Why the run was asked to end, if it was. */
  private endReason(): EndReason | null {
    const asked = this.signals.find((s) => s.aborted);
    return asked ? (asked.reason as EndReason) : null;
  }

  // How a run asked to end (other than by a stop) ends: handed over, or superseded by a newer run.
  private endedBy(reason: Exclude<EndReason, 'stop'>): RunOutcome {
    return reason === 'superseded' ? this.moves.superseded() : 'handover';
  }

  private get signals(): AbortSignal[] {
    return [this.end, this.local.signal];
  }

  // Waits until the channel is asked to end or ffmpeg dies or stalls, saving stats meanwhile.
  private async supervise(ch: Channel, ff: FfmpegProcess, rec: RunRecording): Promise<RunOutcome | 'died'> {
    const stopStallWatch = watchStall(ff, this.deps.config.stallMs, this.log);
    const { channelId, gen, local, log } = this;
    const at = { lifecycle: this.deps.lifecycle, channelId, gen, local, log };
    const timer = setInterval(() => void statsTick(at, ff, rec), STATS_INTERVAL_MS);
    try {
      const first = await untilAbort<Awaited<typeof ff.done>, EndReason>(ff.done, this.signals);
      if ('done' in first) {
        const exit = first.done;
        if (exit.expected) return 'died'; // ended to run again (recording stopped)
        this.log.warn(
          { exit: { code: exit.code, signal: exit.signal }, reason: exit.reason, stderr: exit.stderrTail.slice(-8) },
          'ffmpeg died',
        );
        return 'died';
      }
      await this.deps.beforeEnd?.(); // the targets first: the end of their input is no destination's failure
      if (first.reason === 'lock-lost' || first.reason === 'superseded') {
        await ff.kill();
        return this.endedBy(first.reason);
      }
      await ff.close();
      if (first.reason === 'shutdown') return 'handover';
      return this.moves.finishStop(ch, this.stopWhy);
    } finally {
      clearInterval(timer);
      stopStallWatch();
    }
  }
}
