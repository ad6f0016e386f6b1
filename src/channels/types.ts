import type { SrcType } from '../rooms/model.js';
import type { RecordFileType } from '../records/index.js';
import type { WatermarkPlacement } from '../watermarks/registry.js';
import type { ChannelTracks } from './tracks.js';
import type { MixSpec } from '../mix/layout.js';

export type { RecordFileType, WatermarkPlacement };

/*
 * The channel vocabulary, defined once: schemas, URL patterns, the CLI and the client derive from these.
 */

/** Output encodes of the seed's API (option.encode). */
export const ENCODE = { HLS: 1, FLV: 2, HLS_AND_FLV: 3, RAW: 4, RTMP: 5, HLS_AND_RTMP: 6 } as const;
export type Encode = (typeof ENCODE)[keyof typeof ENCODE];
export const ENCODES = Object.values(ENCODE) as readonly Encode[];

/** Rate tiers (option.rateType): ORIGINAL 0 (copy), 550 kbit/s 10, 900 kbit/s 20. */
export const RATE_TYPE = { ORIGINAL: 0, RATE_550: 10, RATE_900: 20 } as const;
export type RateType = (typeof RATE_TYPE)[keyof typeof RATE_TYPE];
export const RATE_TYPES = Object.values(RATE_TYPE) as readonly RateType[];

/** sdkType of the seed: Normal 1, IOTCamera 2, CoastCamera 3. */
export const SDK_TYPES = [1, 2, 3] as const;
export type SdkType = (typeof SDK_TYPES)[number];

/**
 * A channel id: `ch_` and 20 hex digits (safe as a stream name, a folder name and a BullMQ job id); unanchored source.
 */
export const CHANNEL_ID_SOURCE = 'ch_[0-9a-f]{20}';
/** Channel ids are checked with this before they reach Redis keys, file paths or the media server. */
export const CHANNEL_ID_PATTERN = new RegExp(`^${CHANNEL_ID_SOURCE}$`);
/** One rate tier as it appears in stream names and HLS folders (`_r10`, `r10/`); unanchored source. */
export const RATE_TYPE_SOURCE = `(?:${RATE_TYPES.join('|')})`;

/** What a start gets for each option it leaves out (SPEC "API"; `encode` has none: the HTTP API requires it). */
export const OPTION_DEFAULTS = {
  rateType: RATE_TYPE.ORIGINAL,
  record: false,
  recordFileType: 4,
  waterMark: false,
  sdkType: 1,
  autoResume: false,
} as const satisfies Partial<Record<string, unknown>>;

/** Start options with every default filled in (what the worker receives). */
export interface ResolvedPushOption {
  encode: Encode;
  /** The first of rateTypes (the seed's single rateType). */
  rateType: RateType;
  /** Every tier asked for, in order, without repeats. */
  rateTypes: RateType[];
  record: boolean;
  recordFileType: RecordFileType;
  waterMark: boolean;
  waterMarkId?: number;
  waterMarkPosition?: WatermarkPlacement;
  sdkType: SdkType;
  channelName?: string;
  channelDesc?: string;
  /** Whether viewers must present the channel password (the password itself is never stored in the option). */
  passwordProtected: boolean;
  /** Resume by itself when the member publishes to the ingest again within the retention time. */
  autoResume: boolean;
}

/** One play URL of a channel, as the seed returns it. */
export interface PlayUrl {
  /** The encode this URL serves: 1 HLS, 2 FLV, 5 RTMP. */
  type: Encode;
  playUrl: string;
  /** The tier; null for the HLS master playlist that lists every tier. */
  rateType: RateType | null;
}

/** Where the worker reads the upstream. */
export type ChannelInput =
  | {
      kind: 'ingest';
      streamName: string;
      /** The member's video bitrate measured by the ingest at start, if known. */ videoKbps?: number;
      /** The member's codecs as the ingest registered them (ffmpeg names; audio `none`: no audio), if known. */
      videoCodec?: string;
      audioCodec?: string;
    }
  | { kind: 'external'; url: string; protocolWhitelist: string; isFile: boolean }
  /** A mix: the worker composes the members of `Channel.mix` and encodes the canvas. */
  | { kind: 'mix' };

/**
 * Lifecycle of a channel: starting → live → stopping → stopped. A live channel whose upstream is lost becomes
 * interrupted and is retained (same id and URLs) until a start resumes it (→ starting) or its retention ends
 * (→ recycled). A start or a run may end in failed.
 */
export const CHANNEL_STATES = ['starting', 'live', 'stopping', 'stopped', 'failed', 'interrupted', 'recycled'] as const;
export type ChannelState = (typeof CHANNEL_STATES)[number];
export const ACTIVE_STATES: readonly ChannelState[] = ['starting', 'live', 'stopping'];
/** States that end a channel for good. */
export const FINAL_STATES: readonly ChannelState[] = ['stopped', 'failed', 'recycled'];

