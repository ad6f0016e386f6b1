import { RelayError } from '../errors/index.js';

/** Image inspections one process runs at once (each inflates a stream, on zlib's thread pool). */
export const INSPECTIONS_AT_ONCE = 2;
/** Inspections that may wait for a place; one more is refused at once. */
export const INSPECTIONS_WAITING = 16;
/** What a refused upload is told to wait before it tries again, in milliseconds. */
const RETRY_AFTER_MS = 1000;

/**
 * A bounded line for image inspections: at most `atOnce` run, up to `waiting` more wait in arrival order, and the rest
 * are refused, so a burst of uploads costs a fixed amount of memory and thread-pool time.
 */
export class InspectionLine {
  private running = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(
    readonly atOnce = INSPECTIONS_AT_ONCE,
    readonly waiting = INSPECTIONS_WAITING,
  ) {}

  /**
   * Runs `check` once a place is free and resolves with its result. Throws 50005 (HTTP 503, `retryAfterMs` 1000,
   * answered with `Retry-After: 1`) without running it when `waiting` inspections already wait.
   */
  async run<T>(check: () => Promise<T>): Promise<T> {
    if (this.running < this.atOnce) this.running++;
    else if (this.waiters.length >= this.waiting)
      throw new RelayError(50005, `the relay is checking ${this.running + this.waiters.length} images: try again`, {
        hint: 'retry the upload after Retry-After seconds',
        details: { retryAfterMs: RETRY_AFTER_MS },
      });
    else await new Promise<void>((go) => this.waiters.push(go)); // the finishing inspection hands its place over
    try {
      return await check();
    } finally {
      const next = this.waiters.shift();
      if (next) next();
      else this.running--;
    }
  }

  /** Inspections running and waiting now. */
  load(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiters.length };
  }
}
