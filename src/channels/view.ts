import { redact, redactTargetUrl } from '../log.js';
import { SRC_TYPE_NAMES } from '../rooms/model.js';
import type { SrcType } from '../rooms/model.js';
import type { ChannelTracks } from './tracks.js';
import type { MixCanvas, MixLayoutKind, MixMember } from '../mix/layout.js';
import type {
  Channel,
  ChannelState,
  ChannelStats,
  ChannelTransition,
  PlayUrl,
  PushTarget,
  PushTargetStatus,
  RateType,
  ResolvedPushOption,
} from './types.js';

/** The channel as `GET /v1/push/{channelId}` shows it (and the typed client returns it): no secrets. */
export interface ChannelView {
  channelId: string;
  roomId: number;
  userId: string;
  srcType: SrcType;
  srcTypeName: 'camera' | 'screen';
  state: ChannelState;
  option: ResolvedPushOption;
  urls: PlayUrl[];
  recordTaskId: number | null;
  /** Set when recording stopped while the channel went on (50007 disk full, 20102 storage quota reached). */
  recordStopped: { code: number; message: string; at: number } | null;
  waterMarkId: number | null;
  /** Where the worker reads: the ingest stream name, or the external URL with its secrets redacted. */
  upstream: { source: 'ingest'; streamName: string } | { source: 'external'; url: string } | { source: 'mix' };
  /** A mix: its members, layout and canvas (the background image as its id). */
  mix?: { members: MixMember[]; layout: MixLayoutKind; canvas: Omit<MixCanvas, 'backgroundImageFile'> };
  /** Times in ms since the epoch. */
  createdAt: number;
  startedAt: number | null;
  stoppedAt: number | null;
  error: { code: number; message: string } | null;
  interruptedAt: number | null;
  retainUntil: number | null;
  /** ffmpeg restarts of the current run. */
  restarts: number;
  /** Expected CPU cores. */
  cost: number | null;
  /**
   * ORIGINAL's tracks: each copied or converted (to h264/aac) and why, e.g. `{video: {codec: 'vp8', mode:
   * 'converted', to: 'h264', why: …}, audio: {codec: 'aac', mode: 'copied'}}`; audio null when the upstream has none.
   * Null without a copied ORIGINAL tier (tiers only, a watermark: then set only when a silent track is added) or
   * before anything is known of the codecs.
   */
  tracks: ChannelTracks | null;
  /** The worker running it (hostname:pid). */
  worker: string | null;
  /** The media node its streams are published into (README "Scaling out"); null: the one media server. */
  mediaNode: string | null;
  stats: ChannelStats | null;
  /** Push targets with their state; URLs as scheme and host only (the owning app lists them in full: GET …/targets). */
  pushTargets: PushTargetView[];
  history: ChannelTransition[];
}

/** The channel as the API shows it: no secrets (external URLs redacted, internal fields dropped). */
export function publicChannel(ch: Channel): ChannelView {
  return {
    channelId: ch.channelId,
    roomId: ch.roomId,
    userId: ch.userId,
    srcType: ch.srcType,
    srcTypeName: SRC_TYPE_NAMES[ch.srcType],
    state: ch.state,
    option: ch.option,
    urls: ch.urls,
    recordTaskId: ch.recordTaskId ?? null,
    recordStopped: ch.recordStopped ?? null,
    waterMarkId: ch.watermark?.id ?? null,
    upstream:
      ch.input.kind === 'ingest'
        ? { source: 'ingest', streamName: ch.input.streamName }
        : ch.input.kind === 'mix'
          ? { source: 'mix' as const }
          : { source: 'external', url: redact(ch.input.url) },
    ...(ch.mix
      ? { mix: { members: ch.mix.members, layout: ch.mix.layout, canvas: mixCanvasView(ch.mix.canvas) } }
      : {}),
    createdAt: ch.createdAt,
    startedAt: ch.startedAt ?? null,
    stoppedAt: ch.stoppedAt ?? null,
    error: ch.error ?? null,
    interruptedAt: ch.interruptedAt ?? null,
    retainUntil: ch.retainUntil ?? null,
    restarts: ch.restarts ?? 0,
    cost: ch.cost ?? null,
    tracks: ch.tracks ?? null,
    worker: ch.worker ?? null,
    mediaNode: ch.mediaNode ?? null,
    stats: ch.stats ?? null,
    pushTargets: (ch.pushTargets ?? []).map((t) => targetView(ch, t, false)),
    history: ch.history,
  };
}

/** A push target as the owning app sees it: its URL in full (no one else does), and its live status. */
export interface PushTargetView extends Omit<PushTargetStatus, 'lastError' | 'updatedAt'> {
  targetId: string;
  url: string;
  rateType: RateType | null;
  addedAt: number;
  lastError: string | null;
  updatedAt: number | null;
}

/** A target's view; `full` (the owning app) shows its URL, else scheme and host only. */
export function targetView(ch: Pick<Channel, 'state' | 'targetStatus'>, t: PushTarget, full: boolean): PushTargetView {
  const stored = ch.targetStatus?.[t.targetId];
  // no run sends to it while the channel is not live: whatever its last run wrote, it is not live now
  const idle = ch.state !== 'live' && ch.state !== 'starting' && stored?.state !== 'failed';
  const s = idle && stored ? { ...stored, state: 'stopped' as const, since: stored.updatedAt } : stored;
  return {
    targetId: t.targetId,
    url: full ? t.url : redactTargetUrl(t.url),
    rateType: t.rateType ?? null,
    addedAt: t.addedAt,
    state: s?.state ?? (idle ? 'stopped' : 'connecting'),
    bytesSent: s?.bytesSent ?? 0,
    attempts: s?.attempts ?? 0,
    since: s?.since ?? t.addedAt,
    lastError: s?.lastError ?? null,
    updatedAt: s?.updatedAt ?? null,
  };
}

// the canvas without the server's file path of its background image
function mixCanvasView(c: NonNullable<Channel['mix']>['canvas']) {
  const { backgroundImageFile: _file, ...rest } = c;
  return rest;
}
