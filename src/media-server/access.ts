import type { ChannelStore } from '../channels/store.js';
import { checkPlay } from '../channels/password.js';
import type { Channel } from '../channels/types.js';

/** A refusal to play, as the media server answers it over HTTP. */
export interface PlayRefusal {
  status: 401 | 403 | 404;
  body: { code: number; message: string; hint: string };
}

/**
 * Whether a viewer may play a channel now: it must exist, and for live protocols be starting or live; a protected
 * channel needs its password (`pwd`) or play token (`token`). HLS of an ended channel still plays (ENDLIST).
 */
export async function playDecision(
  store: Pick<ChannelStore, 'get'>,
  channelId: string,
  query: Record<string, unknown>,
  live: boolean,
  liveEndedAfterMs: number,
): Promise<{ channel: Channel; refusal: null } | { channel: Channel | null; refusal: PlayRefusal }> {
  const ch = await store.get(channelId);
  if (!ch || ch.state === 'recycled')
    return {
      channel: null,
      refusal: { status: 404, body: { code: 404, message: 'no such channel', hint: 'check the play URL' } },
    };
  if (live && liveEnded(ch, liveEndedAfterMs, Date.now())) {
    return {
      channel: ch,
      refusal: {
        status: 404,
        body: { code: 404, message: `live ended: channel is ${ch.state}`, hint: 'start the push again' },
      },
    };
  }
  const auth = checkPlay(ch.channelId, ch.passwordHash, query);
  if (auth === 'missing')
    return {
      channel: ch,
      refusal: {
        status: 401,
        body: { code: 401, message: 'password required', hint: 'add ?pwd=<password> to the URL' },
      },
    };
  if (auth === 'wrong')
    return {
      channel: ch,
      refusal: { status: 403, body: { code: 403, message: 'wrong password', hint: 'check the channel password' } },
    };
  return { channel: ch, refusal: null };
}

/** The query of a request URL as a plain object (first value of each key). */
export function queryOf(rawUrl: string | undefined): Record<string, string> {
  const q = rawUrl?.indexOf('?') ?? -1;
  if (!rawUrl || q < 0) return {};
  const out: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(rawUrl.slice(q + 1))) if (!(k in out)) out[k] = v;
  return out;
}

/**
 * Whether FLV/RTMP viewers joining now are told the live has ended: a channel that is not starting or live, except
 * an interrupted one within `afterMs` of the loss (those viewers wait for the upstream to come back).
 */
export function liveEnded(ch: Pick<Channel, 'state' | 'interruptedAt'>, afterMs: number, now: number): boolean {
  if (ch.state === 'starting' || ch.state === 'live') return false;
  if (ch.state === 'interrupted') return now - (ch.interruptedAt ?? 0) >= afterMs;
  return true;
}
