import crypto from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import type { Keys } from './index.js';

/** How often a process checks the boot marker besides each reconnect. */
export const BOOT_CHECK_MS = 5000;

/** What a process knows of its Redis's data (health routes and metrics show it). */
export interface BootStatus {
  /** Times this process found that Redis had lost its data since it started. */
  dataLosses: number;
  /** When it last found it (ms), or null. */
  lastDataLossAt: number | null;
}

/**
 * Notices a Redis that lost its data (restarted without persistence, flushed, failed over to an empty replica). The
 * first process of a deployment sets `<prefix>:boot` to a random id (SET NX); every process remembers the id and
 * checks it again on each reconnect (`ready`) and every BOOT_CHECK_MS. When it is missing or different, the process
 * logs one error, runs its restore hooks (what it owns: the internal secret it signs with, the ingest members it
 * serves, configured accounts and apps) and then sets a new id (SET NX: the first process to get there makes it, the
 * others adopt it). A new id rather than the old one, so that the processes that reconnect later find it changed and
 * restore their part too.
 */
export class BootMarker {
  private id: string | null = null;
  private losses = 0;
  private lastLossAt: number | null = null;
  private running: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly restores: { what: string; run: () => Promise<unknown> }[] = [];
  private readonly onReady = () => {
    this.check().catch((e: Error) => this.logger.warn({ err: e.message }, 'boot marker not checked'));
  };

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly logger: Logger,
    private readonly intervalMs = BOOT_CHECK_MS,
  ) {}

  /** Adds what this process puts back after a loss (`what` names it in logs); hooks run in the order added. */
  onLoss(what: string, run: () => Promise<unknown>): this {
    this.restores.push({ what, run });
    return this;
  }

  /** Reads (or sets) the marker, then checks it on every reconnect and periodically. */
  async start(): Promise<void> {
    await this.check();
    this.redis.on('ready', this.onReady);
    this.timer = setInterval(() => {
      this.check().catch((e: Error) => this.logger.debug({ err: e.message }, 'boot marker not checked'));
    }, this.intervalMs);
    this.timer.unref();
  }

  /** Stops checking. */
  close(): void {
    this.redis.off('ready', this.onReady);
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** What this process knows: how often Redis lost its data under it. */
  status(): BootStatus {
    return { dataLosses: this.losses, lastDataLossAt: this.lastLossAt };
  }

  /** Checks the marker now; concurrent calls share one check. */
  check(): Promise<void> {
    this.running ??= this.checkOnce().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async checkOnce(): Promise<void> {
    const key = this.keys.boot();
    if (this.id === null) return this.adopt(key);
    const found = await this.redis.get(key);
    if (found === this.id) return;
    this.losses++;
    this.lastLossAt = Date.now();
    this.logger.error(
      { bootMarker: key, expected: this.id, found, restoring: this.restores.map((r) => r.what) },
      `Redis lost its data (boot marker ${found === null ? 'missing' : 'changed'}): apps, accounts, room members, ` +
        'channels and jobs stored there are gone; this process restores what it owns, the rest must be created ' +
        'again. Run Redis with persistence (appendonly yes).',
    );
    for (const r of this.restores) {
      await r.run().catch((e: Error) => this.logger.error({ what: r.what, err: e.message }, 'not restored'));
    }
    await this.adopt(key);
  }

  // Takes the marker there is, or makes one (a first start, or after a loss).
  private async adopt(key: string): Promise<void> {
    await this.redis.set(key, `boot_${crypto.randomBytes(8).toString('hex')}`, 'NX');
    this.id = (await this.redis.get(key)) ?? this.id;
  }
}
