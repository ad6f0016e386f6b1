/**
 * Placement of channels on media nodes. A channel is placed when it is started (by the API, next to CPU-cost admission
 * of workers) and placed again by its worker when its node is gone; the channel record names its node (`mediaNode`)
 * and the placements hash (channelId → node) counts what each node was given before its beat shows it. An entry goes
 * with the channel's slots (ChannelStore.release).
 */
import type { Redis } from 'ioredis';
import type { Keys } from '../redis/index.js';
import { RelayError } from '../errors/index.js';
import type { MediaNodes, NodeBeat } from './nodes.js';

/** A node process this busy (cores) takes no new channel: its one event loop serves every viewer of its channels. */
export const NODE_CPU_FULL = 0.9;

/**
 * Chooses and records a channel's node in one step, so that simultaneous starts (and the moves of every channel of a
 * lost node) spread instead of all taking the node that had the most room when each looked. The headroom of a node
 * is its channel room (channels placed on it or publishing into it, whichever is more, against its maxChannels); a
 * node at NODE_CPU_FULL takes none. The most headroom wins, then fewer placed, then the name. CPU is a gate, not a
 * score: it is measured a beat (2 s) behind, so ranking by it sends a burst of starts all to the node that was idle.
 * A move does not count the channel's own entry. KEYS: placements hash; ARGV: channelId, NODE_CPU_FULL, then per
 * candidate node: name, maxChannels, channels publishing, cpu. Returns the node, or nil when none has room.
 */
const PLACE = `local counts = {}
for _, n in ipairs(redis.call('hvals', KEYS[1])) do counts[n] = (counts[n] or 0) + 1 end
local own = redis.call('hget', KEYS[1], ARGV[1])
if own then counts[own] = counts[own] - 1 end
local full = tonumber(ARGV[2])
local best, bestRoom, bestN = nil, 0, 0
for i = 3, #ARGV, 4 do
  local node, max = ARGV[i], tonumber(ARGV[i + 1])
  local n = counts[node] or 0
  local room = 1 - math.max(n, tonumber(ARGV[i + 2])) / max
  if room > 0 and tonumber(ARGV[i + 3]) < full and (best == nil or room > bestRoom + 1e-9 or
      (math.abs(room - bestRoom) <= 1e-9 and (n < bestN or (n == bestN and node < best)))) then
    best, bestRoom, bestN = node, room, n
  end
end
if best then redis.call('hset', KEYS[1], ARGV[1], best) end
return best`;

const RELEASE = `if redis.call('hget', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('hdel', KEYS[1], ARGV[1]) end
return 0`;

/** Placement over the cluster's live media nodes. */
export class Placement {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly nodes: Pick<MediaNodes, 'list'>,
    /** Channels a node takes when its beat does not say (RELAY_NODE_MAX_CHANNELS). */
    private readonly defaultMax: number,
  ) {}

  /**
   * Places `channelId` on the live node with the most headroom, not one of `exclude`, and records it (see PLACE).
   * Resolves null when no media node beats at all — one media server restarting, or Redis that lost the beats a
   * moment ago: the channel runs unplaced, on RELAY_MEDIA_INTERNAL_HOST, as before there were nodes. Throws 50005
   * when every node is full.
   */
  async place(channelId: string, exclude: ReadonlySet<string> = new Set()): Promise<NodeBeat | null> {
    const beats = (await this.nodes.list()).filter((b) => !exclude.has(b.node));
    if (beats.length === 0) return null;
    const args = beats.flatMap((b) => [
      b.node,
      b.maxChannels ?? this.defaultMax,
      b.load?.channels ?? 0,
      b.load?.cpu ?? 0,
    ]);
    const node = (await this.redis.eval(PLACE, 1, this.keys.placements(), channelId, NODE_CPU_FULL, ...args)) as
      string | null;
    if (node === null)
      throw new RelayError(
        50005,
        `no media node has room for this channel: each of the ${beats.length} alive is at its channel or CPU limit`,
        { hint: 'retry after some channels stop, or add media nodes (RELAY_NODE_MAX_CHANNELS sets a node’s share)' },
      );
    return beats.find((b) => b.node === node)!;
  }

  /** Forgets `channelId`'s placement (on `node` only, when given: a newer placement stays). */
  async release(channelId: string, node?: string): Promise<void> {
    if (node === undefined) await this.redis.hdel(this.keys.placements(), channelId);
    else await this.redis.eval(RELEASE, 1, this.keys.placements(), channelId, node);
  }
}
