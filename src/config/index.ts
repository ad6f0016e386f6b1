import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ALLOW_SETTING, parseEgressAllow, type EgressPolicy } from '../egress/index.js';
import { locateFfmpeg } from '../media/ffmpeg/locate.js';
import { clusterConfig, type ClusterConfig } from './cluster.js';
import type { ChannelCosts } from './costs.js';

export type { ChannelCosts } from './costs.js';

/** Named defaults of every setting; each can be overridden by the environment variable of the same name. */
export const DEFAULTS = {
  RELAY_API_PORT: 8090,
  RELAY_HTTP_PORT: 8000,
  RELAY_RTMP_PORT: 1935,
  RELAY_BIND: '0.0.0.0',
  RELAY_PUBLIC_HOST: '127.0.0.1',
  REDIS_URL: 'redis://127.0.0.1:6379',
  RELAY_REDIS_PREFIX: 'relay',
  RELAY_DATA_DIR: './data',
  RELAY_WORKER_CONCURRENCY: 8,
  RELAY_START_TIMEOUT_MS: 8000,
  RELAY_API_WAIT_MS: 10000,
  RELAY_HLS_SEGMENT_SECONDS: 2,
  RELAY_HLS_LIST_SIZE: 6,
  RELAY_MAX_CHANNELS_PER_ROOM: 4,
  RELAY_MIX_MAX_MEMBERS: 4,
  RELAY_START_RATE_LIMIT_MS: 3000,
  RELAY_RECORD_MAX_SECONDS: 5400,
  RELAY_MIN_FREE_MB: 1024,
  RELAY_MAX_WATERMARKS_PER_APP: 100,
  RELAY_RETENTION_MS: 3_600_000,
  RELAY_LIVE_ENDED_AFTER_MS: 7000,
  RELAY_STALL_MS: 8000,
  RELAY_SHUTDOWN_GRACE_MS: 8000,
  RELAY_WORKER_HEALTH_PORT: 0,
  RELAY_INGEST_IDLE_MS: 10000,
  RELAY_WHIP_MAX_SESSIONS: 32,
  RELAY_WHIP_ICE_HOSTS: '',
  RELAY_MAX_RESTARTS: 5,
  RELAY_MAX_RUN_STARTS: 5,
  RELAY_TARGET_MAX_RETRIES: 8,
  RELAY_TARGET_BACKOFF_MS: 1000,
  RELAY_TARGET_STALL_MS: 5000,
  RELAY_TARGET_CONFIRM_MS: 5000,
  RELAY_WEBHOOK_ATTEMPTS: 8,
  RELAY_WEBHOOK_BACKOFF_MS: 1000,
  RELAY_LOG_LEVEL: 'info',
} as const;

