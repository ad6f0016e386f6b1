import type { Logger } from '../log.js';
import type { NmsBroadcast, NmsContext, NmsSession } from './nms.js';

/** The internals of an nms 4.4.3 session reached here: its socket (RTMP) and the writer the broadcast calls. */
interface RawSession extends NmsSession {
  socket?: { destroy(): void };
  sendBuffer?: (b: Buffer) => void;
}

/**
 * Drops a session the relay accepted earlier (a stale run's publisher or reader): marked refused, its socket destroyed
 * so that not one more of its packets reaches the broadcast (a plain close would still read until the peer ends).
 */
export function dropSession(logger: Logger, s: NmsSession, why: string): void {
  if (s.relayRejected) return;
  s.relayRejected = true;
  logger.warn({ path: s.streamPath, ip: s.ip, protocol: s.protocol, publisher: s.isPublisher }, `dropped: ${why}`);
  const raw = s as RawSession;
  try {
    if (raw.socket) raw.socket.destroy();
    else s.close();
  } catch {
    /* already gone */
  }
}

/**
 * Frees a broadcast's publisher slot for `next` (a newer or the same run of the channel): node-media-server refuses a
 * second publisher while the first one's connection is open, and a stale publisher (its worker stalled) may hold it
 * for as long as its process lives. The current publisher, if still connected, is dropped; its viewers stay.
 */
export function takeOverPublish(
  context: NmsContext,
  logger: Logger,
  b: NmsBroadcast,
  next: NmsSession,
  why: string,
): boolean {
  const cur = b.publisher;
  // a publisher that has gone already is nms's to end or resume (publish grace)
  if (!cur || cur === next || !context.sessions.has(cur.id)) return false;
  dropSession(logger, cur, why);
  b.publisher = null;
  return true;
}

/** Bytes a held session may gather before it is refused (the GOP cache of a high-bitrate stream fits). */
const HOLD_MAX_BYTES = 16 * 1024 * 1024;

/**
 * Holds what node-media-server sends a session (headers, GOP cache, frames) until `release` (all of it is sent then, in
 * order) or `refuse` (nothing of it is ever sent; the session is refused). Past HOLD_MAX_BYTES it is refused at once.
 */
export function holdOutput(
  s: NmsSession,
  refuse: (why: string) => void,
): { release(): void; refuse(why: string): void } {
  const raw = s as RawSession;
  const send = raw.sendBuffer;
  const held: Buffer[] = [];
  let bytes = 0;
  let open = true;
  const close = (why: string) => {
    if (!open) return;
    open = false;
    held.length = 0;
    refuse(why);
  };
  raw.sendBuffer = (b: Buffer) => {
    if (!open) return;
    held.push(b);
    bytes += b.length;
    if (bytes > HOLD_MAX_BYTES) close('held too long before its play check');
  };
  return {
    release() {
      if (!open) return;
      open = false;
      raw.sendBuffer = send;
      for (const b of held.splice(0)) send?.(b);
    },
    refuse: close,
  };
}
