import { LIVE_APP, parseStreamName } from '../channels/urls.js';
import { broadcastsOf, type NmsContext } from './nms.js';
import { liveEdgeOf } from './session-patch.js';

/**
 * Viewers of a channel (all tiers and live protocols), the bitrate published since each stream began (summed), and
 * each stream's live edge: the timestamp its viewers were last sent and how long ago (ms), which a player compares
 * with the frame it shows for its latency (`npm run cli -- play`).
 */
export function liveFigures(
  context: NmsContext,
  channelId: string,
  now: number,
): { viewers: number; bitrateKbps: number; liveEdge: Record<string, { timestampMs: number; ageMs: number }> } {
  let viewers = 0;
  let kbps = 0;
  const liveEdge: Record<string, { timestampMs: number; ageMs: number }> = {};
  for (const [name, b] of broadcastsOf(context, LIVE_APP)) {
    if (parseStreamName(name)?.channelId !== channelId) continue;
    viewers += b.subscribers.size;
    const edge = b.publisher ? liveEdgeOf(b) : null;
    if (edge) liveEdge[name] = { timestampMs: edge.timestampMs, ageMs: Math.max(0, now - edge.at) };
    const p = b.publisher;
    if (p?.createTime && now > p.createTime) kbps += (p.inBytes * 8) / (now - p.createTime);
  }
  return { viewers, bitrateKbps: Math.round(kbps), liveEdge };
}
