/**
 * The state machine of one push target (pure): `connecting` → `live` once the destination has accepted it (bytes still
 * flowing `confirmMs` after the first ones, its ffmpeg alive) → `retrying` when its ffmpeg exits or stalls → (backoff:
 * base, 2×, 4× … capped) → `connecting` …; `failed` once `maxRetries` retries in a row never stayed live for
 * sustainMs(), and it stays failed (remove it and add it again to retry). Bytes alone prove nothing: ffmpeg writes its
 * first packets before a refusal (denied publish, wrong key) arrives, so an attempt that ends before it is confirmed is
 * a failure, and so is one confirmed live that ends before sustainMs() (its retries are counted, its backoff grows).
 * A target confirmed live that drops, and one that ends failed, each announce `target.failed` (`final` says which);
 * the first confirmed live after a `target.failed` announces `target.recovered`.
 */
import type { PushTargetStatus, TargetState } from '../channels/types.js';

/** How targets retry (RELAY_TARGET_MAX_RETRIES, _BACKOFF_MS, _STALL_MS, _CONFIRM_MS). */
export interface TargetPolicy {
  /** Retries in a row that never stay live (sustainMs) before the target is failed. */
  maxRetries: number;
  /** First backoff, ms; doubled at each further failure in a row, at most MAX_BACKOFF_MS. */
  backoffMs: number;
  /** A live target that sends nothing this long is killed and retried. */
  stallMs: number;
  /** Bytes still flowing this long after the first ones (ffmpeg alive): the destination accepted the stream. */
  confirmMs: number;
}

export const MAX_BACKOFF_MS = 30_000;
/** Least time live that resets a target's retries. */
export const MIN_SUSTAIN_MS = 30_000;

/** How long a target stays live before its retries reset: 30 s, or 3 confirmation windows if longer. */
export function sustainMs(policy: Pick<TargetPolicy, 'confirmMs'>): number {
  return Math.max(MIN_SUSTAIN_MS, 3 * policy.confirmMs);
}

/** The wait before the next attempt after `failures` failed attempts in a row (≥ 1). */
export function backoffFor(failures: number, base: number): number {
  return Math.min(MAX_BACKOFF_MS, base * 2 ** Math.max(0, Math.min(failures - 1, 20)));
}

/** A webhook a move announces. */
export interface TargetNotice {
  type: 'target.failed' | 'target.recovered';
  data: Record<string, unknown>;
}

/** What follows an ended attempt: wait and try again, or give up. */
export type AfterAttempt =
  { next: 'retry'; backoffMs: number; notice?: TargetNotice } | { next: 'failed'; notice: TargetNotice };

/** One target's state; the supervisor feeds it what its ffmpeg does. */
export class TargetMachine {
  state: TargetState = 'connecting';
  since: number;
  /** Attempts since the target was last live for sustainMs() (or added). */
  attempts = 0;
  lastError: string | undefined;
  /** A `target.failed` went out and no `target.recovered` since. */
  private down = false;
  /** When the current attempt sent its first bytes (not yet confirmed). */
  private firstBytesAt: number | null = null;

  constructor(
    private readonly policy: TargetPolicy,
    now: number,
  ) {
    this.since = now;
  }

  private move(state: TargetState, now: number): void {
    if (state !== this.state) this.since = now;
    this.state = state;
  }

  /** An attempt begins (its ffmpeg spawns). */
  attemptStarted(now: number): void {
    if (this.state === 'failed') throw new Error('a failed target makes no more attempts');
    this.attempts++;
    this.firstBytesAt = null;
    this.move('connecting', now);
  }

  /**
   * The attempt's ffmpeg sent more bytes. Live once they have flowed for `confirmMs` (a notice when it recovers from an
   * announced failure: `changed` says the state moved); a target live for sustainMs() has its retries reset.
   */
  sent(now: number): { changed: boolean; notice: TargetNotice | null } {
    if (this.state === 'live') {
      if (this.attempts > 0 && now - this.since >= sustainMs(this.policy)) this.attempts = 0;
      return { changed: false, notice: null };
    }
    if (this.state !== 'connecting') return { changed: false, notice: null };
    this.firstBytesAt ??= now;
    if (now - this.firstBytesAt < this.policy.confirmMs) return { changed: false, notice: null };
    this.move('live', now);
    this.lastError = undefined; // the previous error stays in the logs
    if (!this.down) return { changed: true, notice: null };
    this.down = false;
    return { changed: true, notice: { type: 'target.recovered', data: { attempts: this.attempts } } };
  }

  /** The attempt ended (ffmpeg exited, was killed for a stall, or never sent anything in time). */
  attemptEnded(now: number, error: string): AfterAttempt {
    const wasLive = this.state === 'live';
    this.lastError = error;
    if (wasLive && now - this.since >= sustainMs(this.policy)) this.attempts = 0;
    if (this.attempts > this.policy.maxRetries) {
      this.move('failed', now);
      this.down = true;
      return {
        next: 'failed',
        notice: { type: 'target.failed', data: { final: true, attempts: this.attempts, error } },
      };
    }
    this.move('retrying', now);
    const backoffMs = backoffFor(Math.max(1, this.attempts), this.policy.backoffMs);
    if (!wasLive) return { next: 'retry', backoffMs };
    this.down = true;
    return {
      next: 'retry',
      backoffMs,
      notice: { type: 'target.failed', data: { final: false, attempts: this.attempts, error } },
    };
  }

  /**
   * The attempt ended because its input did (the channel's own stream ended: its ffmpeg restarts, or the run ends): no
   * fault of the destination, so no notice and no attempt counted; the supervisor tries again after a short wait.
   */
  inputGone(now: number): void {
    this.attempts = Math.max(0, this.attempts - 1);
    this.firstBytesAt = null;
    this.move('retrying', now);
  }

  /** The destination may no longer be reached (the egress policy refuses it now): failed at once, announced. */
  refused(now: number, error: string): AfterAttempt & { next: 'failed' } {
    this.lastError = error;
    this.move('failed', now);
    this.down = true;
    return { next: 'failed', notice: { type: 'target.failed', data: { final: true, attempts: this.attempts, error } } };
  }

  /** The target's ffmpeg was ended with its run (stop, handover, failure): it claims nothing any more. */
  stopped(now: number): void {
    if (this.state !== 'failed') this.move('stopped', now);
  }

  /** The status the worker writes into the channel record. */
  status(bytesSent: number, now: number): PushTargetStatus {
    return {
      state: this.state,
      bytesSent,
      attempts: this.attempts,
      since: this.since,
      ...(this.lastError ? { lastError: this.lastError } : {}),
      updatedAt: now,
    };
  }
}
