import { existsSync } from 'node:fs';
import path from 'node:path';
import type { RelayConfig } from '../config/index.js';
import type { Channel, RateType } from '../channels/types.js';
import { channelStreams, LIVE_APP } from '../channels/urls.js';
import { bestFirst, DEFAULT_SOURCE_KBPS, originalConversion, TIERS, tierEncoding } from '../channels/tiers.js';
import { recordSinks, taskDir } from '../records/index.js';
import { INGEST_APP } from '../rooms/ingest.js';
import { MAXRATE_FACTOR, type RelayPlan, type Sink, type SourceSpec, type TierSpec } from '../media/ffmpeg/args.js';
import { SRC_TYPE_NAMES } from '../rooms/model.js';
import type { FfmpegProcess, InputVideo } from '../media/ffmpeg/process.js';
import { MasterPlaylistWriter, type MasterVariant } from '../media/hls-master.js';
import { channelHlsRoot } from '../channels/layout.js';
import type { Logger } from '../log.js';
import { runTokenQuery } from '../auth/run-tokens.js';
import type { NodeEndpoint } from '../cluster/nodes.js';

/** Who signs the internal URLs of a plan: the internal secret and the run generation (the channel's `runGen`). */
export interface RunAuth {
  secret: string;
  gen: number;
}

/**
 * Where the worker reads a channel's member: the ingest (with a single-use read token of this run, minted now) or
 * the registered external URL.
 */
export function sourceOf(ch: Channel, cfg: RelayConfig, run: RunAuth, at?: MediaAt['ingest']): SourceSpec {
  const member = `${ch.userId}/${SRC_TYPE_NAMES[ch.srcType]}`;
  if (ch.input.kind === 'mix') throw new Error('a mix has no single source');
  if (ch.input.kind === 'external')
    return {
      member,
      url: ch.input.url,
      protocolWhitelist: ch.input.protocolWhitelist,
      loopFile: ch.input.isFile,
      untrustedClock: true,
    };
  const streamPath = `/${INGEST_APP}/${ch.input.streamName}`;
  const query = runTokenQuery(run.secret, 'read', streamPath, { channelId: ch.channelId, gen: run.gen });
  return {
    member,
    url: `rtmp://${at?.host ?? cfg.mediaInternalHost}:${at?.rtmpPort ?? cfg.rtmpPort}${streamPath}?${query}`,
    protocolWhitelist: 'rtmp,tcp',
    fastProbe: true,
  };
}

/** The media nodes an attempt uses (worker/run-node.ts): where it publishes, where its ingest member is read. */
export interface MediaAt {
  publish?: NodeEndpoint;
  ingest?: NodeEndpoint;
}

/** `host:port` of the RTMP server an attempt publishes to. */
export function publishHost(cfg: Pick<RelayConfig, 'mediaInternalHost' | 'rtmpPort'>, at: MediaAt): string {
  return `${at.publish?.host ?? cfg.mediaInternalHost}:${at.publish?.rtmpPort ?? cfg.rtmpPort}`;
}

/**
 * The ffmpeg plan of one attempt of a channel's run: its source (the member's upstream, read once), and per tier the
 * sinks — RTMP into the media server, the live HLS window, and recordings on the best tier (none once recording
 * stopped: `recordStopped`). Its internal URLs carry run tokens minted by this call (single use, RUN_TOKEN_TTL_MS):
 * make a new plan for each ffmpeg.
 */
