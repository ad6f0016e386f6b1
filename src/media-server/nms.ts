import { createRequire } from 'node:module';
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { Server as TcpServer } from 'node:net';
import type { Duplex } from 'node:stream';
import { LogThrottle, type Logger } from '../log.js';

const require = createRequire(import.meta.url);

/** The parts of a node-media-server session the relay uses. */
export interface NmsSession {
  id: string;
  ip: string;
  protocol: 'rtmp' | 'flv' | string;
  streamPath: string;
  streamApp: string;
  streamName: string;
  streamQuery: Record<string, unknown> | null;
  isPublisher: boolean;
  /** When the session began (ms). */
  createTime?: number;
  inBytes: number;
  outBytes: number;
  videoCodec: number;
  videoWidth: number;
  videoHeight: number;
  videoFramerate: number;
  audioCodec: number;
  audioDatarate: number;
  close(): void;
  /** Set by the relay on sessions it refused, so later events of the same session are ignored. */
  relayRejected?: boolean;
}

/** The parts of a node-media-server broadcast (one stream path) the relay uses. */
export interface NmsBroadcast {
  publisher: NmsSession | null;
  subscribers: Map<string, NmsSession>;
  publishGraceMs: number;
  /** Whether it is published now: the publisher is held through the grace window (`reconnecting`) after it left. */
  getPublishStatus?(): 'publishing' | 'reconnecting' | 'idle';
  /** Sends a packet of the publisher to every subscriber (flags: 3 video keyframe). */
  broadcastMessage: (packet: { codec_type: number; flags: number }) => void;
}

/** node-media-server's module-level context (one instance per process). */
export interface NmsContext {
  broadcasts: Map<string, NmsBroadcast>;
  sessions: Map<string, NmsSession>;
}

/** The session events of node-media-server. */
export type NmsEvent = 'prePublish' | 'postPublish' | 'donePublish' | 'prePlay' | 'postPlay' | 'donePlay';

/** The instance, as far as the relay drives it. */
export interface NmsInstance {
  on(event: NmsEvent, fn: (s: NmsSession) => void): void;
  run(): Promise<void>;
  stop(): Promise<void>;
  httpServer: { httpServer?: HttpServer };
  rtmpServer: { tcpServer?: TcpServer };
  store: { options: { signals: boolean } };
}

interface NmsConfig {
  bind: string;
  rtmp: { port: number };
  http: { port: number };
  store: { path: string };
  webadmin: { enable: boolean };
}

/** A handler of HTTP requests, as node-media-server registers it. */
export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;
/** A handler of HTTP upgrades (WS-FLV), as node-media-server registers it. */
export type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
/** The two HTTP entry points of the media server. */
export interface HttpHandlers {
  request: RequestListener;
  upgrade: UpgradeListener;
}

/**
 * Creates the node-media-server instance with its chatty logger routed into ours at debug level. Its sessions are
 * patched by `patchSessions` (session-patch.ts), which the caller installs before `listen`.
 */
export function createNms(config: NmsConfig, logger: Logger): { nms: NmsInstance; context: NmsContext } {
  const nmsLogger = require('node-media-server/src/core/logger.js') as {
    log: (m: string, level?: string) => void;
    level: string;
  };
  nmsLogger.log = (message: string, level = 'info') => {
    if (level === 'error' || level === 'warn') logger.debug({ nms: message }, 'node-media-server');
    else logger.trace({ nms: message }, 'node-media-server');
  };
  const NodeMediaServer = require('node-media-server') as new (c: NmsConfig) => NmsInstance;
  const nms = new NodeMediaServer(config);
  // Its store would re-raise SIGINT/SIGTERM to kill the process; shutdown is ours to run (close() flushes the store).
  nms.store.options.signals = false;
  const context = require('node-media-server/src/core/context.js') as NmsContext;
  return { nms, context };
}

/**
 * Puts the relay's handlers in front of node-media-server's HTTP server: `guard` receives nms's own handlers (to pass
 * the requests it accepts on) and returns the handlers that get every request and upgrade. A throw out of nms's
 * handlers (an FLV or WS-FLV session failing as it starts) ends that request, logged, never the process.
 */
