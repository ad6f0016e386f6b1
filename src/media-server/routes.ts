import { HLS_ROUTE, LIVE_APP, parseStreamName } from '../channels/urls.js';
import { CHANNEL_ID_SOURCE, RATE_TYPE_SOURCE } from '../channels/types.js';

const FLV_PATH = new RegExp(`^/${LIVE_APP}/([A-Za-z0-9_-]{1,64})\\.flv$`);
const HLS_PATH = new RegExp(`^${HLS_ROUTE}/(${CHANNEL_ID_SOURCE})/(?:(r${RATE_TYPE_SOURCE})/)?([A-Za-z0-9_.-]{1,64})$`);
const STATUS_PATH = new RegExp(`^/status/(${CHANNEL_ID_SOURCE})$`);

/** What a request path asks the media server for. */
export type MediaRoute =
  | { kind: 'malformed' }
  | { kind: 'healthz' }
  | { kind: 'metrics' }
  | { kind: 'player-redirect' }
  | { kind: 'player'; file: string }
  | { kind: 'status'; channelId: string }
  | { kind: 'hls'; channelId: string; dir: string; file: string }
  /** `channelId` null: an FLV-shaped name that is no channel's stream. */
  | { kind: 'flv'; channelId: string | null }
  | { kind: 'not-found' };

/** The path of a request URL when it is well-formed (no query, only `[A-Za-z0-9_.-/]`, no `..`); null otherwise. */
export function parsePath(raw: string | undefined): string | null {
  if (!raw || raw.length > 2048 || raw[0] !== '/') return null;
  const q = raw.indexOf('?');
  const p = q >= 0 ? raw.slice(0, q) : raw;
  return /^[A-Za-z0-9_.\-/]*$/.test(p) && !p.includes('..') ? p : null;
}

/** The route a request URL maps to (the query is ignored). */
export function routeOf(rawUrl: string | undefined): MediaRoute {
  const url = parsePath(rawUrl);
  if (url === null) return { kind: 'malformed' };
  if (url === '/healthz') return { kind: 'healthz' };
  if (url === '/metrics') return { kind: 'metrics' };
  if (url === '/player') return { kind: 'player-redirect' };
  if (url.startsWith('/player/')) return { kind: 'player', file: url.slice('/player/'.length) };
  const status = STATUS_PATH.exec(url);
  if (status) return { kind: 'status', channelId: status[1]! };
  const hls = HLS_PATH.exec(url);
  if (hls) {
    const [, channelId, tierDir, file] = hls as unknown as [string, string, string | undefined, string];
    return { kind: 'hls', channelId, dir: tierDir ? `${channelId}/${tierDir}` : channelId, file };
  }
  const flv = FLV_PATH.exec(url);
  if (flv) return { kind: 'flv', channelId: parseStreamName(flv[1]!)?.channelId ?? null };
  return { kind: 'not-found' };
}

/** The channel a WS-FLV upgrade asks for; null when its URL is not a channel's FLV stream. */
export function upgradeChannelOf(rawUrl: string | undefined): string | null {
  const route = routeOf(rawUrl);
  return route.kind === 'flv' ? route.channelId : null;
}
