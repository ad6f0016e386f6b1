import { createRequire } from 'node:module';
import type { Server as HttpServer } from 'node:http';
import type { Logger } from '../log.js';

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
  /** Sends a packet of the publisher to every subscriber (flags: 3 video keyframe). */
  broadcastMessage: (packet: { codec_type: number; flags: number }) => void;
}

/** node-media-server's module-level context (one instance per process). */
export interface NmsContext {
  broadcasts: Map<string, NmsBroadcast>;
  sessions: Map<string, NmsSession>;
}

/** The instance, as far as the relay drives it. */
export interface NmsInstance {
  on(event: 'prePublish' | 'postPublish' | 'donePublish' | 'prePlay' | 'postPlay' | 'donePlay', fn: (s: NmsSession) => void): void;
  run(): Promise<void>;
  stop(): Promise<void>;
  httpServer: { httpServer?: HttpServer };
  rtmpServer: { tcpServer?: import('node:net').Server };
  store: { options: { signals: boolean } };
}

interface NmsConfig {
  bind: string;
  rtmp: { port: number };
  http: { port: number };
  store: { path: string };
  webadmin: { enable: boolean };
}

/** Creates the node-media-server instance with its chatty logger routed into ours at debug level. */
export function createNms(config: NmsConfig, logger: Logger): { nms: NmsInstance; context: NmsContext } {
  const nmsLogger = require('node-media-server/src/core/logger.js') as { log: (m: string, level?: string) => void; level: string };
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
