import type { EventEmitter } from 'node:events';
import type { Logger } from '../log.js';
import { Timeline } from './timeline.js';
import type { NmsContext, NmsSession } from './nms.js';

/** A media packet as nms's parsers hand it to a session (flags: 0/2 audio/video header, 1/3/4 frames, 5 metadata). */
type NmsPacket = { codec_type: number; flags: number; dts: number; pts: number };

/** nms's RTMP protocol state of a session (pinned 4.4.3): the stream id of its play, and its play command handler. */
interface RtmpProtocol {
  onPacketCallback: (p: NmsPacket) => void;
  /** The message stream id the client sent `play`/`publish` on (the id its `createStream` got); 0 before. */
  streamId?: number;
  /** Handles a `play` command: `streamName` is `<name>[?query]`. */
  onPlay?: (invoke: { streamName: string }) => void;
}

/** The internals of an nms session (RTMP, HTTP-FLV or WS-FLV) that the patches reach into (pinned 4.4.3). */
interface RawSession extends NmsSession {
  socket?: EventEmitter & { destroy(): void };
  req?: EventEmitter;
  res?: EventEmitter;
  rtmp?: RtmpProtocol;
  flv?: { onPacketCallback: (p: NmsPacket) => void };
  onData?: (data: Buffer) => void;
  onPacket?: (p: NmsPacket) => void;
  sendBuffer?: (b: Buffer) => void;
  broadcast?: { _dtsOffset: Record<number, number> };
  relayFailed?: boolean;
}

/** What the relay decides for sessions as node-media-server creates them. */
export interface SessionHooks {
  /**
   * The stream name an RTMP play of `/<app>/<name>` is served from (e.g. a tiered channel's best tier for its
   * unsuffixed name); `name` itself to leave it alone. Called synchronously while nms handles the `play` command.
   */
  playName(app: string, name: string): string;
}

/** The timestamps each broadcast sends out (kept across its publishers). */
const timelines = new WeakMap<object, Timeline>();
/** The last video PTS each broadcast sent its viewers, and when (its live edge). */
const liveEdges = new WeakMap<object, { timestampMs: number; at: number }>();
/** Media packets each publishing session has sent (read by the idle watch, idle.ts). */
const mediaPackets = new WeakMap<NmsSession, number>();

/**
 * The live edge of a broadcast: the presentation timestamp (ms, as its viewers get it) of the last video packet it
 * sent and the wall clock (ms since the epoch) when it did; null before its first. Players compare it with the frame
 * they show.
 */
export function liveEdgeOf(broadcast: object): { timestampMs: number; at: number } | null {
  return liveEdges.get(broadcast) ?? null;
}

/** How many media packets (audio, video, metadata) a session has published so far. */
export function mediaPacketsOf(s: NmsSession): number {
  return mediaPackets.get(s) ?? 0;
}

/**
 * Patches every session node-media-server registers (pinned 4.4.3), in place:
 * - no publisher, upstream or viewer may throw out of nms (an uncaught throw ends the whole media process): its input
 *   handler and its writes are wrapped, so an error closes that session and is logged;
 * - its media packets are retimed on their broadcast's `Timeline` (replacing nms's resume offset, which overflowed the
 *   32-bit RTMP timestamp after a few reconnects of a publisher ending at 0x7FFFFFFF), and counted (`mediaPacketsOf`);
 * - RTMP viewers get media on the message stream id their `createStream` answered (see `rtmpOnStream`);
 * - an RTMP play's stream name goes through `hooks.playName` before nms resolves its broadcast.
 */
export function patchSessions(context: NmsContext, logger: Logger, hooks: SessionHooks): void {
  const sessions = context.sessions as Map<string, RawSession>;
  const set = sessions.set.bind(sessions);
  sessions.set = (id, s) => {
    patchRtmp(s, hooks);
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
    mediaPackets.set(s, (mediaPackets.get(s) ?? 0) + 1);
    const b = s.broadcast;
    if (b) {
      b._dtsOffset = {};
      let t = timelines.get(b);
      if (!t) timelines.set(b, (t = new Timeline()));
      const media = p.flags === 1 || p.flags === 3 || p.flags === 4;
      const dts = t.next(s.id, media, p.dts, p.codec_type);
      p.pts += dts - p.dts;
      p.dts = dts;
      // in presentation time (a player compares it with the frame it shows), video's PTS includes its CTS
      if (media && p.codec_type === 9) {
        const edge = liveEdges.get(b);
        if (edge) [edge.timestampMs, edge.at] = [p.pts, Date.now()];
        else liveEdges.set(b, { timestampMs: p.pts, at: Date.now() }); // one record per broadcast, updated in place
      }
    }
    onPacket(p);
  };
  for (const parser of [s.rtmp, s.flv]) if (parser?.onPacketCallback === onPacket) parser.onPacketCallback = retimed;
}

// RTMP sessions: the play name goes through the hook; what nms sends a viewer goes out on the viewer's stream id.
function patchRtmp(s: RawSession, hooks: SessionHooks): void {
  const rtmp = s.rtmp;
  if (s.protocol !== 'rtmp' || !rtmp) return;
  const onPlay = rtmp.onPlay;
  if (onPlay)
    rtmp.onPlay = (invoke) => {
      const q = invoke.streamName.indexOf('?');
      const name = q < 0 ? invoke.streamName : invoke.streamName.slice(0, q);
      const app = (rtmp as { streamApp?: string }).streamApp ?? '';
      const mapped = hooks.playName(app, name);
      if (mapped !== name) invoke.streamName = mapped + (q < 0 ? '' : invoke.streamName.slice(q));
      onPlay.call(rtmp, invoke);
    };
  const send = s.sendBuffer;
  if (send) s.sendBuffer = (b) => send(rtmpOnStream(b, rtmp.streamId ?? 0));
}

/** The copy of each media message nms built once for all viewers, re-addressed to another message stream id. */
const readdressed = new WeakMap<Buffer, { streamId: number; message: Buffer }>();

/**
 * A media message as nms builds it for RTMP viewers (one message: a type-0 chunk on chunk stream 4, 5 or 6 — one-byte
 * basic header — then type-3 continuation chunks), addressed to message stream `streamId`. nms 4.4.3 addresses every
 * media message to stream 0, although RTMP sends a stream's audio, video and data messages on the message stream id
 * its createStream answered (Adobe RTMP Specification 1.0, 6.1.1 message stream ID and 7.2.1.3 createStream; nms
 * answers 1): GStreamer's `rtmp2src` drops messages of any other stream ("Ignoring video message with stream 0 != 1").
 * Buffers of another shape pass unchanged; one copy per message and stream id is shared by the viewers of a broadcast.
 */
export function rtmpOnStream(b: Buffer, streamId: number): Buffer {
  if (b.length < 12 || b[0]! >> 6 !== 0) return b;
  const csid = b[0]! & 0x3f;
  if ((csid !== 4 && csid !== 5 && csid !== 6) || b.readUInt32LE(8) === streamId) return b;
  const memo = readdressed.get(b);
  if (memo?.streamId === streamId) return memo.message;
  const message = Buffer.from(b);
  message.writeUInt32LE(streamId >>> 0, 8);
  readdressed.set(b, { streamId, message });
  return message;
}