export function guardHttp(nms: NmsInstance, logger: Logger, guard: (nmsHandlers: HttpHandlers) => HttpHandlers): void {
  const http = nms.httpServer.httpServer;
  if (!http) throw new Error('node-media-server created no HTTP server');
  const request = http.listeners('request')[0] as RequestListener;
  const upgrades = http.listeners('upgrade') as UpgradeListener[];
  http.removeAllListeners('request');
  http.removeAllListeners('upgrade');
  const failed = (e: unknown, req: IncomingMessage, socket: Duplex) => {
    logger.warn({ url: req.url?.slice(0, 200), err: (e as Error)?.message }, 'media request failed, closed it');
    socket.destroy();
  };
  const handlers = guard({
    request: (req, res) => {
      try {
        request(req, res);
      } catch (e) {
        failed(e, req, res.socket ?? req.socket);
      }
    },
    upgrade: (req, socket, head) => {
      try {
        for (const l of upgrades) l(req, socket, head);
      } catch (e) {
        failed(e, req, socket);
      }
    },
  });
  http.on('request', handlers.request);
  http.on('upgrade', handlers.upgrade);
}

/** Starts the listeners; rejects (instead of letting nms exit the process) when a port is taken. */
export async function listen(nms: NmsInstance): Promise<void> {
  const servers = [nms.httpServer.httpServer, nms.rtmpServer.tcpServer];
  void nms.run();
  // nms exits the process on a listen error; take its place so start() can reject instead.
  for (const srv of servers) srv?.removeAllListeners('error');
  await Promise.all(servers.map(listeningOf));
}

/** Closes every publisher and viewer session. */
export function closeAllSessions(context: NmsContext): void {
  for (const b of context.broadcasts.values()) {
    for (const s of b.subscribers.values()) s.close();
    b.publisher?.close();
  }
}

/** The broadcasts of one RTMP application, with their stream names. */
export function* broadcastsOf(context: NmsContext, app: string): Generator<[name: string, broadcast: NmsBroadcast]> {
  const prefix = `/${app}/`;
  for (const [streamPath, b] of context.broadcasts)
    if (streamPath.startsWith(prefix)) yield [streamPath.slice(prefix.length), b];
}

const refusalLog = new LogThrottle();
/**
 * Refuses a session in a pre-event (nms has no reject API: closed, marked so its later events are ignored; an empty
 * broadcast ends at once). Logged at most once a second per reason, with `suppressed`: how many more since.
 */
export function refuseSession(context: NmsContext, logger: Logger, s: NmsSession, why: string): void {
  s.relayRejected = true;
  const b = context.broadcasts.get(s.streamPath);
  if (b?.publisher === null) b.publishGraceMs = 0;
  const suppressed = refusalLog.take(why, Date.now());
  const where = { path: s.streamPath, ip: s.ip, protocol: s.protocol, publisher: s.isPublisher };
  if (suppressed !== null) logger.warn({ ...where, ...(suppressed ? { suppressed } : {}) }, `refused: ${why}`);
  s.close();
}

/** Calls `fn` once, when the broadcast first relays a video keyframe (wraps nms's broadcastMessage until then). */
export function onFirstKeyframe(b: NmsBroadcast, fn: () => void): void {
  const original = b.broadcastMessage;
  b.broadcastMessage = (packet) => {
    original(packet);
    if (packet.codec_type === 9 && packet.flags === 3) {
      b.broadcastMessage = original;
      fn();
    }
  };
}

/** Ends the viewers of a broadcast (they get an end of stream), those `which` picks; returns how many. */
export function closeViewers(b: NmsBroadcast, which: (s: NmsSession) => boolean = () => true): number {
  const viewers = [...b.subscribers.values()].filter(which);
  for (const sub of viewers) sub.close();
  return viewers.length;
}

function listeningOf(server: { once(ev: string, fn: (...a: unknown[]) => void): unknown } | undefined): Promise<void> {
  if (!server) return Promise.reject(new Error('listener missing'));
  return new Promise((resolve, reject) => {
    server.once('listening', () => resolve());
    server.once('error', (e) =>
      reject(e instanceof Error ? new Error(`media server cannot listen: ${e.message}`) : new Error('listen failed')),
    );
  });
}
