import net from 'node:net';
import type { RelayConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import type { Channel } from '../channels/types.js';
import type { ChannelLifecycle } from '../channels/lifecycle.js';
import { movedTo } from '../channels/urls.js';
import type { RoomRegistry } from '../rooms/registry.js';
import type { Upstream } from '../rooms/model.js';
import { internalEndpoint, type MediaNodes, type NodeEndpoint } from '../cluster/nodes.js';
import type { Placement } from '../cluster/placement.js';
import type { MediaAt } from './plan.js';

/** What a run needs to find, and change, its channel's media node. */
export interface RunNodeDeps {
  config: Pick<RelayConfig, 'mediaInternalHost' | 'rtmpPort' | 'httpPort' | 'publicHost'>;
  nodes: Pick<MediaNodes, 'get' | 'forget'>;
  placement: Pick<Placement, 'place' | 'release'>;
  lifecycle: Pick<ChannelLifecycle, 'patchRun'>;
  rooms: Pick<RoomRegistry, 'get'>;
  log: Logger;
}

/** A media node that does not accept a TCP connection within this time is taken for gone. */
const PROBE_MS = 1000;

/**
 * The media node a run publishes into: the one its channel record names while that node lives, else a new placement
 * (the node with the most headroom, cluster/placement.ts), recorded in the channel (`mediaNode`, and its RTMP play
 * URLs) before ffmpeg publishes there. A node whose beat is fresh but that refuses connections after a failed attempt
 * (killed a moment ago) is left at once rather than after its beat goes stale. Without media node beats (one media
 * server), the run publishes to RELAY_MEDIA_INTERNAL_HOST as before.
 */
export class RunNode {
  private node: string | undefined;
  private at: NodeEndpoint;
  private readonly fallback: NodeEndpoint;
  private readonly gone = new Set<string>();

  constructor(
    private readonly d: RunNodeDeps,
    private readonly channelId: string,
    private readonly gen: number,
  ) {
    const { mediaInternalHost: host, rtmpPort, httpPort } = d.config;
    this.at = this.fallback = { host, rtmpPort, httpPort };
  }

  /** Where the run publishes now (its push targets read there too). */
  get endpoint(): NodeEndpoint {
    return this.at;
  }

  /**
   * Resolves the node for the next attempt of `ch`: the node must accept a connection (a beat stays fresh for
   * NODE_STALE_MS after its node died); one that does not is forgotten by the cluster. Returns the channel as
   * recorded (moved or not).
   */
  async resolve(ch: Channel): Promise<Channel> {
    const named = this.node ?? ch.mediaNode;
    if (named === undefined) return ch;
    const beat = this.gone.has(named) ? null : await this.d.nodes.get(named);
    const at = beat ? internalEndpoint(beat, this.fallback) : null;
    if (at && (await accepts(at))) {
      this.node = named;
      this.at = at;
      return ch;
    }
    if (beat) await this.d.nodes.forget(beat);
    this.gone.add(named);
    const next = await this.d.placement.place(this.channelId, this.gone).catch((e: Error) => {
      this.d.log.warn({ node: named, err: e.message }, 'media node gone and no other has room: trying it again');
      return null;
    });
    if (!next) {
      this.gone.delete(named);
      return ch;
    }
    // only a channel still running moves (a stop or a newer run meanwhile: its placement is given back)
    const placed = movedTo(ch, next, this.d.config);
    const moved = await this.d.lifecycle.patchRun(this.channelId, this.gen, placed, ['starting', 'live']);
    if (!moved.ok) {
      await this.d.placement.release(this.channelId, next.node);
      return ch;
    }
    this.d.log.warn({ from: named, to: next.node }, 'media node gone: channel moved to another node');
    this.node = next.node;
    this.at = internalEndpoint(next, this.fallback);
    return { ...ch, ...placed };
  }

  /**
   * The nodes of the next attempt of `ch`: where it publishes, resolved as `resolve` does, and where its ingest member
   * is read.
   */
  async attempt(ch: Channel): Promise<Required<MediaAt>> {
    await this.resolve(ch);
    return { publish: this.at, ingest: await this.ingest(ch) };
  }

  /** Where the ingest member `ch` reads is published: the node it registered with, else this run's fallback. */
  async ingest(ch: Channel): Promise<NodeEndpoint> {
    if (ch.input.kind !== 'ingest') return this.fallback;
    return this.memberAt(await this.d.rooms.get(ch.sdkAppId, ch.roomId, ch.userId, ch.srcType));
  }

  /** Where an ingest member publishes: the node its registration names (while it lives), else the fallback. */
  async memberAt(up: Pick<Upstream, 'node'> | null): Promise<NodeEndpoint> {
    const beat = up?.node ? await this.d.nodes.get(up.node) : null;
    return internalEndpoint(beat, this.fallback);
  }
}

/** Whether `at`'s RTMP port accepts a TCP connection within PROBE_MS. */
function accepts(at: NodeEndpoint): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: at.host, port: at.rtmpPort, timeout: PROBE_MS });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.once('connect', () => done(true))
      .once('error', () => done(false))
      .once('timeout', () => done(false));
  });
}
