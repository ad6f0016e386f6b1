import os from 'node:os';

/** Defaults of the cluster settings (README "Scaling out"). */
export const CLUSTER_DEFAULTS = {
  /** Channels one media node takes (a Node process serves them on one core: 160 copy channels kept real time). */
  RELAY_NODE_MAX_CHANNELS: 150,
  /** Media nodes `npm run relay` runs: one per core. */
  RELAY_MEDIA_NODES: os.availableParallelism(),
} as const;

/** How this process takes part in a cluster of media nodes. */
export interface ClusterConfig {
  /** Host workers reach this media node at (RELAY_NODE_HOST); null: each worker's RELAY_MEDIA_INTERNAL_HOST. */
  nodeHost: string | null;
  /**
   * Host players are sent to for this node (RELAY_NODE_PUBLIC_HOST), with its own ports; null: the cluster's
   * RELAY_PUBLIC_HOST (RTMP play URLs then carry the API's RELAY_RTMP_PORT, as with one media server).
   */
  nodePublicHost: string | null;
  /** Channels a media node takes (RELAY_NODE_MAX_CHANNELS); placement refuses (50005) when every node has this many. */
  nodeMaxChannels: number;
  /** Media nodes of `npm run relay` (RELAY_MEDIA_NODES), on consecutive RTMP and HTTP ports. */
  mediaNodes: number;
}

type Env = Record<string, string | undefined>;
type Fail = (variable: string, detail: string) => Error;

const HOST = /^[A-Za-z0-9.\-:[\]]+$/;

/** Reads the cluster settings; `fail` makes the error naming a bad variable. */
export function clusterConfig(env: Env, fail: Fail): ClusterConfig {
  const host = (name: string): string | null => {
    const v = env[name]?.trim();
    if (!v) return null;
    if (!HOST.test(v)) throw fail(name, `must be a host name or IP address, got ${JSON.stringify(v)}`);
    return v;
  };
  const count = (name: keyof typeof CLUSTER_DEFAULTS, max: number): number => {
    const raw = env[name]?.trim();
    if (!raw) return CLUSTER_DEFAULTS[name];
    if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > max)
      throw fail(name, `must be an integer between 1 and ${max}, got ${JSON.stringify(raw)}`);
    return Number(raw);
  };
  const nodeHost = host('RELAY_NODE_HOST');
  return {
    nodeHost,
    nodePublicHost: host('RELAY_NODE_PUBLIC_HOST'),
    nodeMaxChannels: count('RELAY_NODE_MAX_CHANNELS', 100_000),
    mediaNodes: count('RELAY_MEDIA_NODES', 64),
  };
}
