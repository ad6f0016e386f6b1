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

/** Commands sent to every worker over Redis pub/sub; the one running the channel acts. */
export interface ControlMessage {
  type: 'stop';
  channelId: string;
}

/** BullMQ key prefix of a relay deployment (or of one test run). */
export function bullPrefix(redisPrefix: string): string {
  return `${redisPrefix}:bull`;
}

/**
 * Lock and stall settings chosen for jobs that run for hours and must fail over fast: the lock is renewed every 1.5 s,
 * a worker that dies (SIGKILL) loses its jobs 1.5–3 s later when the lock expires, plus at most one 1 s stall check
 * (measured over 6 runs: viewer gap 3.0–4.0 s, where 4 s + 2 s gave 3.1–6.0 s), and a job may be resumed
 * after any number of such stalls (each failover counts as one). A renewal that fails stops the local ffmpeg at
 * once (PushWorker), so a slow worker never publishes beside the one that took its job over.
 */
export const PUSH_WORKER_SETTINGS: Pick<WorkerOptions, 'lockDuration' | 'stalledInterval' | 'maxStalledCount'> = {
  lockDuration: 3_000,
  stalledInterval: 1_000,
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