/** Live figures the worker reports about once a second. */
export interface ChannelStats {
  frames: number;
  fps: number;
  speed: number;
  /** Output time of the stream in ms. */
  outTimeMs: number;
  /** Bytes read from the upstream per second, as kbit/s (measured from ffmpeg's progress). */
  bitrateKbps?: number;
  updatedAt: number;
}

/** A state change with its time and reason. */
export interface ChannelTransition {
  state: ChannelState;
  at: number;
  reason: string;
}

/**
 * An external destination the channel is relayed to (issue 14: a third-party CDN). Its URL holds the stream key: a
 * secret, shown only to the owning app (`GET /v1/push/{channelId}/targets`) and redacted everywhere else.
 */
export interface PushTarget {
  /** `tg_` and 16 hex digits. */
  targetId: string;
  url: string;
  /** The tier sent (one of the channel's); none: the channel's best tier. */
  rateType?: RateType;
  addedAt: number;
}

/**
 * A push target's state: connecting → live (accepted by the destination) → retrying (backoff) → connecting …; failed
 * after its retries; stopped once its run ended (the channel stopped, handed over or failed): its ffmpeg is gone.
 */
export const TARGET_STATES = ['connecting', 'live', 'retrying', 'failed', 'stopped'] as const;
export type TargetState = (typeof TARGET_STATES)[number];

/** What the worker reports of a push target, about once a second. */
export interface PushTargetStatus {
  state: TargetState;
  /** Bytes written to the destination by this run (every attempt). */
  bytesSent: number;
  /** Attempts since the target was last live for a sustained time (30 s; or added). */
  attempts: number;
  /** When the target entered its state (ms). */
  since: number;
  /** The last error, one short line with its secrets redacted. */
  lastError?: string;
  updatedAt: number;
}

/** The channel record kept in Redis. */
export interface Channel {
  channelId: string;
  sdkAppId: string;
  /** The account whose channel limit this channel counts against. */
  accountId: string;
  roomId: number;
  userId: string;
  srcType: SrcType;
  option: ResolvedPushOption;
  input: ChannelInput;
  urls: PlayUrl[];
  /** Whether the channel writes HLS. */
  hls: boolean;
  /** Recording task of the channel (record: true); its files keep this id across worker handovers. */
  recordTaskId?: number;
  /**
   * Why the channel stopped recording while it stays live (50007 disk full, 20102 account storage quota reached), and
   * when (ms); no run of the channel records again.
   */
  recordStopped?: { code: number; message: string; at: number };
  /** sha256 of `<channelId>:<password>`; viewers present the password or a token derived from it. Never returned. */
  passwordHash?: string;
  /** The watermark image used (copied at start, so deleting the registry entry later cannot break a resume). */
  watermark?: { id: number; file: string; width: number; height: number };
  state: ChannelState;
  createdAt: number;
  startedAt?: number;
  stoppedAt?: number;
  /** Why it failed; `hint` when the failure has its own (an egress refusal names RELAY_UPSTREAM_ALLOW). */
  error?: { code: number; message: string; hint?: string };
  /** When the upstream was lost (state interrupted). */
  interruptedAt?: number;
  /** Until when an interrupted channel is retained with its id and URLs. */
  retainUntil?: number;
  /** Resume by itself when the member publishes again (set when the media server, not the member, went away). */
  resumeOnReturn?: boolean;
  /** Expected CPU cores (CPU-cost admission). */
  cost?: number;
  /** ORIGINAL's per-track plan (copied or converted, and why): from the ingest at start, from ffmpeg once it ran. */
  tracks?: ChannelTracks;
  /** ffmpeg restarts of the current run (crash or stall), for the API and metrics. */
  restarts?: number;
  /** Starts of the channel's run (its job picked up) in the current window; cleared once a run stays live. */
  runStarts?: { count: number; since: number };
  /** Id of the worker that runs it (hostname:pid). */
  worker?: string;
  /**
   * The media node its streams are published into (cluster/nodes.ts), chosen at start by placement and again by its
   * worker when that node is gone; absent: the one media server of RELAY_MEDIA_INTERNAL_HOST.
   */
  mediaNode?: string;
  /**
   * Generation of the channel's run (fencing token): raised by one, atomically, each time a runner begins the channel.
   * A runner's moves and its ffmpeg's internal URLs carry it; those of an older generation are refused.
   */
  runGen?: number;
  stats?: ChannelStats;
  /** External destinations (issue 14), written by the API; at most MAX_PUSH_TARGETS. */
  pushTargets?: PushTarget[];
  /** Their state by targetId, written by the worker that runs the channel (fenced by `runGen`). */
  targetStatus?: Record<string, PushTargetStatus>;
  /** A mix channel's members, layout and canvas (its `userId` is MIX_USER_ID, its input `mix`). */
  mix?: MixSpec;
  history: ChannelTransition[];
}