/** Resolved configuration shared by every process of the relay. */
export interface RelayConfig {
  /** Internal hosts and networks tenants' URLs may reach after all (RELAY_UPSTREAM_ALLOW; README "Security"). */
  egress: EgressPolicy;
  apiPort: number;
  httpPort: number;
  rtmpPort: number;
  /** Address the listeners bind to. */
  bind: string;
  /** Host (or host:port-less name) put in play URLs handed to viewers. */
  publicHost: string;
  /** Host the worker uses to reach the media server (RTMP in and out). */
  mediaInternalHost: string;
  redisUrl: string;
  /** Prefix of every Redis key and of the BullMQ queue, so deployments and test runs never collide. */
  redisPrefix: string;
  dataDir: string;
  hlsDir: string;
  /** Recordings: `<recordsDir>/<sdkAppId>/<recordTaskId>/`. */
  recordsDir: string;
  /** Watermark images: `<watermarksDir>/<sdkAppId>/<waterMarkId>.png`. */
  watermarksDir: string;
  /** A recording file is cut after this many seconds (the managed service cuts at 90 min). */
  recordMaxSeconds: number;
  /**
   * Free space (MiB) the records and HLS folders must keep for a start with recording, and the watermarks folder for
   * an upload; below it they are refused with 50007. 0 turns the check off (a full disk is still reported as 50007).
   */
  minFreeMB: number;
  /** Watermark images one app may hold; one more upload is refused with 50002 (HTTP 409). */
  maxWatermarksPerApp: number;
  /** How long an interrupted channel keeps its id and URLs (SPEC: 1 hour). */
  retentionMs: number;
  /** FLV/RTMP viewers joining this long after the upstream was lost are told the live has ended (SPEC: 7 s). */
  liveEndedAfterMs: number;
  /** ffmpeg without progress this long is restarted. */
  stallMs: number;
  /** Bound of a graceful stop (SIGTERM/SIGINT), ms, under Docker's 10 s: past it ffmpegs die, records are finished. */
  shutdownGraceMs: number;
  /** A worker process's /livez and /readyz port (it has no other HTTP port); 0: none. */
  workerHealthPort: number;
  /**
   * A publisher (ingest member or a worker's channel publish) that sends no media this long (ms) is dropped by the
   * media server and its stream key freed (SRS and nginx-rtmp drop idle publishers too); 0 turns it off.
   */
  ingestIdleMs: number;
  /** Most WHIP sessions one media process holds at once (each runs a bridge ffmpeg). */
  whipMaxSessions: number;
  /** Addresses announced as WHIP ICE host candidates besides the machine's own (a 1:1 NAT's public IP), comma separated. */
  whipIceHosts: readonly string[];
  /** Restarts of a channel's ffmpeg within a minute before it is failed. */
  maxRestarts: number;
  /** Push targets (RELAY_TARGET_*): failed after maxRetries attempts in a row, backoff doubled up to 30 s (README). */
  targets: { maxRetries: number; backoffMs: number; stallMs: number; confirmMs: number };
  /** Starts of a channel's run (its job picked up) within 10 minutes, without staying live, before it is failed. */
  maxRunStarts: number;
  /** The ffmpeg to run: FFMPEG_PATH, else a system ffmpeg ≥ 5 on PATH, else the bundled 4.1 (README "ffmpeg"). */
  ffmpegPath: string;
  /** Channels one worker process runs at once. */
  workerConcurrency: number;
  /** The worker fails a start with 6012 when no media flowed within this time. */
  startTimeoutMs: number;
  /** The API answers a start within this time, whatever the worker does. */
  apiWaitMs: number;
  hlsSegmentSeconds: number;
  hlsListSize: number;
  maxChannelsPerRoom: number;
  /** Members a mix may have (RELAY_MIX_MAX_MEMBERS, default 4: the room's limit). */
  mixMaxMembers: number;
  startRateLimitMs: number;
  /** Folder whose media files may be registered as upstreams (file paths outside it are refused). */
  fileUpstreamDir: string;
  logLevel: string;
  /** Delivery attempts of one webhook event before it is kept as failed. */
  webhookAttempts: number;
  /** First retry delay of a webhook delivery; it doubles at each attempt. */
  webhookBackoffMs: number;
  /** CPU cores a worker may fill with channels (default: the machine's core count). */
  workerCapacity: number;
  /** Cost of each job kind in cores, measured by `npm run bench` (README "Performance"). */
  costs: ChannelCosts;
  /** Bearer token of the admin API (accounts, apps); the admin API is off without it. */
  adminToken: string | null;
  /** Media nodes: this node's addresses and share, and `npm run relay`'s node count (README "Scaling out"). */
  cluster: ClusterConfig;
}

