import type { Job } from 'bullmq';

/** How often a run renews its own job lock (ms); the lock lasts PUSH_WORKER_SETTINGS.lockDuration. */
const KEEP_MS = 1000;

/**
 * Renews a job's lock with its run's own token every second, besides BullMQ's renewal: BullMQ tracks a lock by job
 * id, so when this worker takes a job again (its event loop stalled past the lock), the older processor's return can
 * stop BullMQ renewing the newer run's lock. `onLost` is called once the lock is not this run's (another holder, or
 * none); a Redis error is not a loss. Returns the stopper.
 */
export function keepJobLock(
  job: Pick<Job, 'extendLock'>,
  token: string,
  durationMs: number,
  onLost: () => void,
): () => void {
  let stopped = false;
  const timer = setInterval(() => {
    void job.extendLock(token, durationMs).then(
      (kept) => {
        if (!stopped && !kept) onLost();
      },
      () => undefined,
    );
  }, KEEP_MS);
  timer.unref();
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}

/** `work`'s value, or `fallback` once `ms` have passed without it. */
export async function withTimeout<T>(work: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([work, new Promise<T>((r) => (timer = setTimeout(() => r(fallback), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
