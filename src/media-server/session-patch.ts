import type { EventEmitter } from 'node:events';
import type { Logger } from '../log.js';
import { Timeline } from './timeline.js';
import type { NmsContext, NmsSession } from './nms.js';

/** A media packet as nms's parsers hand it to a session (flags: 0/2 audio/video header, 1/3/4 frames, 5 metadata). */
type NmsPacket = { codec_type: number; flags: number; dts: number; pts: number };

/** The internals of an nms session (RTMP, HTTP-FLV or WS-FLV) that the patches reach into (pinned 4.4.3). */
interface RawSession extends NmsSession {
  socket?: EventEmitter & { destroy(): void };
  req?: EventEmitter;
  res?: EventEmitter;
  rtmp?: { onPacketCallback: (p: NmsPacket) => void };
  flv?: { onPacketCallback: (p: NmsPacket) => void };
  onData?: (data: Buffer) => void;
  onPacket?: (p: NmsPacket) => void;
  sendBuffer?: (b: Buffer) => void;
  broadcast?: { _dtsOffset: Record<number, number> };
  relayFailed?: boolean;
}

/** The timestamps each broadcast sends out (kept across its publishers). */
const timelines = new WeakMap<object, Timeline>();

/**
 * Patches every session node-media-server registers (pinned 4.4.3), in place: no publisher, upstream or viewer may
 * throw out of nms (an uncaught throw ends the whole media process): its input handler and its writes are wrapped, so
 * an error closes that session and is logged; and its media packets are retimed on their broadcast's `Timeline`,
 * replacing nms's resume offset (which adds the last timestamp of each previous publish, so a publisher whose runs end
 * at 0x7FFFFFFF overflowed the 32-bit timestamp of nms's RTMP writer after three reconnects).
 */
export function patchSessions(context: NmsContext, logger: Logger): void {
  const sessions = context.sessions as Map<string, RawSession>;
  const set = sessions.set.bind(sessions);
  sessions.set = (id, s) => {
    hardenSession(s, logger);
    return set(id, s);
  };
}

function failSession(s: RawSession, logger: Logger, e: unknown): void {
  if (s.relayFailed) return;
  s.relayFailed = true;
  logger.warn(
    { path: s.streamPath, ip: s.ip, protocol: s.protocol, publisher: s.isPublisher, err: (e as Error)?.message },
    'media session failed, closed it',
  );
  try {
    if (s.socket) s.socket.destroy();
    else s.close();
  } catch {
    /* already gone */
  }
}

function hardenSession(s: RawSession, logger: Logger): void {
  const onData = s.onData;
  if (onData) {
    const guarded = (data: Buffer) => {
      if (s.relayFailed) return;
      try {
        onData(data);
      } catch (e) {
        failSession(s, logger, e);
      }
    };
    for (const emitter of [s.socket, s.req, s.res])
      for (const ev of ['data', 'message'])
        if (emitter?.listeners(ev).includes(onData)) {
          emitter.removeListener(ev, onData);
          emitter.on(ev, guarded);
        }
  }
  const send = s.sendBuffer;
  if (send)
    s.sendBuffer = (b) => {
      if (s.relayFailed) return;
      try {
        send(b);
      } catch (e) {
        failSession(s, logger, e);
      }
    };
  const onPacket = s.onPacket;
  if (!onPacket) return;
  const retimed = (p: NmsPacket) => {
    const b = s.broadcast;
    if (b) {
      b._dtsOffset = {};
      let t = timelines.get(b);
      if (!t) timelines.set(b, (t = new Timeline()));
      const dts = t.next(s.id, p.flags === 1 || p.flags === 3 || p.flags === 4, p.dts);
      p.pts += dts - p.dts;
      p.dts = dts;
    }
    onPacket(p);
  };
  for (const parser of [s.rtmp, s.flv]) if (parser?.onPacketCallback === onPacket) parser.onPacketCallback = retimed;
}
