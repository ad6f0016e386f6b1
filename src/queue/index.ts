import { Queue, type ConnectionOptions, type WorkerOptions } from 'bullmq';

/** Name of the BullMQ queue of push jobs (one job per channel). */
export const PUSH_QUEUE = 'push';

/** Data of a push job: the worker loads everything else from the channel record. */
export interface PushJobData {
  channelId: string;
}

/** How a push job ended. */
export interface PushJobResult {
  state: 'stopped' | 'failed' | 'gone' | 'interrupted';
}

/** BullMQ key prefix of a relay deployment (or of one test run). */
export function bullPrefix(redisPrefix: string): string {
  return `${redisPrefix}:bull`;
}

/** The Redis key of a push job's lock (its value is the token of the processor that holds the job). */
export function jobLockKey(redisPrefix: string, jobId: string): string {
  return `${bullPrefix(redisPrefix)}:${PUSH_QUEUE}:${jobId}:lock`;
}

/**
 * Lock and stall settings chosen for jobs that run for hours and must fail over fast: the lock is renewed every 1.5 s,
 * so a worker that dies (SIGKILL) loses its jobs 1.5–3 s later when the lock expires; a surviving worker looks for
 * such jobs every 0.5 s and starts the channel at once (its first keyframe reaches viewers ~0.4 s after). Measured
 * with 4 s + 2 s: viewer gaps up to 6.0 s; 3 s + 1 s: 3.0–5.0 s. A job may be resumed after any number of stalls
 * (each failover counts as one). A renewal that fails stops the local ffmpeg at once (PushWorker), so a slow worker
 * never publishes beside the one that took its job over.
 */
export const PUSH_WORKER_SETTINGS: Pick<WorkerOptions, 'lockDuration' | 'stalledInterval' | 'maxStalledCount'> = {
  lockDuration: 3_000,
  stalledInterval: 500,
  maxStalledCount: 1_000_000,
};

/** Opens the push queue. */
export function pushQueue(connection: ConnectionOptions, redisPrefix: string): Queue<PushJobData, PushJobResult> {
  return new Queue<PushJobData, PushJobResult>(PUSH_QUEUE, {
    connection,
    prefix: bullPrefix(redisPrefix),
    defaultJobOptions: { attempts: 1, removeOnComplete: true, removeOnFail: true },
  });
}
