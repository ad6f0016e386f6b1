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
 * How much room `beat` has, from 1 (idle) down; 0 or less: full. The lower of its channel room (channels placed on
 * it or publishing into it, whichever is more, against its `maxChannels`, else `defaultMax`) and its CPU room (against
 * NODE_CPU_FULL).
 */
export function headroom(beat: NodeBeat, placed: number, defaultMax: number): number {
  const max = beat.maxChannels ?? defaultMax;
  const channels = Math.max(placed, beat.load?.channels ?? 0);
  const byCpu = (NODE_CPU_FULL - (beat.load?.cpu ?? 0)) / NODE_CPU_FULL;
  return Math.min(1 - channels / max, byCpu);
}

/** The node with the most headroom among `beats` not in `exclude` (ties: fewer placed, then by name); null: all full. */
export function chooseNode(
  beats: readonly NodeBeat[],
  placed: ReadonlyMap<string, number>,
  defaultMax: number,
  exclude: ReadonlySet<string> = new Set(),
): NodeBeat | null {
  let best: { beat: NodeBeat; room: number; n: number } | null = null;
  for (const beat of beats) {
    if (exclude.has(beat.node)) continue;
    const n = placed.get(beat.node) ?? 0;
    const room = headroom(beat, n, defaultMax);
    if (room <= 0) continue;
    if (
      !best ||
      room > best.room + 1e-9 ||
      (Math.abs(room - best.room) <= 1e-9 && (n < best.n || beat.node < best.beat.node))
    )
      best = { beat, room, n };
  }
  return best?.beat ?? null;
}

/** Placement over the cluster's live media nodes. */
export class Placement {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly nodes: Pick<MediaNodes, 'list'>,
    /** Channels a node takes when its beat does not say (RELAY_NODE_MAX_CHANNELS). */
    private readonly defaultMax: number,
  ) {}

  /** Channels placed per node. */
  async placedCounts(): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    for (const node of await this.redis.hvals(this.keys.placements())) counts.set(node, (counts.get(node) ?? 0) + 1);
    return counts;
  }

  /**
   * The node a new channel goes to (not yet recorded: `record` does that once it is admitted). Throws 50005 when no
   * media node is alive or every one is full.
   */
  async choose(exclude: ReadonlySet<string> = new Set()): Promise<NodeBeat> {
    const beats = await this.nodes.list();
    if (beats.length === 0)
      throw new RelayError(50005, 'no media node is running', {
        hint: 'start a media node (npm run media), then retry',
      });
    const beat = chooseNode(beats, await this.placedCounts(), this.defaultMax, exclude);
    if (!beat)
      throw new RelayError(
        50005,
        `no media node has room for this channel: every one of the ${beats.length} alive is at its channel or CPU limit`,
        { hint: 'retry after some channels stop, or add media nodes (RELAY_NODE_MAX_CHANNELS sets a node’s share)' },
      );
    return beat;
  }

  /** Records that `channelId` is on `node`. */
  async record(channelId: string, node: string): Promise<void> {
    await this.redis.hset(this.keys.placements(), channelId, node);
  }
}
