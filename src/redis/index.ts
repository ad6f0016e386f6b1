import { Redis } from 'ioredis';

/** How long a command of a fail-fast connection may take before it fails (ms). */
export const FAIL_FAST_COMMAND_MS = 2000;

/**
 * Opens an ioredis connection that reconnects forever. The default suits BullMQ workers and subscribers (commands
 * wait through an outage). `failFast` suits request handlers (API, media routes): while Redis is away a command
 * fails at once, and one that gets no answer fails after FAIL_FAST_COMMAND_MS, so a caller answers 50006/503 instead
 * of hanging for the whole outage. Wait for `ready` (redisReady) before the first command of a fail-fast connection.
 */
export function connectRedis(url: string, name: string, opts: { failFast?: boolean } = {}): Redis {
  return new Redis(url, {
    connectionName: name,
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    retryStrategy: (times) => Math.min(times * 200, 2000),
    ...(opts.failFast ? { enableOfflineQueue: false, commandTimeout: FAIL_FAST_COMMAND_MS } : {}),
  });
}

/** Options for a duplicate of a fail-fast connection that must wait through outages (BullMQ workers, blocking reads). */
export const PATIENT: { enableOfflineQueue: true; commandTimeout: undefined } = {
  enableOfflineQueue: true,
  commandTimeout: undefined,
};

/** Resolves once the connection is ready for commands. */
export async function redisReady(redis: Redis): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('Redis did not become ready within 10 s')), 10_000);
    redis.once('ready', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

/** Whether an error means Redis could not be reached or did not answer in time. */
export function isRedisUnavailable(e: unknown): boolean {
  return /ECONNREFUSED|Connection is closed|max retries|ETIMEDOUT|Stream isn't writeable|Command timed out/i.test(
    (e as Error)?.message ?? '',
  );
}

/** Whether a Redis answers PING at the URL within the timeout. */
export async function redisAnswers(url: string, timeoutMs = 1500): Promise<boolean> {
  const r = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

/** How to get Redis, for messages. */
export const REDIS_HELP =
  'install and start Redis (Debian/Ubuntu: `sudo apt-get install -y redis-server`), or set REDIS_URL to a running one';

/** Key layout of the relay in Redis; every key starts with the configured prefix. */
export class Keys {
  constructor(readonly prefix: string) {}
  /** App registry: hash sdkAppId → JSON {secretKey, name}. */
  apps(): string {
    return `${this.prefix}:apps`;
  }
  /** Accounts: hash accountId → JSON Account. */
  accounts(): string {
    return `${this.prefix}:accounts`;
  }
  /** Channels (live and retained) counted against an account's limit. */
  accountChannels(accountId: string): string {
    return `${this.prefix}:account-channels:${accountId}`;
  }
  /** The boot marker: an id set once per deployment; missing or changed means Redis lost its data (BootMarker). */
  boot(): string {
    return `${this.prefix}:boot`;
  }
  /** Shared internal secret used to sign worker publishes and ingest reads. */
  internalSecret(): string {
    return `${this.prefix}:internal-secret`;
  }
  /** Hash of a room's upstreams: `${userId}:${srcType}` → JSON Upstream. */
  room(sdkAppId: string, roomId: number): string {
    return `${this.prefix}:room:${sdkAppId}:${roomId}`;
  }
  /** Set of room keys (`${sdkAppId}:${roomId}`) that have at least one upstream. */
  rooms(): string {
    return `${this.prefix}:rooms`;
  }
  /** Hash of the cluster's media nodes: node → JSON NodeBeat (cluster/nodes.ts). */
  mediaNodes(): string {
    return `${this.prefix}:media-nodes`;
  }
  /** Hash channelId → media node, of every channel holding its slots (cluster/placement.ts). */
  placements(): string {
    return `${this.prefix}:placements`;
  }
  /** The all-in-one relay's claim on this prefix: JSON Instance, with an expiry (PrefixClaim). */
  allInOne(): string {
    return `${this.prefix}:all-in-one`;
  }
  /** Channel record (JSON). */
  channel(channelId: string): string {
    return `${this.prefix}:channel:${channelId}`;
  }
  /** Short lock serialising changes of a channel's push targets across API processes (PushTargetControl). */
  targetsLock(channelId: string): string {
    return `${this.prefix}:channel:${channelId}:targets-lock`;
  }
  /** Short lock serialising the layout updates of a mix across API processes (MixService). */
  mixLock(channelId: string): string {
    return `${this.prefix}:channel:${channelId}:mix-lock`;
  }
  /** Set of channel ids not yet stopped (starting, live, stopping). */
  activeChannels(): string {
    return `${this.prefix}:channels:active`;
  }
  /** Sorted set of interrupted channels by the time their retention ends. */
  retainedChannels(): string {
    return `${this.prefix}:channels:retained`;
  }
  /** The active channel of one upstream (for 40000415). */
  upstreamChannel(sdkAppId: string, roomId: number, userId: string, srcType: number): string {
    return `${this.prefix}:upstream-channel:${sdkAppId}:${roomId}:${srcType}:${userId}`;
  }
  /** Set of the active channels of one room (at most maxChannelsPerRoom). */
  roomChannels(sdkAppId: string, roomId: number): string {
    return `${this.prefix}:room-channels:${sdkAppId}:${roomId}`;
  }
  /** Start rate limit of one user (SPEC: same user within 3 s → 40000500). */
  startRateLimit(sdkAppId: string, roomId: number, userId: string): string {
    return `${this.prefix}:start-rl:${sdkAppId}:${roomId}:${userId}`;
  }
  /** Counter of watermark ids. */
  watermarkSeq(): string {
    return `${this.prefix}:watermark-seq`;
  }
  /** Hash of an app's watermarks: id → JSON Watermark. */
  watermarks(sdkAppId: string): string {
    return `${this.prefix}:watermarks:${sdkAppId}`;
  }
  /** Counter of record task ids. */
  recordTaskSeq(): string {
    return `${this.prefix}:record-task-seq`;
  }
  /** A record task (JSON RecordTask). */
  recordTask(taskId: number): string {
    return `${this.prefix}:record-task:${taskId}`;
  }
  /** Callback URLs of apps: sdkAppId → URL. */
  webhooks(): string {
    return `${this.prefix}:webhooks`;
  }
  /** Hash of worker heartbeats: workerId → JSON WorkerHeartbeat. */
  workers(): string {
    return `${this.prefix}:workers`;
  }
  /** Pub/sub channel of channel state events (JSON ChannelEvent). */
  events(): string {
    return `${this.prefix}:events`;
  }
  /**
   * Pub/sub channel of media facts (JSON MediaEvent): a channel's first keyframe, a member publishing into the ingest.
   */
  media(): string {
    return `${this.prefix}:media`;
  }
  /** Pub/sub channel of control commands to workers (JSON ControlMessage). */
  control(): string {
    return `${this.prefix}:control`;
  }
}
