import type { SrcType } from '../rooms/model.js';

/** Output encodes of the seed's API (option.encode). */
export const ENCODE = { HLS: 1, FLV: 2, HLS_AND_FLV: 3, RAW: 4, RTMP: 5, HLS_AND_RTMP: 6 } as const;
export type Encode = (typeof ENCODE)[keyof typeof ENCODE];
export const ENCODES: readonly Encode[] = [1, 2, 3, 4, 5, 6];

/** Rate tiers (option.rateType): ORIGINAL 0 (copy), 550 kbit/s 10, 900 kbit/s 20. */
export const RATE_TYPE = { ORIGINAL: 0, RATE_550: 10, RATE_900: 20 } as const;
export type RateType = (typeof RATE_TYPE)[keyof typeof RATE_TYPE];

/** sdkType of the seed: Normal 1, IOTCamera 2, CoastCamera 3. */
export type SdkType = 1 | 2 | 3;

/** Start options with every default filled in (what the worker receives). */
export interface ResolvedPushOption {
  encode: Encode;
  rateType: RateType;
  record: boolean;
  waterMark: boolean;
  waterMarkId?: string;
  sdkType: SdkType;
  channelName?: string;
  channelDesc?: string;
}

/** One play URL of a channel, as the seed returns it. */
export interface PlayUrl {
  /** The encode this URL serves: 1 HLS, 2 FLV, 5 RTMP. */
  type: Encode;
  playUrl: string;
  rateType: RateType;
}

/** Where the worker reads the upstream. */
export type ChannelInput =
  | { kind: 'ingest'; streamName: string }
  | { kind: 'external'; url: string; protocolWhitelist: string; isFile: boolean };

/** Lifecycle of a channel: starting → live → stopping → stopped; a start or a run may end in failed. */
export type ChannelState = 'starting' | 'live' | 'stopping' | 'stopped' | 'failed';
export const ACTIVE_STATES: readonly ChannelState[] = ['starting', 'live', 'stopping'];

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

/** The channel record kept in Redis. */
export interface Channel {
  channelId: string;
  sdkAppId: string;
  roomId: number;
  userId: string;
  srcType: SrcType;
  option: ResolvedPushOption;
  input: ChannelInput;
  urls: PlayUrl[];
  /** HLS output folder name under the HLS root (the channel id). */
  hls: boolean;
  state: ChannelState;
  createdAt: number;
  startedAt?: number;
  stoppedAt?: number;
  error?: { code: number; message: string };
  /** Id of the worker that runs it (hostname:pid). */
  worker?: string;
  stats?: ChannelStats;
  history: ChannelTransition[];
}

/** Published on the events channel at every state change. */
export interface ChannelEvent {
  channelId: string;
  state: ChannelState;
  code?: number;
  message?: string;
}
