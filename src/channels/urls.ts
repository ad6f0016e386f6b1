import {
  CHANNEL_ID_SOURCE,
  RATE_TYPE_SOURCE,
  type Channel,
  type Encode,
  type PlayUrl,
  type RateType,
} from './types.js';
import type { NodeBeat } from '../cluster/nodes.js';

/** RTMP application (and FLV path prefix) under which channels are served to viewers. */
export const LIVE_APP = 'live';
/** URL prefix of the HLS folder served by the media server. */
export const HLS_ROUTE = '/hls';

/** Where viewers reach the media server. */
export interface PublicEndpoints {
  publicHost: string;
  httpPort: number;
  rtmpPort: number;
}

/** One output stream of a channel: a rate tier with its stream key and HLS folder. */
export interface ChannelStream {
  rateType: RateType;
  /** Stream name under the live application: the channel id, or `<channelId>_r<rateType>` when it has several tiers. */
  streamName: string;
  /** HLS folder relative to the HLS root: `<channelId>` or `<channelId>/r<rateType>`. */
  hlsDir: string;
}

/** The streams of a channel, one per requested tier, in the order asked. */
export function channelStreams(channelId: string, rateTypes: readonly RateType[]): ChannelStream[] {
  if (rateTypes.length === 1) return [{ rateType: rateTypes[0]!, streamName: channelId, hlsDir: channelId }];
  return rateTypes.map((rateType) => ({
    rateType,
    streamName: `${channelId}_r${rateType}`,
    hlsDir: `${channelId}/r${rateType}`,
  }));
}

const STREAM_NAME = new RegExp(`^(${CHANNEL_ID_SOURCE})(?:_r(${RATE_TYPE_SOURCE}))?$`);

/** Splits a live stream name into its channel id and tier (null for a single-tier channel's stream). */
export function parseStreamName(name: string): { channelId: string; rateType: RateType | null } | null {
  const m = STREAM_NAME.exec(name);
  return m ? { channelId: m[1]!, rateType: m[2] === undefined ? null : (Number(m[2]) as RateType) } : null;
}

/** Whether an encode includes HLS output. */
export function encodeHasHls(encode: Encode): boolean {
  return encode === 1 || encode === 3 || encode === 6;
}

/**
 * The play URLs of a channel: one per (encode × tier). RAW(4) is the stream as the media server relays it, without
 * HLS packaging: RTMP and HTTP-FLV. With several tiers, HLS also gets the master playlist (`rateType: null`), which
 * lists every tier so players adapt; it comes first. HTTP URLs name the cluster's public address (any media node, or an
 * edge, answers them); RTMP ones name the channel's media node, `rtmpAt`, when given (RTMP has no redirect players
 * follow: README "Scaling out").
 */
export function playUrls(
  ep: PublicEndpoints,
  channelId: string,
  encode: Encode,
  rateTypes: readonly RateType[],
  rtmpAt: { host: string; rtmpPort: number } = { host: ep.publicHost, rtmpPort: ep.rtmpPort },
): PlayUrl[] {
  const http = `http://${ep.publicHost}:${ep.httpPort}`;
  const streams = channelStreams(channelId, rateTypes);
  const rtmp = streams.map((s): PlayUrl => ({
    type: 5,
    rateType: s.rateType,
    playUrl: `rtmp://${rtmpAt.host}:${rtmpAt.rtmpPort}/${LIVE_APP}/${s.streamName}`,
  }));
  const flv = streams.map((s): PlayUrl => ({
    type: 2,
    rateType: s.rateType,
    playUrl: `${http}/${LIVE_APP}/${s.streamName}.flv`,
  }));
  const hls = streams.map((s): PlayUrl => ({
    type: 1,
    rateType: s.rateType,
    playUrl: `${http}${HLS_ROUTE}/${s.hlsDir}/index.m3u8`,
  }));
  if (streams.length > 1)
    hls.unshift({ type: 1, rateType: null, playUrl: `${http}${HLS_ROUTE}/${channelId}/index.m3u8` });
  const byEncode: Record<Encode, PlayUrl[]> = {
    1: hls,
    2: flv,
    3: [...hls, ...flv],
    4: [...rtmp, ...flv],
    5: rtmp,
    6: [...hls, ...rtmp],
  };
  return byEncode[encode];
}

/**
 * A channel placed on the media node of `beat`: the node, and the play URLs with RTMP at the node's public address
 * when it announces one (RELAY_NODE_PUBLIC_HOST, with its own RTMP port), else at the cluster's (`ep`, as with one
 * media server).
 */
export function placedOn(
  ch: Pick<Channel, 'channelId' | 'option'>,
  beat: NodeBeat,
  ep: PublicEndpoints,
): Pick<Channel, 'mediaNode' | 'urls'> {
  const at = beat.publicHost
    ? { host: beat.publicHost, rtmpPort: beat.rtmpPort ?? ep.rtmpPort }
    : { host: ep.publicHost, rtmpPort: ep.rtmpPort };
  return { mediaNode: beat.node, urls: playUrls(ep, ch.channelId, ch.option.encode, ch.option.rateTypes, at) };
}

/**
 * A channel its worker placed again, on the media node of `beat` (its node was gone): the node, and its RTMP play URLs
 * at that node's public address when it announces one (else they stay the cluster's). Its HTTP URLs stay the ones
 * handed out: they name the cluster's front (the API's RELAY_PUBLIC_HOST and RELAY_HTTP_PORT), which any node
 * answers; a worker's own settings may name another address.
 */
export function movedTo(
  ch: Pick<Channel, 'channelId' | 'option' | 'urls'>,
  beat: NodeBeat,
  ep: PublicEndpoints,
): Pick<Channel, 'mediaNode' | 'urls'> {
  if (!beat.publicHost) return { mediaNode: beat.node, urls: ch.urls };
  const rtmp = placedOn(ch, beat, ep).urls.filter((u) => u.type === 5);
  const urls = ch.urls.map((u) => (u.type === 5 ? (rtmp.find((r) => r.rateType === u.rateType) ?? u) : u));
  return { mediaNode: beat.node, urls };
}
