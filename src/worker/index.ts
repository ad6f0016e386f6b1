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
import {
  bullPrefix,
  jobLockKey,
  PUSH_QUEUE,
  PUSH_WORKER_SETTINGS,
  type PushJobData,
  type PushJobResult,
} from '../queue/index.js';
import type { WorkerHeartbeat } from '../queue/heartbeat.js';
import type { RoomRegistry } from '../rooms/registry.js';
import { ChannelRunner, type EndReason, type RunnerDeps } from './runner.js';
import { KeyframeWatch } from './keyframes.js';
import { crashLooping, STEADY_MS } from './crash-loop.js';
import { keepJobLock, withTimeout } from './job-lock.js';
import type { Channel } from '../channels/types.js';
import { RunTargets } from '../targets/manager.js';
import { RunNode, type RunNodeDeps } from './run-node.js';

const HEARTBEAT_MS = 2000;

/** Dependencies of a worker process, made by the composition root (src/wiring). */
export interface PushWorkerDeps {
  config: RelayConfig;
  /** Commands connection: heartbeats go through it and BullMQ's worker duplicates it. */
  redis: Redis;
  store: Pick<ChannelRecords, 'get'>;
  lifecycle: RunnerDeps['lifecycle'] &
    Pick<ChannelLifecycle, 'beginRun' | 'patch' | 'requestStop' | 'startRecycler' | 'notify'>;
  rooms: Pick<RoomRegistry, 'get'>;
  /** Control messages and the media server's keyframe reports arrive on it. */
  bus: Pick<MessageBus, 'subscribe'>;
  /** Shared secret signing internal URLs. */
  secret: string;
  /** Account storage quotas of running recordings; none: not checked. */
  storage?: RunnerDeps['storage'];
  /** The cluster's media nodes and their placement (a run moves its channel off a gone node); absent: one server. */
  cluster?: Pick<RunNodeDeps, 'nodes' | 'placement'>;
  logger: Logger;
}

/** A run of a channel on this worker. */
interface Running {
  ctl: AbortController;
  /** Expected cores. */
  cost: number;
  sdkAppId: string | null;
  /** The token its job was taken with: the job lock's value while this run holds the job. */
  token: string | undefined;
  /** Resolves once the runner has ended (its ffmpeg gone). */
  ended: Promise<void>;
  /** Its push targets (their ffmpegs end with the run). */
  targets?: RunTargets;
  runner?: ChannelRunner;
}

