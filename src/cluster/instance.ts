/**
 * Who this process is within its cluster. A *cluster* is every relay process on one Redis key prefix
 * (RELAY_REDIS_PREFIX): API, worker and media processes on any number of hosts cooperate through it by design. Each
 * process is an *instance* (host, pid, start time); a media process is also a *media node*, named by host and RTMP
 * port (RELAY_NODE_ID overrides), a name that survives its restarts, so that what a node registered (its ingest
 * members) is cleared by that node when it starts again, and by no other node while it lives.
 */
import os from 'node:os';
import type { Redis } from 'ioredis';
import type { Keys } from '../redis/index.js';

/** One relay process. */
export interface Instance {
  /** `host:pid:startedAt`, unique over the cluster's life. */
  id: string;
  host: string;
  pid: number;
  startedAt: number;
  /** What the process runs: `relay` (all-in-one), `api`, `worker`, `media`. */
  role: string;
}

/** This process as an instance of `role`. */
export function thisInstance(role: string, now = Date.now()): Instance {
  const host = os.hostname();
  return { id: `${host}:${process.pid}:${now}`, host, pid: process.pid, startedAt: now, role };
}

/** The media node name of this process: RELAY_NODE_ID, else `host:rtmpPort`. */
export function mediaNodeId(rtmpPort: number, env: NodeJS.ProcessEnv = process.env): string {
  return env.RELAY_NODE_ID || `${os.hostname()}:${rtmpPort}`;
}

/** Why an all-in-one relay may not start on this prefix: another one holds it. */
export class PrefixTaken extends Error {
  constructor(
    readonly prefix: string,
    readonly holder: Instance,
  ) {
    super(
      `another all-in-one relay already runs on this Redis with RELAY_REDIS_PREFIX=${prefix} ` +
        `(host ${holder.host}, pid ${holder.pid}, started ${new Date(holder.startedAt).toISOString()}); two on one ` +
        `prefix would clear each other's rooms and take each other's jobs. Stop that one, or give this one its own ` +
        `prefix: RELAY_REDIS_PREFIX=<name> npm run relay`,
    );
  }
}

const HOLD_MS = 15_000;
const REFRESH_MS = 5_000;
// Refreshes the hold only while it is still ours.
const REFRESH = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

/**
 * The all-in-one relay's claim on its prefix: one at a time (`npm run relay` assumes it is the whole cluster). A key
 * held with a 15 s expiry refreshed every 5 s; a holder on this host whose pid is gone (killed with SIGKILL) is taken
 * over at once instead of waiting for the expiry.
 */
export class PrefixClaim {
  private timer: NodeJS.Timeout | null = null;
  private readonly value: string;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly me: Instance,
    private readonly pidAlive: (pid: number) => boolean = defaultPidAlive,
  ) {
    this.value = JSON.stringify(me);
  }

  /** Claims the prefix, or throws PrefixTaken naming the instance that holds it. */
  async acquire(): Promise<void> {
    const key = this.keys.allInOne();
    for (let tries = 0; tries < 2; tries++) {
      if ((await this.redis.set(key, this.value, 'PX', HOLD_MS, 'NX')) === 'OK') {
        this.timer = setInterval(
          () => void this.redis.eval(REFRESH, 1, key, this.value, HOLD_MS).catch(() => undefined),
          REFRESH_MS,
        );
        this.timer.unref();
        return;
      }
      const raw = await this.redis.get(key);
      if (raw === null) continue; // expired between the two calls
      const holder = JSON.parse(raw) as Instance;
      if (holder.host === this.me.host && !this.pidAlive(holder.pid)) {
        await this.redis.eval(RELEASE, 1, key, raw);
        continue;
      }
      throw new PrefixTaken(this.keys.prefix, holder);
    }
    throw new Error('could not claim the prefix');
  }

  /** Gives the prefix up (only if still ours). */
  async release(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.redis.eval(RELEASE, 1, this.keys.allInOne(), this.value).catch(() => undefined);
  }
}

function defaultPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
