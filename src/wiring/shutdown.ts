import type { Logger } from '../log.js';

/** Signals closer together than this are one (see `Shutdown.trigger`), ms. */
const SAME_PRESS_MS = 250;

/** What ends a process: a signal, or the process that started it going away. */
export type ShutdownCause = NodeJS.Signals | 'parent-exited';

/** How a process stops, and what it can be made to do (injected in tests). */
export interface ShutdownOptions {
  logger: Logger;
  /** The graceful stop: channels ended (ENDLIST, records stopped or handed over), then parts closed. */
  stop: () => Promise<void>;
  /** Bound of the graceful stop, ms: past it the stop is hurried, as by a second signal. */
  graceMs: number;
  /** After hurrying, how long the stop may still take before the process exits anyway (code 1), ms. */
  hurryMs?: number;
  /** Makes the stop quicker (kills running ffmpegs at once); the records are still finished by `stop`. */
  hurry: () => void;
  exit?: (code: number) => void;
  /** The parent pid now (process.ppid); polled to notice a wrapper (npm, npx, sh) that exited without passing on. */
  parentPid?: () => number;
  parentPollMs?: number;
}

/**
 * The process's one way down (signals less than 250 ms apart count as one: a terminal signals the whole group, and
 * `npm run` passes each on again). The first SIGTERM, SIGINT or SIGHUP — or its parent exiting, which is how a wrapper
 * that does not pass signals on (`npm run`'s `sh -c`, `npx`) shows itself: this process is re-parented — starts the
 * graceful stop, bounded by `graceMs`. A second signal (Ctrl-C twice, a runtime re-sending) hurries it: running ffmpegs
 * are killed at once, but the stop still runs to its end, so every channel's record and playlist are finished
 * (stopped, ENDLIST) rather than left `stopping`. A third signal, or `hurryMs` after hurrying, exits at once (code 1).
 * Exits 0 when the stop finished, 1 when it failed or was cut short.
 */
export class Shutdown {
  private cause: ShutdownCause | null = null;
  private hurried = false;
  private signals = 0;
  private lastSignalAt = -Infinity;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly exit: (code: number) => void;
  private readonly listeners: [NodeJS.Signals, () => void][] = [];

  constructor(private readonly opts: ShutdownOptions) {
    this.exit = opts.exit ?? ((code) => process.exit(code));
  }

  /** Listens for SIGTERM, SIGINT and SIGHUP and watches the parent process. */
  install(): this {
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
      const l = () => this.trigger(sig);
      process.on(sig, l);
      this.listeners.push([sig, l]);
    }
    const parentPid = this.opts.parentPid ?? (() => process.ppid);
    const first = parentPid();
    const watch = setInterval(() => {
      if (parentPid() !== first) this.trigger('parent-exited');
    }, this.opts.parentPollMs ?? 500);
    watch.unref();
    this.timers.push(watch);
    return this;
  }

  /** Stops listening and watching (tests). */
  uninstall(): void {
    for (const [sig, l] of this.listeners.splice(0)) process.removeListener(sig, l);
    for (const t of this.timers) clearTimeout(t);
  }

  /** Why the process is going down, or null. */
  get reason(): ShutdownCause | null {
    return this.cause;
  }

  /** A signal (or the parent's exit) arrived. */
  trigger(cause: ShutdownCause, now = Date.now()): void {
    // one key press reaches a process several times (the terminal signals the whole group, and `npm run` passes it on
    // again): signals within SAME_PRESS_MS of the last one counted are that one
    if (cause !== 'parent-exited' && now - this.lastSignalAt >= SAME_PRESS_MS) {
      this.signals++;
      this.lastSignalAt = now;
    }
    if (this.cause === null) {
      this.cause = cause;
      this.opts.logger.info({ cause, graceMs: this.opts.graceMs }, 'shutting down');
      const bound = setTimeout(() => this.hurry('the graceful stop took too long'), this.opts.graceMs);
      bound.unref();
      this.timers.push(bound);
      this.opts.stop().then(
        () => this.finish(0),
        (e: Error) => {
          this.opts.logger.error({ err: e.message }, 'shutdown failed');
          this.finish(1);
        },
      );
      return;
    }
    if (cause === 'parent-exited' || this.signals < 2) return;
    if (this.signals >= 3) {
      this.opts.logger.warn({ signal: cause }, 'exiting at once');
      this.finish(1);
      return;
    }
    this.hurry(`a second ${cause}`);
  }

  private hurry(why: string): void {
    if (this.hurried) return;
    this.hurried = true;
    this.opts.logger.warn({ why }, 'hurrying the shutdown: ffmpegs killed, records still finished');
    this.opts.hurry();
    const cut = setTimeout(() => {
      this.opts.logger.error('the shutdown did not finish in time: exiting');
      this.finish(1);
    }, this.opts.hurryMs ?? 5000);
    cut.unref();
    this.timers.push(cut);
  }

  private finish(code: number): void {
    for (const t of this.timers) clearTimeout(t);
    this.exit(code);
  }
}
