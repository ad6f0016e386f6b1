/** Why a running channel is asked to end: an API stop, a worker shutdown (hand over), or a lost job lock. */
export type EndReason = 'stop' | 'shutdown' | 'lock-lost';

/** Resolves with the reason of the first of the signals to abort (at once when one already has). */
export function endSignal(signals: readonly AbortSignal[]): Promise<EndReason> {
  return new Promise<EndReason>((resolve) => {
    for (const signal of signals) {
      if (signal.aborted) resolve(signal.reason as EndReason);
      signal.addEventListener('abort', () => resolve(signal.reason as EndReason), { once: true });
    }
  });
}

/** Sleeps `ms`, unless one of the signals aborts first: then resolves with its reason (null after the full sleep). */
export async function waitOrEnd(ms: number, signals: readonly AbortSignal[]): Promise<EndReason | null> {
  let timer: NodeJS.Timeout | undefined;
  const slept = new Promise<null>((r) => {
    timer = setTimeout(() => r(null), ms);
  });
  try {
    return await Promise.race([slept, endSignal(signals)]);
  } finally {
    clearTimeout(timer);
  }
}
