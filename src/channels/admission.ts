import type { Redis } from 'ioredis';
import type { Keys } from '../redis/index.js';
import { RelayError } from '../errors/index.js';
import { SRC_TYPE_NAMES, type SrcType } from '../rooms/model.js';
import type { WorkerHeartbeat } from '../queue/heartbeat.js';
import type { Account } from '../tenants/accounts.js';
import type { Admission } from './records.js';
import type { PlayUrl, PushTarget, ResolvedPushOption } from './types.js';

/*
 * The admission rules of a start, apart from the order PushService.start applies them in (SPEC "Quota", "Error codes").
 */

/** A validated start request. */
export interface StartRequest {
  roomId: number;
  userId: string;
  srcType: SrcType;
  option: ResolvedPushOption;
  /** Viewers must present it; only its hash is stored. */
  channelPassword?: string;
  /** External destinations, already checked (targets/check.ts). */
  pushTargets?: PushTarget[];
}

/** The answer of a successful start. */
export interface StartResult {
  channelId: string;
  urls: PlayUrl[];
  recordTaskId?: number;
}

/** The per-id answer of a stop. */
export interface StopResult {
  channelId: string;
  code: number;
  message: string;
}

/** The start rate limit (SPEC: the same user within the window → 40000500). */
export interface StartRateLimit {
  /** Takes the user's start slot for `windowMs`; answers the ms left when the slot is taken, else null. */
  take(sdkAppId: string, roomId: number, userId: string, windowMs: number): Promise<number | null>;
}

/** The start rate limit in Redis: one key per user that expires with the window. */
export function redisStartRateLimit(redis: Redis, keys: Keys): StartRateLimit {
  return {
    async take(sdkAppId, roomId, userId, windowMs) {
      const key = keys.startRateLimit(sdkAppId, roomId, userId);
      if ((await redis.set(key, '1', 'PX', windowMs, 'NX')) !== null) return null;
      return Math.max(0, await redis.pttl(key));
    },
  };
}

/**
 * CPU-cost admission at the edge: refuses (50005) at once when no worker has room for a channel of `cost` cores, rather
 * than degrade running channels. A worker with no channel takes any one; a worker at its concurrency takes none.
 */
export function assertWorkerRoom(workers: readonly WorkerHeartbeat[], cost: number): void {
  if (workers.length === 0)
    throw new RelayError(50005, 'no worker is running', { hint: 'start a worker (npm run worker), then retry' });
  const best = Math.max(
    ...workers.map((w) =>
      w.channels >= w.concurrency ? -Infinity : w.channels === 0 ? Infinity : w.capacity - w.load,
    ),
  );
  if (best + 1e-9 < cost) {
    throw new RelayError(
      50005,
      `no worker has room for this channel: it needs ${cost} cores, the most any worker has free is ${Math.max(0, best).toFixed(2)}`,
      {
        hint: 'retry after some channels stop, add workers, or ask for fewer or lower tiers',
        details: { cost },
      },
    );
  }
}

/**
 * Admission of a running channel that grows by `increase` cores (a mix given more members): the worker that runs it
 * (`workerId`) must have that much free, unless the channel is alone there (a worker always fits one). A channel not
 * placed yet (or whose worker did not report) is admitted as a start of `cost` cores. Refuses with a start's 50005.
 */
export function assertRoomToGrow(
  workers: readonly WorkerHeartbeat[],
  workerId: string | undefined,
  increase: number,
  cost: number,
): void {
  if (increase <= 1e-9) return;
  const w = workers.find((x) => x.workerId === workerId);
  if (!w) return assertWorkerRoom(workers, cost);
  const free = w.capacity - w.load;
  if (w.channels <= 1 || free + 1e-9 >= increase) return;
  throw new RelayError(
    50005,
    `no room on worker ${w.workerId} for this change: it needs ${increase} more cores, the worker has ${Math.max(0, free).toFixed(2)} free`,
    {
      hint: 'retry after some channels stop, add workers, or ask for fewer or lower tiers',
      details: { cost, increase },
    },
  );
}

/** The SPEC refusal of an admission that did not admit (the caller resumes a `resumable` channel instead). */
export function admissionRefusal(
  a: Extract<Admission, { ok: false }>,
  req: {
    roomId: number;
    userId: string;
    srcType: SrcType;
    account: Pick<Account, 'accountId' | 'channelLimit'>;
    maxPerRoom: number;
  },
): RelayError {
  if (a.reason === 'account-full') {
    return new RelayError(
      20101,
      `account ${req.account.accountId} has reached its limit of ${req.account.channelLimit} channels (live and retained, all its apps)`,
      {
        hint: "stop unused channels or raise the account's channel limit",
      },
    );
  }
  if (a.reason === 'room-full')
    return new RelayError(20101, `room ${req.roomId} already has ${req.maxPerRoom} bypass channels`, {
      hint: "stop one of the room's channels first",
    });
  const channelId = 'channelId' in a ? a.channelId : '';
  return new RelayError(
    40000415,
    `upstream ${req.userId}/${SRC_TYPE_NAMES[req.srcType]} is already pushing on channel ${channelId}`,
    { details: { channelId } },
  );
}
