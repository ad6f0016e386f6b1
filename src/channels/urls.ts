import type { Encode, PlayUrl, RateType } from './types.js';

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

/** Whether an encode includes HLS output. */
export function encodeHasHls(encode: Encode): boolean {
  return encode === 1 || encode === 3 || encode === 6;
}

/**
 * The play URLs of a channel for an encode. RAW(4) is the stream as the media server relays it,
 * without HLS packaging: an RTMP URL and an HTTP-FLV URL.
 */
export function playUrls(ep: PublicEndpoints, channelId: string, encode: Encode, rateType: RateType): PlayUrl[] {
  const rtmp: PlayUrl = { type: 5, rateType, playUrl: `rtmp://${ep.publicHost}:${ep.rtmpPort}/${LIVE_APP}/${channelId}` };
  const flv: PlayUrl = { type: 2, rateType, playUrl: `http://${ep.publicHost}:${ep.httpPort}/${LIVE_APP}/${channelId}.flv` };
  const hls: PlayUrl = { type: 1, rateType, playUrl: `http://${ep.publicHost}:${ep.httpPort}${HLS_ROUTE}/${channelId}/index.m3u8` };
  const byEncode: Record<Encode, PlayUrl[]> = { 1: [hls], 2: [flv], 3: [hls, flv], 4: [rtmp, flv], 5: [rtmp], 6: [hls, rtmp] };
  return byEncode[encode];
}
