import type { RelayConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import type { Channel } from '../channels/types.js';
import type { ChannelLifecycle } from '../channels/lifecycle.js';
import { afterDiskFull, diskFullFailure, freeBytes, isDiskFull, mib } from '../records/disk.js';
import type { StoragePolicy } from '../records/storage.js';
import type { RelayPlan } from '../media/ffmpeg/args.js';
import { RecordFileAnnouncer } from './record-files.js';

/** How often a running recording checks its account's storage quota. */
export const QUOTA_CHECK_MS = 5000;
/** Free space the live HLS window needs to go on once recording stopped for a full disk. */
export const LIVE_HLS_MIN_FREE_BYTES = 16 * 1024 * 1024;
/**
 * Free space below which a disk the run's ffmpeg writes counts as full. ffmpeg ≥ 5's HLS muxer does not report a
 * failed write (it leaves cut segments and an empty playlist and goes on), so the run measures rather than wait for it,
 * leaving the room ffmpeg needs to end its files.
 */
export const DISK_FULL_BELOW_BYTES = 2 * 1024 * 1024;

/** What the recording side of a run needs. */
export interface RunRecordingDeps {
  config: Pick<RelayConfig, 'recordsDir' | 'hlsDir'>;
  lifecycle: Pick<ChannelLifecycle, 'patch' | 'recordFileReady'>;
  /** The account quota of running recordings; none: no quota is checked. */
  storage?: Pick<StoragePolicy, 'overQuota'> | undefined;
  logger: Logger;
}

/**
 * The recording side of one run of a channel: its files announced (never one without media), a full disk or a reached
 * account quota turned into a stop of the recording (`recordStopped`; the channel stays live, ffmpeg runs again
 * without the recording outputs), and the files finalised when the run ends.
 */
export class RunRecording {
  private readonly files: RecordFileAnnouncer;
  private lastQuotaCheck = Date.now();
  /** Whether the current plan has recording outputs. */
  private planRecords: boolean;
  /** What the run's own measure found (diskFilled), until metDiskFull reads it. */
  private measuredFull: string | null = null;
  /** Who found the disk full, for the message: ffmpeg's error, or the run's measure. */
  private fullCause: string | undefined;

  constructor(
    private readonly d: RunRecordingDeps,
    private ch: Channel,
    private readonly planOf: (ch: Channel) => RelayPlan,
  ) {
    this.files = new RecordFileAnnouncer(d.lifecycle, d.config.recordsDir);
    this.planRecords = this.on;
  }

  /** The ffmpeg plan of the run as it stands, made anew at each read (its run tokens are single use: one per ffmpeg). */
  get plan(): RelayPlan {
    return this.planOf(this.ch);
  }

  /**
   * After an ffmpeg of the run ended: when it recorded and recording has stopped since, finalises its files and answers
   * the plan without recording outputs to run next; else null.
   */
  async replan(): Promise<RelayPlan | null> {
    if (!this.planRecords || this.on) return null;
    await this.finish(true);
    this.planRecords = false;
    return this.plan;
  }

  /** Whether the run's ffmpeg records. */
  get on(): boolean {
    return this.ch.recordTaskId !== undefined && !this.ch.recordStopped;
  }

  /**
   * Measures the free space of the disks the run's ffmpeg writes (the live HLS folder's, and the recording's while it
   * records): true, once, when one has less than DISK_FULL_BELOW_BYTES; the caller ends ffmpeg and the run goes on as
   * when ffmpeg finds the disk full (metDiskFull).
   */
  async diskFilled(): Promise<boolean> {
    if (this.measuredFull) return false;
    const dirs = [...(this.ch.hls ? [this.d.config.hlsDir] : []), ...(this.on ? [this.d.config.recordsDir] : [])];
    for (const dir of dirs) {
      const free = await freeBytes(dir).catch(() => Infinity);
      if (free >= DISK_FULL_BELOW_BYTES) continue;
      this.measuredFull = `${mib(free)} MiB free on the disk of ${dir}`;
      this.d.logger.warn({ dir, freeMiB: mib(free) }, 'a disk ffmpeg writes is full');
      return true;
    }
    return false;
  }

  /** Whether the run's last ffmpeg met a full disk: its errors say so, or diskFilled measured it (read once). */
  metDiskFull(stderr: readonly string[]): boolean {
    const measured = this.measuredFull;
    this.measuredFull = null;
    this.fullCause = measured ? `measured: ${measured}` : undefined;
    return measured !== null || isDiskFull(stderr);
  }

  /**
   * ffmpeg found the disk full: stop recording when the live outputs can go on (answers null: run ffmpeg again without
   * the recording), else the failure (50007) the channel ends with. `refuseStart`: a start that never went live fails
   * rather than go live without the recording it asked for.
   */
  async diskFull(refuseStart: boolean): Promise<{ code: 50007; message: string } | null> {
    const hlsFreeBytes = this.ch.hls ? await freeBytes(this.d.config.hlsDir).catch(() => 0) : Infinity;
    const action = afterDiskFull({
      recording: this.on,
      liveHls: this.ch.hls,
      hlsFreeBytes,
      liveMinFreeBytes: LIVE_HLS_MIN_FREE_BYTES,
    });
    if (refuseStart || action === 'fail') {
      const what = this.on && hlsFreeBytes >= LIVE_HLS_MIN_FREE_BYTES ? 'recordings' : 'live HLS';
      this.d.logger.error({ what, hlsFreeMiB: mib(hlsFreeBytes) }, 'disk full: the channel fails');
      return diskFullFailure(what, this.fullCause);
    }
    await this.stop(diskFullFailure('recordings', this.fullCause));
    return null;
  }

  /**
   * Checks the account's storage quota every QUOTA_CHECK_MS while recording; true when it has been reached (recording
   * stopped: the caller ends ffmpeg, which finishes the current files, and runs it again without recording).
   */
  async quotaReached(now = Date.now()): Promise<boolean> {
    if (!this.on || !this.d.storage || now - this.lastQuotaCheck < QUOTA_CHECK_MS) return false;
    this.lastQuotaCheck = now;
    const q = await this.d.storage.overQuota(this.ch.accountId);
    if (!q) return false;
    await this.stop({
      code: 20102,
      message: `recording stopped: account ${this.ch.accountId} reached its storage quota (${mib(q.usedBytes)} of ${q.quotaMB} MiB)`,
    });
    return true;
  }

  /** Announces the complete files while ffmpeg runs. */
  announce(): Promise<void> {
    return this.files.announce(this.ch, false);
  }

  /**
   * The run's second tick: announces complete files and, when the account reached its storage quota or a disk ffmpeg
   * writes is full, ends ffmpeg's files (`close`: SIGINT); the run goes on without recording or fails (50007).
   */
  tick(close: () => Promise<void>): void {
    const log = this.d.logger;
    void this.announce().catch((e: Error) => log.debug({ err: e.message }, 'recording files not announced yet'));
    void Promise.all([this.quotaReached(), this.diskFilled()]).then(
      ([quota, disk]) => (quota || disk ? close() : undefined),
      (e: Error) => log.debug({ err: e.message }, 'storage quota not checked'),
    );
  }

  /**
   * The run ended (its ffmpeg too): with `exclusive` (no other run of the channel may be writing: not a lost job lock)
   * files without media go and the HLS recording is finalised; then every complete file is announced.
   */
  async finish(exclusive: boolean): Promise<void> {
    if (exclusive) await this.files.finish(this.ch, Date.now());
    else await this.files.announce(this.ch, true);
  }

  private async stop(reason: { code: number; message: string }): Promise<void> {
    const recordStopped = { ...reason, at: Date.now() };
    this.ch = { ...this.ch, recordStopped };
    this.d.logger.warn({ code: reason.code }, reason.message);
    await this.d.lifecycle.patch(this.ch.channelId, { recordStopped });
  }
}
