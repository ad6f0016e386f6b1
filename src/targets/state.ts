/**
 * The state machine of one push target (pure): `connecting` → `live` on its first bytes sent → `retrying` when its
 * ffmpeg exits or stalls → (backoff: base, 2×, 4× … capped) → `connecting` …; `failed` once `maxRetries` retries in a row
 * never reached live, and it stays failed (remove it and add it again to retry). A target that was live and drops, and
 * one that ends failed, each announce `target.failed` (`final` says which); the first live after a `target.failed`
 * announces `target.recovered`.
 */
import type { PushTargetStatus, TargetState } from '../channels/types.js';

/** How targets retry (RELAY_TARGET_MAX_RETRIES, RELAY_TARGET_BACKOFF_MS, RELAY_TARGET_STALL_MS). */
export interface TargetPolicy {
  /** Retries in a row that never reach live before the target is failed. */
  maxRetries: number;
  /** First backoff, ms; doubled at each further failure in a row, at most MAX_BACKOFF_MS. */
  backoffMs: number;
  /** A live target that sends nothing this long is killed and retried. */
  stallMs: number;
}

export const MAX_BACKOFF_MS = 30_000;

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
  /** Attempts since the target was last live (or added). */
  attempts = 0;
  lastError: string | undefined;
  /** A `target.failed` went out and no `target.recovered` since. */
  private down = false;

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
    this.move('connecting', now);
  }

  /** The attempt sent its first bytes: live (a notice when it recovers from an announced failure). */
  sent(now: number): TargetNotice | null {
    if (this.state !== 'connecting') return null;
    this.move('live', now);
    const outage = this.attempts;
    this.attempts = 0;
    if (!this.down) return null;
    this.down = false;
    return { type: 'target.recovered', data: { attempts: outage } };
  }

  /** The attempt ended (ffmpeg exited, was killed for a stall, or never sent anything in time). */
  attemptEnded(now: number, error: string): AfterAttempt {
    const wasLive = this.state === 'live';
    this.lastError = error;
    if (wasLive) this.attempts = 0;
    if (!wasLive && this.attempts > this.policy.maxRetries) {
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
    return { next: 'retry', backoffMs, notice: { type: 'target.failed', data: { final: false, error } } };
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
