import os from 'node:os';
import { DelayedError, Worker, WaitingError, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { channelCost } from '../channels/cost.js';
import type { RelayConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import { Keys } from '../redis/index.js';
import type { ChannelRecords } from '../channels/records.js';
import type { ChannelLifecycle } from '../channels/lifecycle.js';
import type { MessageBus } from '../channels/messages.js';
import { bullPrefix, PUSH_QUEUE, PUSH_WORKER_SETTINGS, type PushJobData, type PushJobResult } from '../queue/index.js';
import type { WorkerHeartbeat } from '../queue/heartbeat.js';
import type { RoomRegistry } from '../rooms/registry.js';
import { ChannelRunner, type EndReason, type RunnerDeps } from './runner.js';
import { KeyframeWatch } from './keyframes.js';
import { countStart, crashLoopFailure, STEADY_MS } from './crash-loop.js';
import type { Channel } from '../channels/types.js';

const HEARTBEAT_MS = 2000;

/** Dependencies of a worker process, made by the composition root (src/wiring). */
export interface PushWorkerDeps {
  config: RelayConfig;
  /** Commands connection: heartbeats go through it and BullMQ's worker duplicates it. */
  redis: Redis;
  store: Pick<ChannelRecords, 'get'>;
  lifecycle: RunnerDeps['lifecycle'] & Pick<ChannelLifecycle, 'requestStop' | 'startRecycler'>;
  rooms: Pick<RoomRegistry, 'get'>;
  /** Control messages and the media server's keyframe reports arrive on it. */
  bus: Pick<MessageBus, 'subscribe'>;
  /** Shared secret signing internal URLs. */
  secret: string;
  /** Account storage quotas of running recordings; none: not checked. */
  storage?: RunnerDeps['storage'];
  logger: Logger;
}

/** A channel this worker runs. */
interface Running {
  ctl: AbortController;
  /** Expected cores. */
  cost: number;
  sdkAppId: string | null;
}

/** Takes push jobs from the queue and runs one ffmpeg per channel, up to the configured concurrency. */
export class PushWorker {
  readonly id = `${os.hostname()}:${process.pid}`;
  private worker: Worker<PushJobData, PushJobResult> | null = null;
  private readonly running = new Map<string, Running>();
  private readonly keys: Keys;
  private readonly keyframes = new KeyframeWatch();
  private unsubscribeControl: (() => Promise<void>) | null = null;
  private stopRecycler: (() => void) | null = null;
  private heartbeat: NodeJS.Timeout | null = null;

  constructor(private readonly deps: PushWorkerDeps) {
    this.keys = new Keys(deps.config.redisPrefix);
  }

  /** Channels this worker runs now. */
  get channels(): string[] {
    return [...this.running.keys()];
  }

  /** Subscribes to control messages and starts taking jobs. */
  async start(): Promise<void> {
    const { config, logger, bus } = this.deps;
    this.unsubscribeControl = await bus.subscribe('control', (msg) => {
      if (msg.type === 'stop') this.end(msg.channelId, 'stop');
    });
    await this.keyframes.start(bus);
    this.worker = new Worker<PushJobData, PushJobResult>(PUSH_QUEUE, (job, token) => this.process(job, token), {
      connection: this.deps.redis.duplicate({ connectionName: 'relay-worker-bull' }),
      prefix: bullPrefix(config.redisPrefix),
      concurrency: config.workerConcurrency,
      ...PUSH_WORKER_SETTINGS,
    });
    // Another worker may now own these jobs: stop publishing at once rather than publish twice.
    this.worker.on('lockRenewalFailed', (ids) => {
      for (const id of ids) this.end(id, 'lock-lost');
    });
    this.worker.on('error', (e) => logger.warn({ err: e.message }, 'queue worker error'));
    await this.worker.waitUntilReady();
    this.stopRecycler = this.deps.lifecycle.startRecycler();
    this.heartbeat = setInterval(() => {
      void this.beat();
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
    await this.beat();
    logger.info({ workerId: this.id, concurrency: config.workerConcurrency }, 'worker ready');
  }

  // Tells operators (metrics) what this worker runs against its capacity.
  private async beat(): Promise<void> {
    const hb: WorkerHeartbeat = {
      workerId: this.id,
      channels: this.running.size,
      concurrency: this.deps.config.workerConcurrency,
      load: this.load(),
      capacity: this.deps.config.workerCapacity,
      at: Date.now(),
    };
    await this.deps.redis.hset(this.keys.workers(), this.id, JSON.stringify(hb)).catch(() => undefined);
  }

  /** Cores the running channels are expected to use. */
  private load(): number {
    return Math.round([...this.running.values()].reduce((sum, r) => sum + r.cost, 0) * 10_000) / 10_000;
  }

  private async process(job: Job<PushJobData, PushJobResult>, token: string | undefined): Promise<PushJobResult> {
    const { channelId } = job.data;
    // CPU-cost admission: take a channel only while the sum of costs stays within capacity (one always fits), so an
    // overloaded worker never makes all its channels fall behind real time; another worker (or later) takes it.
    const ch = await this.deps.store.get(channelId);
    const cost = ch ? channelCost(ch, this.deps.config.costs) : 0;
    if (this.running.size > 0 && this.load() + cost > this.deps.config.workerCapacity + 1e-9 && token) {
      await job.moveToDelayed(Date.now() + 1000, token);
      throw new DelayedError();
    }
    if (ch && (await this.crashLooping(ch))) return { state: 'failed' };
    const ctl = new AbortController();
    this.running.set(channelId, { ctl, cost, sdkAppId: ch?.sdkAppId ?? null });
    void this.beat();
    const { config, store, lifecycle, rooms, secret } = this.deps;
    const runner = new ChannelRunner(
      {
        config,
        store,
        lifecycle,
        rooms,
        keyframes: this.keyframes,
        logger: this.deps.logger.child({ jobId: job.id }),
        secret,
        workerId: this.id,
        storage: this.deps.storage,
      },
      channelId,
      ctl.signal,
    );
    // A run that stays live this long (or hands over in order) is no crash loop: its count starts again.
    const clear = () => this.deps.lifecycle.patch(channelId, { runStarts: null }, ['live']).catch(() => undefined);
    const steady = setTimeout(() => void clear(), STEADY_MS);
    try {
      const outcome = await runner.run();
      if (outcome === 'handover' && ctl.signal.reason === 'shutdown') await clear();
      if (outcome === 'handover' && ctl.signal.reason === 'shutdown' && token) {
        // Give the job back so another worker resumes the channel at once.
        await job.moveToWait(token);
        throw new WaitingError();
      }
      return { state: outcome === 'stopped' || outcome === 'failed' || outcome === 'interrupted' ? outcome : 'gone' };
    } finally {
      clearTimeout(steady);
      this.running.delete(channelId);
      void this.beat();
    }
  }

  /**
   * Counts this start of the channel's run in its record before anything runs, so a run that kills its worker (or the
   * whole relay) is still counted; past `maxRunStarts` within the window the channel fails (6012) instead of running.
   */
  private async crashLooping(ch: Channel): Promise<boolean> {
    if (ch.state !== 'starting' && ch.state !== 'live') return false;
    const starts = countStart(ch.runStarts, Date.now());
    const failure = crashLoopFailure(starts, this.deps.config.maxRunStarts);
    if (!failure) {
      await this.deps.lifecycle.patch(ch.channelId, { runStarts: starts }, ['starting', 'live']);
      return false;
    }
    this.deps.logger.warn({ channelId: ch.channelId, starts }, failure.message);
    return (await this.deps.lifecycle.fail(ch, failure)).ok;
  }

  private end(channelId: string, reason: EndReason): void {
    const ctl = this.running.get(channelId)?.ctl;
    if (ctl && !ctl.signal.aborted) {
      this.deps.logger.info({ channelId, reason }, 'ending channel');
      ctl.abort(reason);
    }
  }

  /**
   * Stops taking jobs. `handover` (a worker among others) gives every running channel back to the queue, its ffmpeg
   * stopped first, for another worker to resume on the same URLs; `stop` (the whole relay goes down) ends them.
   */
  async close(mode: 'handover' | 'stop' = 'handover'): Promise<void> {
    this.stopRecycler?.();
    if (this.heartbeat) clearInterval(this.heartbeat);
    await this.deps.redis.hdel(this.keys.workers(), this.id).catch(() => undefined);
    await this.worker?.pause(true).catch(() => undefined);
    for (const [id, r] of this.running) {
      if (mode === 'stop' && r.sdkAppId)
        await this.deps.lifecycle
          .requestStop({ channelId: id, sdkAppId: r.sdkAppId }, 'the relay shut down')
          .catch(() => undefined);
      this.end(id, mode === 'stop' ? 'stop' : 'shutdown');
    }
    await this.unsubscribeControl?.().catch(() => undefined);
    await this.keyframes.close().catch(() => undefined);
    await this.worker?.close();
  }
}