export function planFor(ch: Channel, cfg: RelayConfig, run: RunAuth, at: MediaAt = {}): RelayPlan {
  const host = publishHost(cfg, at);
  const best = bestFirst(ch.option.rateTypes)[0];
  const tiers: TierSpec[] = channelStreams(ch.channelId, ch.option.rateTypes).map((s) => {
    const livePath = `/${LIVE_APP}/${s.streamName}`;
    // No password hash here: the media server reads it from the channel record (argv is visible to local users).
    const query = runTokenQuery(run.secret, 'publish', livePath, { channelId: ch.channelId, gen: run.gen });
    const rtmp: Sink = { kind: 'rtmp', url: `rtmp://${host}${livePath}?${query}` };
    const sinks: Sink[] = [rtmp];
    if (ch.hls)
      sinks.push({
        kind: 'hls',
        dir: path.join(cfg.hlsDir, s.hlsDir),
        segmentSeconds: cfg.hlsSegmentSeconds,
        listSize: cfg.hlsListSize,
      });
    if (ch.recordTaskId !== undefined && !ch.recordStopped && s.rateType === best) {
      sinks.push(
        ...recordSinks(
          taskDir(cfg.recordsDir, ch.sdkAppId, ch.recordTaskId),
          ch.channelId,
          ch.recordTaskId,
          ch.option.recordFileType,
          cfg.recordMaxSeconds,
          cfg.hlsSegmentSeconds,
        ),
      );
    }
    const kbps = sourceKbpsOf(ch);
    if (ch.mix) return { sinks, encode: mixEncoding(s.rateType, ch.mix.canvas, cfg.hlsSegmentSeconds) };
    const encode = tierEncoding(s.rateType, !!ch.watermark, cfg.hlsSegmentSeconds, kbps);
    if (encode || s.rateType !== 0) return { sinks, ...(encode ? { encode } : {}) };
    return { sinks, ...originalConversion(ch.tracks, cfg.hlsSegmentSeconds, kbps) };
  });
  const wm = ch.watermark;
  const place = ch.option.waterMarkPosition;
  return {
    sources: ch.mix ? mixSources(ch.mix.canvas) : [sourceOf(ch, cfg, run, at.ingest)],
    tiers,
    ...(ch.mix ? { audioInput: 1 } : {}),
    ...(ch.tracks?.audio?.mode === 'silent' ? { silentAudio: true } : {}),
    ...(wm && place
      ? {
          watermark: {
            file: wm.file,
            relativeWidth: place.relativeWidth,
            aspect: wm.height / wm.width,
            corner: place.corner,
            margin: place.margin,
          },
        }
      : {}),
  };
}

/** A mix's encoder reads the composed canvas (stdin) and the mixed audio (fd 3) the worker writes. */
export function mixSources(c: { width: number; height: number; fps: number }): SourceSpec[] {
  const { width, height, fps } = c;
  return [
    { member: 'mix/canvas', url: 'pipe:0', protocolWhitelist: 'pipe', raw: { kind: 'video', width, height, fps } },
    { member: 'mix/audio', url: 'pipe:3', protocolWhitelist: 'pipe', raw: { kind: 'audio' } },
  ];
}

/** Bits per pixel of a mix's ORIGINAL tier (x264 veryfast: 0.1 keeps flat tiles and faces clean). */
const MIX_BITS_PER_PIXEL = 0.1;

/** Every tier of a mix is encoded: ORIGINAL at the canvas size at about 0.1 bit per pixel, 550/900 as usual. */
export function mixEncoding(rt: RateType, c: { width: number; height: number; fps: number }, keyframeSeconds: number) {
  const tier = tierEncoding(rt, true, keyframeSeconds);
  if (rt !== 0 && tier) return tier;
  const videoKbps = Math.max(300, Math.round((c.width * c.height * c.fps * MIX_BITS_PER_PIXEL) / 1000));
  return { videoKbps, audioKbps: 128, keyframeSeconds };
}

/** Folders a plan writes into, made before ffmpeg starts. */
export function planDirs(plan: RelayPlan): string[] {
  return plan.tiers
    .flatMap((t) =>
      t.sinks.map((s) =>
        s.kind === 'hls' || s.kind === 'record-hls' ? s.dir : s.kind === 'record' ? path.dirname(s.pattern) : null,
      ),
    )
    .filter((d): d is string => d !== null);
}

/** The codecs forecast before a segment is read (MasterPlaylistWriter then writes the streams' own). */
const CODECS: Record<string, string> = {
  baseline: 'avc1.42e01e',
  'constrained baseline': 'avc1.42e01e',
  main: 'avc1.4d401f',
  high: 'avc1.640028',
};
/** MPEG-TS overhead over the elementary streams: 4 of 188 bytes per packet, PES headers and padding, PAT/PMT/PCR. */
const TS_OVERHEAD = { factor: 1.05, kbps: 48 };

