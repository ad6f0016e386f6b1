import { Redis } from 'ioredis';

/** Opens an ioredis connection suited to BullMQ (no per-command retry limit, reconnects forever). */
export function connectRedis(url: string, name: string): Redis {
  return new Redis(url, {
    connectionName: name,
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    retryStrategy: (times) => Math.min(times * 200, 2000),
  });
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
  /** Channel record (JSON). */
  channel(channelId: string): string {
    return `${this.prefix}:channel:${channelId}`;
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
