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
 * Lock and stall settings chosen for jobs that run for hours: the lock is renewed every 5 s, a worker that dies
 * loses its jobs after at most ~10 s + 5 s, and a job may be resumed after any number of such stalls.
 */
export const PUSH_WORKER_SETTINGS: Pick<WorkerOptions, 'lockDuration' | 'stalledInterval' | 'maxStalledCount'> = {
  lockDuration: 10_000,
  stalledInterval: 5_000,
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