/** How long a new run of a channel waits for the older run it supersedes on this worker to end. */
const SUPERSEDE_WAIT_MS = 15_000;
/** How long the check of a job lock after a failed renewal may take before the run is ended anyway. */
const LOCK_CHECK_MS = 1000;

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
      else if (msg.type === 'targets') this.running.get(msg.channelId)?.targets?.refresh();
      else if (msg.type === 'mix-layout') this.running.get(msg.channelId)?.runner?.mixChanged();
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
      for (const id of ids) void this.lockLost(id);
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

  /** Cores the running channels (but `except`) are expected to use. */
  private load(except?: Running): number {
    const runs = [...this.running.values()].filter((r) => r !== except);
    return Math.round(runs.reduce((sum, r) => sum + r.cost, 0) * 10_000) / 10_000;
  }

  private async process(job: Job<PushJobData, PushJobResult>, token: string | undefined): Promise<PushJobResult> {
    const { channelId } = job.data;
    // CPU-cost admission: take a channel only while the sum of costs stays within capacity (one always fits), so an
    // overloaded worker never makes all its channels fall behind real time; another worker (or later) takes it. A run
    // of the same channel still here (this job taken again after a stall) is about to end and does not count.
    const ch = await this.deps.store.get(channelId);
    const cost = ch ? channelCost(ch, this.deps.config.costs) : 0;
    const prev = this.running.get(channelId);
    const others = this.running.size - (prev ? 1 : 0);
    if (others > 0 && this.load(prev) + cost > this.deps.config.workerCapacity + 1e-9 && token) {
      await job.moveToDelayed(Date.now() + 1000, token);
      throw new DelayedError();
    }
    if (ch && (await crashLooping(ch, this.deps))) return { state: 'failed' };
    // Fencing: from here on every move of an older run of the channel (on this worker or another) is refused, and the
    // media server refuses its ffmpeg once this run's tokens reach it.
    const gen = await this.deps.lifecycle.beginRun(channelId);
    if (gen === null) return { state: 'gone' };
    const ctl = new AbortController();
    let runEnded = () => undefined as void;
    const ended = new Promise<void>((r) => (runEnded = r));
    const entry: Running = { ctl, cost, sdkAppId: ch?.sdkAppId ?? null, token, ended };
    const older = this.running.get(channelId);
    this.running.set(channelId, entry);
    void this.beat();
    try {
      // One runner per channel here: the older one (and its ffmpeg) ends before this one starts.
      if (older) await this.supersede(channelId, older);
      return await this.runOnce(job, token, entry, gen);
    } finally {
      runEnded();
      if (this.running.get(channelId) === entry) this.running.delete(channelId);
      void this.beat();
    }
  }

  // Ends the older run of a channel taken again here, and waits (bounded) until its ffmpeg is gone.
  private async supersede(channelId: string, older: Running): Promise<void> {
    this.deps.logger.warn({ channelId }, 'channel taken again while its older run lives: ending the older run first');
    older.ctl.abort('superseded' satisfies EndReason);
    await withTimeout(older.ended, SUPERSEDE_WAIT_MS, undefined);
  }

  private async runOnce(
    job: Job<PushJobData, PushJobResult>,
    token: string | undefined,
    entry: Running,
    gen: number,
  ): Promise<PushJobResult> {
    const { channelId } = job.data;
    const { ctl } = entry;
    const { config, store, lifecycle, rooms, secret, cluster } = this.deps;
    const log = this.deps.logger.child({ jobId: job.id });
    const node = cluster && new RunNode({ ...cluster, config, lifecycle, rooms, log }, channelId, gen);
    const runner = new ChannelRunner(
      {
        config,
        store,
        lifecycle,
        rooms,
        keyframes: this.keyframes,
        logger: log,
        secret,
        workerId: this.id,
        ...(node ? { node } : {}),
        storage: this.deps.storage,
        beforeEnd: async () => entry.targets?.close(), // a stop, retention or lost record noticed by the run itself
        // the mix's cost (members decoded) counts in this worker's load from the layout applied on
        onMixApplied: (ch) => (entry.cost = channelCost(ch, config.costs)),
      },
      channelId,
      gen,
      ctl.signal,
    );
    entry.runner = runner;
    // A run that stays live this long (or hands over in order) is no crash loop: its count starts again.
    const clear = () => lifecycle.patchRun(channelId, gen, { runStarts: null }, ['live']).catch(() => undefined);
    const steady = setTimeout(() => void clear(), STEADY_MS);
    const lockDuration = PUSH_WORKER_SETTINGS.lockDuration!;
    const lost = () => this.end(channelId, 'lock-lost', entry);
    const stopKeeping = token ? keepJobLock(job, token, lockDuration, lost) : () => undefined;
    (entry.targets = new RunTargets(
      { config, store, lifecycle, secret, logger: this.deps.logger, ...(node ? { mediaAt: () => node.endpoint } : {}) },
      channelId,
      gen,
    )).start();
    try {
      const outcome = await runner.run();
      await entry.targets.close(); // before a handover: the next worker's targets publish to the same stream keys
      if (outcome === 'handover' && ctl.signal.reason === 'shutdown') await clear();
      if (outcome === 'handover' && ctl.signal.reason === 'shutdown' && token) {
        // Give the job back so another worker resumes the channel at once.
        await job.moveToWait(token);
        throw new WaitingError();
      }
      return { state: outcome === 'stopped' || outcome === 'failed' || outcome === 'interrupted' ? outcome : 'gone' };
    } finally {
      await entry.targets.close(); // no target's ffmpeg outlives its run
      stopKeeping();
      clearTimeout(steady);
    }
  }

  /**
   * A job lock could not be renewed: its run ends (another worker may own the channel now) — unless this worker has
   * taken the job again since (a stall of this process) and that newer run holds the lock with its own token.
   */
  private async lockLost(channelId: string): Promise<void> {
    const run = this.running.get(channelId);
    if (!run) return;
    const lock = this.deps.redis.get(jobLockKey(this.deps.config.redisPrefix, channelId)).catch(() => null);
    const holder = await withTimeout(lock, LOCK_CHECK_MS, null);
    if (run.token !== undefined && holder === run.token) return;
    this.end(channelId, 'lock-lost', run);
  }

  private end(channelId: string, reason: EndReason, run = this.running.get(channelId)): void {
    const ctl = run?.ctl;
    if (ctl && !ctl.signal.aborted) {
      this.deps.logger.info({ channelId, reason }, 'ending channel');
      void run?.targets?.close(); // first: the channel's stream ending under them is no target failure
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
