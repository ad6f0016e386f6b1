import os from 'node:os';
import { DelayedError, Worker, WaitingError, type Job, type Queue } from 'bullmq';
import { channelCost } from '../channels/cost.js';
import { WebhookOutbox, webhookQueue, type WebhookEvent } from '../webhooks/index.js';
import type { Redis } from 'ioredis';
import type { RelayConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import { Keys } from '../redis/index.js';
import { internalSecret } from '../auth/index.js';
import { ChannelStore } from '../channels/store.js';
import { MessageBus } from '../channels/messages.js';
import { bullPrefix, PUSH_QUEUE, PUSH_WORKER_SETTINGS, type PushJobData, type PushJobResult } from '../queue/index.js';
import { ChannelRunner, type EndReason } from './runner.js';
import { KeyframeWatch } from './keyframes.js';
import { RoomRegistry } from '../rooms/registry.js';
import { startRecycler } from '../channels/lifecycle.js';
import type { WorkerHeartbeat } from '../queue/heartbeat.js';

const HEARTBEAT_MS = 2000;

/** Dependencies of a worker process. */
export interface PushWorkerDeps {
  config: RelayConfig;
  /** Commands connection (also used by BullMQ's worker as its base connection). */
  redis: Redis;
  /** A dedicated connection for pub/sub. */
  subscriber: Redis;
  logger: Logger;
}

/** Takes push jobs from the queue and runs one ffmpeg per channel, up to the configured concurrency. */
export class PushWorker {
  readonly id = `${os.hostname()}:${process.pid}`;
  private worker: Worker<PushJobData, PushJobResult> | null = null;
  private readonly running = new Map<string, AbortController>();
  /** Expected cores of each running channel. */
  private readonly costs = new Map<string, number>();
  private readonly keys: Keys;
  private readonly bus: MessageBus;
  private readonly keyframes = new KeyframeWatch();
  private unsubscribeControl: (() => Promise<void>) | null = null;
  private readonly store: ChannelStore;
  private readonly rooms: RoomRegistry;
  private stopRecycler: (() => void) | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private readonly hooksQueue: Queue<WebhookEvent>;

  constructor(private readonly deps: PushWorkerDeps) {
    this.keys = new Keys(deps.config.redisPrefix);
    this.bus = new MessageBus(deps.redis, deps.subscriber, this.keys);
    this.hooksQueue = webhookQueue(deps.redis.duplicate({ connectionName: 'relay-worker-webhooks' }), deps.config);
    this.store = new ChannelStore(deps.redis, this.keys, new WebhookOutbox(this.hooksQueue));
    this.rooms = new RoomRegistry(deps.redis, this.keys);
  }

  /** Channels this worker runs now. */
  get channels(): string[] {
    return [...this.running.keys()];
  }

  /** Subscribes to control messages and starts taking jobs. */
  async start(): Promise<void> {
    const { config, logger } = this.deps;
    const secret = await internalSecret(this.deps.redis, this.keys);
    this.unsubscribeControl = await this.bus.subscribe('control', (msg) => { if (msg.type === 'stop') this.end(msg.channelId, 'stop'); });
    await this.keyframes.start(this.bus);
    this.worker = new Worker<PushJobData, PushJobResult>(PUSH_QUEUE, (job, token) => this.process(job, token, secret), {
      connection: this.deps.redis.duplicate({ connectionName: 'relay-worker-bull' }),
      prefix: bullPrefix(config.redisPrefix),
      concurrency: config.workerConcurrency,
      ...PUSH_WORKER_SETTINGS,
    });
    // Another worker may now own these jobs: stop publishing at once rather than publish twice.
    this.worker.on('lockRenewalFailed', (ids) => { for (const id of ids) this.end(id, 'lock-lost'); });
    this.worker.on('error', (e) => logger.warn({ err: e.message }, 'queue worker error'));
    await this.worker.waitUntilReady();
    this.stopRecycler = startRecycler(this.store, config, logger);
    this.heartbeat = setInterval(() => { void this.beat(); }, HEARTBEAT_MS);
    this.heartbeat.unref();
    await this.beat();
    logger.info({ workerId: this.id, concurrency: config.workerConcurrency }, 'worker ready');
  }

  // Tells operators (metrics) what this worker runs against its capacity.
  private async beat(): Promise<void> {
    const hb: WorkerHeartbeat = { workerId: this.id, channels: this.running.size, concurrency: this.deps.config.workerConcurrency, load: this.load(), capacity: this.deps.config.workerCapacity, at: Date.now() };
    await this.deps.redis.hset(this.keys.workers(), this.id, JSON.stringify(hb)).catch(() => undefined);
  }

  /** Cores the running channels are expected to use. */
  private load(): number {
    return Math.round([...this.costs.values()].reduce((a, b) => a + b, 0) * 10_000) / 10_000;
  }

  private async process(job: Job<PushJobData, PushJobResult>, token: string | undefined, secret: string): Promise<PushJobResult> {
    const { channelId } = job.data;
    // CPU-cost admission: take a channel only while the sum of costs stays within capacity (one always fits), so an
    // overloaded worker never makes all its channels fall behind real time; another worker (or later) takes it.
    const ch = await this.store.get(channelId);
    const cost = ch ? channelCost(ch, this.deps.config.costs) : 0;
    if (this.costs.size > 0 && this.load() + cost > this.deps.config.workerCapacity + 1e-9 && token) {
      await job.moveToDelayed(Date.now() + 1000, token);
      throw new DelayedError();
    }
    const ctl = new AbortController();
    this.running.set(channelId, ctl);
    this.costs.set(channelId, cost);
    void this.beat();
    const runner = new ChannelRunner({ config: this.deps.config, store: this.store, rooms: this.rooms, keyframes: this.keyframes, logger: this.deps.logger.child({ jobId: job.id }), secret, workerId: this.id }, channelId, ctl.signal);
    try {
      const outcome = await runner.run();
      if (outcome === 'handover' && ctl.signal.reason === 'shutdown' && token) {
        // Give the job back so another worker resumes the channel at once.
        await job.moveToWait(token);
        throw new WaitingError();
      }
      return { state: outcome === 'stopped' || outcome === 'failed' || outcome === 'interrupted' ? outcome : 'gone' };
    } finally {
      this.running.delete(channelId);
      this.costs.delete(channelId);
      void this.beat();
    }
  }

  private end(channelId: string, reason: EndReason): void {
    const ctl = this.running.get(channelId);
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
    for (const id of this.running.keys()) {
      if (mode === 'stop') await this.store.transition(id, ['starting', 'live'], 'stopping', 'the relay shut down').catch(() => undefined);
      this.end(id, mode === 'stop' ? 'stop' : 'shutdown');
    }
    await this.unsubscribeControl?.().catch(() => undefined);
    await this.keyframes.close().catch(() => undefined);
    await this.worker?.close();
    await this.hooksQueue.close();
  }
}