/** A setting that cannot be used; the message names the variable. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    detail: string,
  ) {
    super(`invalid configuration: ${variable} ${detail}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

function str(env: Env, name: keyof typeof DEFAULTS | string, fallback: string): string {
  const v = env[name];
  return v === undefined || v === '' ? fallback : v;
}

function int(env: Env, name: keyof typeof DEFAULTS, min: number, max: number): number {
  const raw = env[name];
  const fallback = DEFAULTS[name] as number;
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(name, `must be an integer, got ${JSON.stringify(raw)}`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

function float(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+(\.\d+)?$/.test(raw.trim())) throw new ConfigError(name, `must be a number, got ${JSON.stringify(raw)}`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

function adminToken(env: Env): string | null {
  const t = env.RELAY_ADMIN_TOKEN;
  if (t === undefined || t === '') return null;
  if (t.length < 16 || /\s/.test(t))
    throw new ConfigError('RELAY_ADMIN_TOKEN', 'must be at least 16 characters without spaces');
  return t;
}

function ingestIdleMs(env: Env): number {
  const ms = int(env, 'RELAY_INGEST_IDLE_MS', 0, 3_600_000);
  if (ms > 0 && ms < 500) throw new ConfigError('RELAY_INGEST_IDLE_MS', `must be 0 (off) or at least 500, got ${ms}`);
  return ms;
}

function whipIceHosts(env: Env): string[] {
  const hosts = str(env, 'RELAY_WHIP_ICE_HOSTS', DEFAULTS.RELAY_WHIP_ICE_HOSTS)
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean);
  const bad = hosts.find((h) => net.isIP(h) === 0);
  if (bad)
    throw new ConfigError('RELAY_WHIP_ICE_HOSTS', `must be IP addresses, comma separated; got ${JSON.stringify(bad)}`);
  return hosts;
}

/** Reads and validates the configuration once; throws ConfigError naming the first bad variable. */
export function loadConfig(env: Env = process.env): RelayConfig {
  const apiPort = int(env, 'RELAY_API_PORT', 0, 65535);
  const httpPort = int(env, 'RELAY_HTTP_PORT', 0, 65535);
  const rtmpPort = int(env, 'RELAY_RTMP_PORT', 0, 65535);
  const redisUrl = str(env, 'REDIS_URL', DEFAULTS.REDIS_URL);
  if (!/^rediss?:\/\/[^\s]+$/.test(redisUrl))
    throw new ConfigError('REDIS_URL', `must be a redis:// or rediss:// URL, got ${JSON.stringify(redisUrl)}`);
  const publicHost = str(env, 'RELAY_PUBLIC_HOST', DEFAULTS.RELAY_PUBLIC_HOST);
  if (!/^[A-Za-z0-9.\-:[\]]+$/.test(publicHost))
    throw new ConfigError('RELAY_PUBLIC_HOST', `must be a host name or IP address, got ${JSON.stringify(publicHost)}`);
  const redisPrefix = str(env, 'RELAY_REDIS_PREFIX', DEFAULTS.RELAY_REDIS_PREFIX);
  if (!/^[A-Za-z0-9_-]{1,40}$/.test(redisPrefix))
    throw new ConfigError('RELAY_REDIS_PREFIX', 'must be 1-40 letters, digits, _ or -');
  const logLevel = str(env, 'RELAY_LOG_LEVEL', DEFAULTS.RELAY_LOG_LEVEL);
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(logLevel))
    throw new ConfigError('RELAY_LOG_LEVEL', `must be a pino level, got ${JSON.stringify(logLevel)}`);
  const dataDir = path.resolve(str(env, 'RELAY_DATA_DIR', DEFAULTS.RELAY_DATA_DIR));
  // ffmpeg's tee and segment options use these characters as separators
  if (/[:|[\]\\'",\s]/.test(dataDir))
    throw new ConfigError(
      'RELAY_DATA_DIR',
      `must not contain spaces or any of : | [ ] \\ ' " , (got ${JSON.stringify(dataDir)})`,
    );
  const startTimeoutMs = int(env, 'RELAY_START_TIMEOUT_MS', 1000, 120000);
  const apiWaitMs = int(env, 'RELAY_API_WAIT_MS', 1000, 180000);
  let egress: EgressPolicy;
  try {
    egress = parseEgressAllow(str(env, ALLOW_SETTING, ''));
  } catch (e) {
    throw new ConfigError(ALLOW_SETTING, (e as Error).message.replace(`${ALLOW_SETTING}: `, ''));
  }
  return {
    egress,
    apiPort,
    httpPort,
    rtmpPort,
    bind: str(env, 'RELAY_BIND', DEFAULTS.RELAY_BIND),
    publicHost,
    mediaInternalHost: str(env, 'RELAY_MEDIA_INTERNAL_HOST', '127.0.0.1'),
    redisUrl,
    redisPrefix,
    dataDir,
    hlsDir: path.join(dataDir, 'hls'),
    recordsDir: path.join(dataDir, 'records'),
    watermarksDir: path.join(dataDir, 'watermarks'),
    recordMaxSeconds: int(env, 'RELAY_RECORD_MAX_SECONDS', 2, 86400),
    minFreeMB: int(env, 'RELAY_MIN_FREE_MB', 0, 16_777_216),
    maxWatermarksPerApp: int(env, 'RELAY_MAX_WATERMARKS_PER_APP', 1, 100_000),
    retentionMs: int(env, 'RELAY_RETENTION_MS', 1000, 7 * 86_400_000),
    liveEndedAfterMs: int(env, 'RELAY_LIVE_ENDED_AFTER_MS', 0, 600_000),
    stallMs: int(env, 'RELAY_STALL_MS', 2000, 600_000),
    shutdownGraceMs: int(env, 'RELAY_SHUTDOWN_GRACE_MS', 500, 600_000),
    workerHealthPort: int(env, 'RELAY_WORKER_HEALTH_PORT', 0, 65535),
    ingestIdleMs: ingestIdleMs(env),
    whipMaxSessions: int(env, 'RELAY_WHIP_MAX_SESSIONS', 0, 10_000),
    whipIceHosts: whipIceHosts(env),
    maxRestarts: int(env, 'RELAY_MAX_RESTARTS', 0, 100),
    targets: {
      maxRetries: int(env, 'RELAY_TARGET_MAX_RETRIES', 0, 1000),
      backoffMs: int(env, 'RELAY_TARGET_BACKOFF_MS', 100, 600_000),
      stallMs: int(env, 'RELAY_TARGET_STALL_MS', 1000, 600_000),
      confirmMs: int(env, 'RELAY_TARGET_CONFIRM_MS', 500, 60_000),
    },
    maxRunStarts: int(env, 'RELAY_MAX_RUN_STARTS', 1, 1000),
    webhookAttempts: int(env, 'RELAY_WEBHOOK_ATTEMPTS', 1, 50),
    webhookBackoffMs: int(env, 'RELAY_WEBHOOK_BACKOFF_MS', 10, 600_000),
    ffmpegPath: locateFfmpeg(env).path,
    workerConcurrency: int(env, 'RELAY_WORKER_CONCURRENCY', 1, 1000),
    startTimeoutMs,
    apiWaitMs: Math.max(apiWaitMs, startTimeoutMs + 500),
    hlsSegmentSeconds: int(env, 'RELAY_HLS_SEGMENT_SECONDS', 1, 30),
    hlsListSize: int(env, 'RELAY_HLS_LIST_SIZE', 2, 100),
    maxChannelsPerRoom: int(env, 'RELAY_MAX_CHANNELS_PER_ROOM', 1, 100),
    mixMaxMembers: int(env, 'RELAY_MIX_MAX_MEMBERS', 1, 16),
    startRateLimitMs: int(env, 'RELAY_START_RATE_LIMIT_MS', 0, 600000),
    fileUpstreamDir: path.resolve(str(env, 'RELAY_FILE_UPSTREAM_DIR', path.resolve('fixtures'))),
    logLevel,
    adminToken: adminToken(env),
    cluster: clusterConfig(env, (name, detail) => new ConfigError(name, detail)),
    workerCapacity: float(env, 'RELAY_WORKER_CAPACITY', os.cpus().length, 0.01, 1024),
    costs: {
      copy: float(env, 'RELAY_COST_COPY', 0.0125, 0, 64),
      rate550: float(env, 'RELAY_COST_550', 0.24, 0, 64),
      rate900: float(env, 'RELAY_COST_900', 0.34, 0, 64),
      originalEncode: float(env, 'RELAY_COST_ORIGINAL_ENCODE', 0.3, 0, 64),
      watermark: float(env, 'RELAY_COST_WATERMARK', 0.03, 0, 64),
    },
  };
}
