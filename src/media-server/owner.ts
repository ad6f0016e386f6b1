import net from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CORS_HEADERS } from '../web/http.js';
import type { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Channel } from '../channels/types.js';
import type { ChannelStore } from '../channels/store.js';
import {
  internalEndpoint,
  publicEndpoint,
  type MediaNodes,
  type NodeBeat,
  type NodeEndpoint,
} from '../cluster/nodes.js';

/** What a media node knows of the cluster, to send a viewer to the node that holds its channel. */
export interface ClusterView {
  /** This node's name. */
  self: string;
  nodes: Pick<MediaNodes, 'get'>;
  /** Where a node is reached when its beat does not say: this cluster's internal host and public host, these ports. */
  fallback: { internal: NodeEndpoint; public: NodeEndpoint };
}

/** Where a channel's live streams (RTMP, FLV) are: here, at another live node, or nowhere yet (its node is gone). */
export type Whereabouts = { at: 'here' } | { at: 'node'; beat: NodeBeat } | { at: 'moving' };

/** How often, and how long at most, a viewer of a channel whose node is gone waits for it to be placed again. */
const MOVE_POLL_MS = 250;
export const MOVE_WAIT_MS = 6000;
/** How long a WS-FLV upgrade carried to another node waits for its TCP connection. */
const CONNECT_TIMEOUT_MS = 2000;

/**
 * Where `ch`'s streams are served. A channel whose node is gone is being moved by its worker (a new placement, then a
 * publish there): the record is read again until it names a live node, for MOVE_WAIT_MS at most, so a viewer
 * reconnecting right after a node loss is sent to the new node rather than refused.
 */
export async function whereabouts(
  ch: Channel,
  view: ClusterView | undefined,
  channels: Pick<ChannelStore, 'get'>,
  /** Whether the viewer went away meanwhile (the wait ends). */
  gone: () => boolean = () => false,
): Promise<Whereabouts> {
  if (!view) return { at: 'here' };
  const until = Date.now() + MOVE_WAIT_MS;
  for (let cur: Channel | null = ch; cur; cur = await channels.get(ch.channelId)) {
    const node = cur.mediaNode;
    if (!node || node === view.self) return { at: 'here' };
    const beat = await view.nodes.get(node);
    if (beat) return { at: 'node', beat };
    // no run moves a channel that is not running: its viewer is held here as on its own node, until it ends or runs
    if (cur.state !== 'live' && cur.state !== 'starting') return { at: 'here' };
    if (Date.now() >= until || gone()) break;
    await sleep(MOVE_POLL_MS);
  }
  return { at: 'moving' };
}

/** The URL a player is redirected to: `path` (with its query) at `beat`'s public address. */
export function redirectUrl(beat: NodeBeat, view: ClusterView, path: string): string {
  const ep = publicEndpoint(beat, view.fallback.public);
  return `http://${ep.host.includes(':') ? `[${ep.host}]` : ep.host}:${ep.httpPort}${path}`;
}

/**
 * Carries a WebSocket upgrade to `beat` over TCP (browsers do not follow redirects of an upgrade): the request as it
 * came, then bytes both ways until either side closes.
 */
export function proxyUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, beat: NodeBeat, view: ClusterView) {
  const ep = internalEndpoint(beat, view.fallback.internal);
  const upstream = net.connect(ep.httpPort, ep.host);
  // a node whose host is gone answers nothing: the viewer is let go to reconnect (and be sent to the new node)
  upstream.setTimeout(CONNECT_TIMEOUT_MS, () => upstream.destroy());
  const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`];
  for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
  upstream.once('connect', () => {
    upstream.setTimeout(0);
    upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (head.length) upstream.write(head);
    upstream.pipe(socket).pipe(upstream);
  });
  const end = () => {
    upstream.destroy();
    socket.destroy();
  };
  upstream.once('error', end).once('close', end);
  socket.once('error', end).once('close', end);
}

/** A 302 to where the channel is served (players follow it; the edge passes it on). */
export function redirect(res: ServerResponse, location: string): void {
  res.writeHead(302, { ...CORS_HEADERS, Location: location, 'Cache-Control': 'no-store' });
  res.end();
}
