import type { Redis } from 'ioredis';
import type { Keys } from '../redis/index.js';
import { isIngestMember, type SrcType, type Upstream, type UpstreamStats } from './model.js';

const field = (userId: string, srcType: SrcType) => `${userId}:${srcType}`;

/** The upstreams of every room, kept in Redis (SPEC "Room upstreams"). A room exists while it has one. */
export class RoomRegistry {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  /** Adds or replaces an upstream. */
  async register(u: Upstream): Promise<void> {
    await this.redis
      .multi()
      .hset(this.keys.room(u.sdkAppId, u.roomId), field(u.userId, u.srcType), JSON.stringify(u))
      .sadd(this.keys.rooms(), `${u.sdkAppId}:${u.roomId}`)
      .exec();
  }

  /**
   * Removes an upstream; when `source` is given only an upstream of that source is removed, and when `node` is given
   * only one registered by that media node (or by none). Returns whether one was.
   */
  async remove(
    sdkAppId: string,
    roomId: number,
    userId: string,
    srcType: SrcType,
    source?: Upstream['source'],
    node?: string,
  ): Promise<boolean> {
    const key = this.keys.room(sdkAppId, roomId);
    if (source) {
      const cur = await this.get(sdkAppId, roomId, userId, srcType);
      if (!cur || cur.source !== source || (node !== undefined && cur.node !== undefined && cur.node !== node))
        return false;
    }
    const removed = await this.redis.hdel(key, field(userId, srcType));
    if ((await this.redis.hlen(key)) === 0) await this.redis.srem(this.keys.rooms(), `${sdkAppId}:${roomId}`);
    return removed > 0;
  }

  /** Stores the ingest's live figures of a member, if it is still registered from the ingest (RTMP or WHIP). */
  async updateStats(
    k: Pick<Upstream, 'sdkAppId' | 'roomId' | 'userId' | 'srcType'>,
    stats: UpstreamStats,
  ): Promise<void> {
    const cur = await this.get(k.sdkAppId, k.roomId, k.userId, k.srcType);
    if (!isIngestMember(cur)) return;
    await this.redis.hset(
      this.keys.room(k.sdkAppId, k.roomId),
      field(k.userId, k.srcType),
      JSON.stringify({ ...cur, stats }),
    );
  }

  /** One upstream, or null. */
  async get(sdkAppId: string, roomId: number, userId: string, srcType: SrcType): Promise<Upstream | null> {
    const raw = await this.redis.hget(this.keys.room(sdkAppId, roomId), field(userId, srcType));
    return raw ? (JSON.parse(raw) as Upstream) : null;
  }

  /** The upstreams of a room, ordered by userId then srcType; empty when the room does not exist. */
  async list(sdkAppId: string, roomId: number): Promise<Upstream[]> {
    const all = await this.redis.hvals(this.keys.room(sdkAppId, roomId));
    return all
      .map((r) => JSON.parse(r) as Upstream)
      .sort((a, b) => a.userId.localeCompare(b.userId) || a.srcType - b.srcType);
  }

  /**
   * Removes the ingest-registered upstreams (RTMP or WHIP) `stale` picks, of every app (a media node starting: its own from its
   * previous run, and those of nodes that are gone); returns how many.
   */
  async removeStaleIngest(stale: (u: Upstream) => boolean): Promise<number> {
    let n = 0;
    for (const room of await this.redis.smembers(this.keys.rooms())) {
      const [sdkAppId, roomId] = room.split(':') as [string, string];
      for (const u of await this.list(sdkAppId, Number(roomId))) {
        if (!isIngestMember(u) || !stale(u)) continue;
        if (await this.remove(u.sdkAppId, u.roomId, u.userId, u.srcType, u.source, u.node)) n++;
      }
    }
    return n;
  }

  /** Room ids of an app that have upstreams. */
  async rooms(sdkAppId: string): Promise<number[]> {
    const all = await this.redis.smembers(this.keys.rooms());
    return all
      .filter((r) => r.startsWith(`${sdkAppId}:`))
      .map((r) => Number(r.split(':')[1]))
      .sort((a, b) => a - b);
  }
}
