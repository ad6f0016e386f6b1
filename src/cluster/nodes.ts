/**
 * The media nodes of a cluster. Every media process (`npm run media`, or one of `npm run relay`'s) is a *node*: it
 * announces where workers and players reach it and what it carries, every NODE_BEAT_MS, in one Redis hash. Placement
 * (placement.ts) reads the beats to put each channel on the node with the most headroom; the media nodes read them to
 * send a viewer to the node that holds its channel; workers read them to publish there.
 */
import type { Redis } from 'ioredis';
import type { Keys } from '../redis/index.js';
import type { Instance } from './instance.js';

/** A media node's heartbeat is this old at most while it lives (it beats every NODE_BEAT_MS). */
export const NODE_STALE_MS = 6_000;
export const NODE_BEAT_MS = 2_000;

/** What a media node carries, as measured over its last beat interval. */
export interface NodeLoad {
  /** Channels publishing into it (a channel's tiers count once). */
  channels: number;
  /** Connected RTMP, HTTP-FLV and WS-FLV viewers (HLS viewers are requests, not connections). */
  viewers: number;
  /** Sent to viewers, kbit/s. */
  egressKbps: number;
  /** The node process's CPU, in cores (one Node process uses one core at most). */
  cpu: number;
}

/** A media node as it announces itself. */
export interface NodeBeat {
  node: string;
  instance: string;
  seenAt: number;
  /** Host workers reach its RTMP port at (publishes, ingest reads); absent: each worker's RELAY_MEDIA_INTERNAL_HOST. */
  internalHost?: string;
  /** Host players are sent to (FLV redirects, RTMP play URLs); absent: the cluster's RELAY_PUBLIC_HOST. */
  publicHost?: string;
  rtmpPort?: number;
  httpPort?: number;
  /** Channels it takes at most (RELAY_NODE_MAX_CHANNELS). */
  maxChannels?: number;
  load?: NodeLoad;
}

/** Where a node is reached: host and ports. */
export interface NodeEndpoint {
  host: string;
  rtmpPort: number;
  httpPort: number;
}

/** Where workers reach `beat` (its internal host, else `fallback`'s host; its ports, else `fallback`'s). */
export function internalEndpoint(beat: NodeBeat | null | undefined, fallback: NodeEndpoint): NodeEndpoint {
  return {
    host: beat?.internalHost ?? fallback.host,
    rtmpPort: beat?.rtmpPort ?? fallback.rtmpPort,
    httpPort: beat?.httpPort ?? fallback.httpPort,
  };
}

/** Where players reach `beat` (its public host, else `fallback`'s host; its ports, else `fallback`'s). */
export function publicEndpoint(beat: NodeBeat | null | undefined, fallback: NodeEndpoint): NodeEndpoint {
  return {
    host: beat?.publicHost ?? fallback.host,
    rtmpPort: beat?.rtmpPort ?? fallback.rtmpPort,
    httpPort: beat?.httpPort ?? fallback.httpPort,
  };
}

const FORGET = `local raw = redis.call('hget', KEYS[1], ARGV[1])
if raw and tostring(cjson.decode(raw).seenAt) == ARGV[2] then return redis.call('hdel', KEYS[1], ARGV[1]) end
return 0`;

/**
 * The media nodes of a cluster: a hash node → NodeBeat, refreshed every NODE_BEAT_MS while the node lives and
 * removed when it closes. A node is alive while its beat is younger than NODE_STALE_MS.
 */
export class MediaNodes {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  /** Announces `node` now and every NODE_BEAT_MS until `stop`; `describe` adds its addresses and load at each beat. */
  async beat(node: string, instance: Instance, describe: () => Partial<NodeBeat> = () => ({})): Promise<void> {
    const once = () =>
      this.redis.hset(
        this.keys.mediaNodes(),
        node,
        JSON.stringify({ ...describe(), node, instance: instance.id, seenAt: Date.now() } satisfies NodeBeat),
      );
    await once();
    this.timer = setInterval(() => void once().catch(() => undefined), NODE_BEAT_MS);
    this.timer.unref();
  }

  /** Stops beating and removes the node's entry. */
  async stop(node: string): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.redis.hdel(this.keys.mediaNodes(), node).catch(() => undefined);
  }

  /** The beats that are fresh at `now`. */
  async list(now = Date.now()): Promise<NodeBeat[]> {
    const all = await this.redis.hvals(this.keys.mediaNodes());
    return all.map((raw) => JSON.parse(raw) as NodeBeat).filter((b) => now - b.seenAt < NODE_STALE_MS);
  }

  /** The nodes whose beat is fresh at `now`. */
  async alive(now = Date.now()): Promise<Set<string>> {
    return new Set((await this.list(now)).map((b) => b.node));
  }

  /**
   * Removes `beat` when it is still the node's latest: a node found refusing connections (killed a moment ago) is
   * placed on no more; a node that lives announces itself again at its next beat.
   */
  async forget(beat: NodeBeat): Promise<void> {
    await this.redis.eval(FORGET, 1, this.keys.mediaNodes(), beat.node, String(beat.seenAt));
  }

  /** `node`'s beat when it is fresh at `now`; else null. */
  async get(node: string, now = Date.now()): Promise<NodeBeat | null> {
    const raw = await this.redis.hget(this.keys.mediaNodes(), node);
    const beat = raw ? (JSON.parse(raw) as NodeBeat) : null;
    return beat && now - beat.seenAt < NODE_STALE_MS ? beat : null;
  }
}

/** How many media nodes of the cluster are alive now (for readiness checks). */
export const liveMediaNodes = (redis: Redis, keys: Keys) => async (): Promise<number> =>
  (await new MediaNodes(redis, keys).alive()).size;
