import { HLS_ROUTE, LIVE_APP, parseStreamName } from '../channels/urls.js';
import { bestFirst } from '../channels/tiers.js';
import { CHANNEL_ID_SOURCE, RATE_TYPE_SOURCE, type RateType } from '../channels/types.js';

const FLV_PATH = new RegExp(`^/${LIVE_APP}/([A-Za-z0-9_-]{1,64})\\.flv$`);
const HLS_PATH = new RegExp(`^${HLS_ROUTE}/(${CHANNEL_ID_SOURCE})/(?:(r${RATE_TYPE_SOURCE})/)?([A-Za-z0-9_.-]{1,64})$`);
const STATUS_PATH = new RegExp(`^/status/(${CHANNEL_ID_SOURCE})$`);

/** What a request path asks the media server for. */
export type MediaRoute =
  | { kind: 'malformed' }
  | { kind: 'healthz' }
  | { kind: 'livez' }
  | { kind: 'readyz' }
  | { kind: 'metrics' }
  | { kind: 'player-redirect' }
  | { kind: 'player'; file: string }
  | { kind: 'publisher-redirect' }
  | { kind: 'publisher'; file: string }
  | { kind: 'status'; channelId: string }
  /** `rateType`: the tier folder asked for (`r<rateType>/`), null for the channel's own folder. */
  | { kind: 'hls'; channelId: string; dir: string; file: string; rateType: RateType | null }
  /** `channelId` null: an FLV-shaped name that is no channel's stream; `rateType` null: the unsuffixed name. */
  | { kind: 'flv'; channelId: string | null; rateType: RateType | null }
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
  if (url === '/livez') return { kind: 'livez' };
  if (url === '/readyz') return { kind: 'readyz' };
  if (url === '/metrics') return { kind: 'metrics' };
  if (url === '/player') return { kind: 'player-redirect' };
  if (url.startsWith('/player/')) return { kind: 'player', file: url.slice('/player/'.length) };
  if (url === '/publish') return { kind: 'publisher-redirect' };
  if (url.startsWith('/publish/')) return { kind: 'publisher', file: url.slice('/publish/'.length) };
  const status = STATUS_PATH.exec(url);
  if (status) return { kind: 'status', channelId: status[1]! };
  const hls = HLS_PATH.exec(url);
  if (hls) {
    const [, channelId, tierDir, file] = hls as unknown as [string, string, string | undefined, string];
    const rateType = tierDir ? (Number(tierDir.slice(1)) as RateType) : null;
    return { kind: 'hls', channelId, dir: tierDir ? `${channelId}/${tierDir}` : channelId, file, rateType };
  }
  const flv = FLV_PATH.exec(url);
  if (flv) {
    const stream = parseStreamName(flv[1]!);
    return { kind: 'flv', channelId: stream?.channelId ?? null, rateType: stream?.rateType ?? null };
  }
  return { kind: 'not-found' };
}

/** The channel a WS-FLV upgrade asks for; null when its URL is not a channel's FLV stream. */
export function upgradeChannelOf(rawUrl: string | undefined): string | null {
  const route = routeOf(rawUrl);
  return route.kind === 'flv' ? route.channelId : null;
}

/**
 * The live stream (name under the live application) that a play of the channel's unsuffixed name `live/{channelId}`
 * (RTMP, HTTP-FLV, WS-FLV) is served from: the channel's own stream, or with several tiers its best one — ORIGINAL,
 * else the highest bitrate (`bestFirst`), the tier the master playlist lists first — since a tiered channel publishes
 * only `live/{channelId}_r{rateType}`.
 */
export function unsuffixedStream(channelId: string, rateTypes: readonly RateType[]): string {
  return rateTypes.length > 1 ? `${channelId}_r${bestFirst(rateTypes)[0]}` : channelId;
}

/** A channel record's tiers; none when the record has no options (a record the relay did not write whole). */
export function tiersOf(ch: { option?: { rateTypes?: readonly RateType[] } }): readonly RateType[] {
  return ch.option?.rateTypes ?? [];
}

/** `rawUrl` with its FLV stream name replaced by `stream` (the query kept): `/live/<stream>.flv[?query]`. */
export function withFlvStream(rawUrl: string, stream: string): string {
  const q = rawUrl.indexOf('?');
  return `/${LIVE_APP}/${stream}.flv${q < 0 ? '' : rawUrl.slice(q)}`;
}
