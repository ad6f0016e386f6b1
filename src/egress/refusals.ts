import type { Logger } from '../log.js';
import { EGRESS_HINT } from './index.js';

/** One refusal of the egress policy, as a run's failure reports it (50002): the reason and the policy's hint. */
export interface Refusal {
  /** Why, naming hosts and ports only (never a path or query, which may carry secrets). */
  reason: string;
  hint: string;
}

/** At most one log line per this many ms (with the count of the refusals left unlogged). */
const LOG_EVERY_MS = 5000;

/**
 * The refusals of one run's egress (its gateway and RTSP relays): the last 20 kept for the run's failure message,
 * logged at most once per 5 s (a playlist naming many refused segments, reloaded every few seconds, would log each).
 */
export class Refusals {
  private readonly kept: Refusal[] = [];
  private lastWarnAt = 0;
  private unlogged = 0;

  constructor(
    private readonly logger: Pick<Logger, 'warn'>,
    private readonly what: string,
  ) {}

  /** Records a refusal; returns it. */
  add(reason: string, hint = EGRESS_HINT): Refusal {
    const r = { reason, hint };
    this.kept.push(r);
    if (this.kept.length > 20) this.kept.shift();
    if (Date.now() - this.lastWarnAt >= LOG_EVERY_MS) {
      this.logger.warn({ reason, alsoRefused: this.unlogged }, `${this.what} refused a request of the upstream`);
      this.lastWarnAt = Date.now();
      this.unlogged = 0;
    } else this.unlogged++;
    return r;
  }

  /** The refusals kept, oldest first. */
  get all(): readonly Refusal[] {
    return [...this.kept];
  }

  /** The latest refusal, forgotten (with the older ones) once taken; null when none since the last take. */
  take(): Refusal | null {
    const last = this.kept.at(-1) ?? null;
    this.kept.length = 0;
    return last;
  }
}
