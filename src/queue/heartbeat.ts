import type { Redis } from 'ioredis';
import type { Keys } from '../redis/index.js';

/** A worker that has not reported for this long is left out. */
const WORKER_STALE_MS = 10_000;

/** What workers report about themselves every few seconds (Redis hash `<prefix>:workers`). */
export interface WorkerHeartbeat {
  workerId: string;
  channels: number;
  concurrency: number;
  /** Cores its channels are expected to use (sum of their costs). */
  load: number;
  /** Cores it may fill. */
  capacity: number;
  at: number;
}

/** Workers that reported within the last few seconds. */
export async function liveWorkers(redis: Redis, keys: Keys, now = Date.now()): Promise<WorkerHeartbeat[]> {
  return Object.values(await redis.hgetall(keys.workers()))
    .map((raw) => JSON.parse(raw) as WorkerHeartbeat)
    .filter((w) => now - w.at <= WORKER_STALE_MS);
}
