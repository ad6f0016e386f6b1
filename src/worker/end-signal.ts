/**
 * Why a running channel is asked to end: an API stop, a worker shutdown (hand over), a lost job lock, or a newer run
 * of the channel (superseded: end at once and quietly, moving nothing).
 */
export type EndReason = 'stop' | 'shutdown' | 'lock-lost' | 'superseded';

/**
 * Waits for `work`, unless one of `signals` aborts first (at once when one already has): `{ done }` with the work's
 * value, or `{ reason }` with the abort reason. Its listeners are removed once settled.
 */
export async function untilAbort<T, R>(
  work: Promise<T>,
  signals: readonly AbortSignal[],
): Promise<{ done: T } | { reason: R }> {
  const aborted = signals.find((s) => s.aborted);
  if (aborted) return { reason: aborted.reason as R };
  const ctl = new AbortController();
  try {
    return await Promise.race([
      work.then((done) => ({ done })),
      new Promise<{ reason: R }>((resolve) => {
        for (const s of signals)
          s.addEventListener('abort', () => resolve({ reason: s.reason as R }), { once: true, signal: ctl.signal });
      }),
    ]);
  } finally {
    ctl.abort();
  }
}

/** Sleeps `ms`, unless one of `signals` aborts first: then resolves with its reason (else null). */
export async function sleepOrAbort<R>(ms: number, signals: readonly AbortSignal[]): Promise<R | null> {
  let timer: NodeJS.Timeout | undefined;
  const slept = new Promise<void>((r) => {
    timer = setTimeout(r, ms);
  });
  try {
    const r = await untilAbort<void, R>(slept, signals);
    return 'reason' in r ? r.reason : null;
  } finally {
    clearTimeout(timer);
  }
}