/**
 * The variants of a multi-tier HLS channel's master playlist, forecast from the upstream's size as ffmpeg reported it:
 * its displayed size (width and height swapped when `reported.rotation` turns it a quarter; every tier is then encoded
 * upright), and per encoded tier its encoder's cap (maxrate + audio + TS overhead) as BANDWIDTH.
 */
export function masterVariants(
  ch: Channel,
  src: InputVideo | null,
  sourceKbps: number | undefined,
  reported?: { rotation: number } | null,
): MasterVariant[] {
  const quarter = Math.abs(Math.round((reported?.rotation ?? 0) / 90)) % 2 === 1;
  const srcW = (quarter ? src?.height : src?.width) ?? 1280;
  const srcH = (quarter ? src?.width : src?.height) ?? 720;
  return bestFirst(ch.option.rateTypes).map((rt) => {
    const t = TIERS[rt];
    const encoded = rt !== 0 || !!ch.watermark || ch.tracks?.video.mode === 'converted';
    const height = t.maxHeight ? Math.min(t.maxHeight, srcH) : srcH;
    const width = Math.round((srcW * height) / srcH / 2) * 2;
    const enc = tierEncoding(rt, !!ch.watermark, 2, sourceKbps);
    const kbps = enc
      ? (enc.videoKbps * MAXRATE_FACTOR + enc.audioKbps) * TS_OVERHEAD.factor + TS_OVERHEAD.kbps
      : ((sourceKbps ?? DEFAULT_SOURCE_KBPS) + 128) * TS_OVERHEAD.factor + TS_OVERHEAD.kbps;
    const video = encoded ? CODECS.main! : (CODECS[(src?.profile ?? 'high').toLowerCase()] ?? CODECS.high!);
    return {
      forecast: {
        uri: `r${rt}/index.m3u8`,
        bandwidth: Math.round(kbps * 1000),
        width,
        height,
        codecs: `${video},mp4a.40.2`,
      },
      capped: !!enc,
    };
  });
}

/**
 * Keeps the master playlist of a multi-tier HLS channel (RFC 8216 4.3.4) true to the streams of this run: forecast
 * from what ffmpeg reported of the upstream, then measured from the segments. Written once every tier has a segment,
 * and by two target durations at the latest, before the media server's three-target-duration hold of a player ends.
 */
export function masterWriter(ch: Channel, ff: FfmpegProcess, cfg: RelayConfig, logger: Logger): MasterPlaylistWriter {
  const kbps = sourceKbpsOf(ch);
  const variants = masterVariants(ch, ff.inputVideo, kbps, ff.inputCodecs);
  const file = path.join(channelHlsRoot(ch.channelId, cfg), 'index.m3u8');
  return new MasterPlaylistWriter(file, variants, { pollMs: 250, deadlineMs: cfg.hlsSegmentSeconds * 2000, logger });
}

/**
 * The plan with `append` set on each HLS sink whose playlist exists (a resumed channel, a restarted ffmpeg, a
 * recording continued), so ffmpeg continues it behind an EXT-X-DISCONTINUITY, and starts a fresh one without.
 */
export function continuePlaylists(plan: RelayPlan): RelayPlan {
  const listed = (s: Sink): Sink =>
    s.kind === 'hls' || s.kind === 'record-hls' ? { ...s, append: existsSync(path.join(s.dir, 'index.m3u8')) } : s;
  return { ...plan, tiers: plan.tiers.map((t) => ({ ...t, sinks: t.sinks.map(listed) })) };
}

/** The upstream video's bit rate, kbit/s: the ingest's measure, else what ffmpeg reported of an external upstream. */
function sourceKbpsOf(ch: Channel): number | undefined {
  return ch.input.kind === 'ingest' ? ch.input.videoKbps : ch.tracks?.video.kbps;
}
