import crypto from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';

const LOCK_MS = 5000;
const LOCK_TRIES = 100;
const UNLOCK = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0";

/** Runs `fn` one at a time per key, across processes; `busy` is thrown when the key stays taken (about 5 s). */
export type KeyedLock = <T>(key: string, fn: () => Promise<T>, busy: () => Error) => Promise<T>;

/**
 * A short Redis lock (SET NX with a 5 s expiry, released only by its holder): serialises a read-modify-write of one
 * record across API processes (two concurrent changes must not both write the same next version).
 */
export function redisLock(redis: Pick<Redis, 'set' | 'eval'>): KeyedLock {
  return async (key, fn, busy) => {
    const me = crypto.randomBytes(8).toString('hex');
    for (let i = 0; (await redis.set(key, me, 'PX', LOCK_MS, 'NX')) !== 'OK'; i++) {
      if (i >= LOCK_TRIES) throw busy();
      await sleep(50);
    }
    try {
      return await fn();
    } finally {
      await redis.eval(UNLOCK, 1, key, me).catch(() => undefined);
    }
  };
}

/** The same serialisation within one process (tests, a single API process without Redis). */
export function processLock(): KeyedLock {
  const tails = new Map<string, Promise<unknown>>();
  return async (key, fn) => {
    const before = tails.get(key) ?? Promise.resolve();
    const run = before.then(fn, fn);
    const tail = run.catch(() => undefined);
    tails.set(key, tail);
    try {
      return await run;
    } finally {
      if (tails.get(key) === tail) tails.delete(key);
    }
  };
}
