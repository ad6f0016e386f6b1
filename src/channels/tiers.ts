import type { EncodeSpec, TierSpec } from '../media/ffmpeg/args.js';
import type { ChannelTracks } from './tracks.js';
import type { RateType } from './types.js';

/** What each rate tier delivers (README "Rate tiers"). ORIGINAL copies; the others are encoded from one decode. */
export const TIERS: Record<RateType, { name: string; maxHeight?: number; totalKbps?: number }> = {
  0: { name: 'ORIGINAL' },
  10: { name: '550', maxHeight: 360, totalKbps: 550 },
  20: { name: '900', maxHeight: 540, totalKbps: 900 },
};

/** Audio bitrate of encoded tiers. */
export const TIER_AUDIO_KBPS = 64;
/** Bitrate used for ORIGINAL re-encoded (watermark) when the upstream's own is not known. */
export const DEFAULT_SOURCE_KBPS = 2000;

/**
 * The encoding of a tier, or undefined when it is copied. ORIGINAL is only encoded when a watermark must be drawn:
 * at the upstream's size and about its bitrate.
 */
export function tierEncoding(
  rateType: RateType,
  watermark: boolean,
  keyframeSeconds: number,
  sourceKbps?: number,
): EncodeSpec | undefined {
  const t = TIERS[rateType];
  if (t.totalKbps)
    return {
      maxHeight: t.maxHeight!,
      videoKbps: t.totalKbps - TIER_AUDIO_KBPS,
      audioKbps: TIER_AUDIO_KBPS,
      keyframeSeconds,
    };
  if (!watermark) return undefined;
  return { videoKbps: Math.max(300, Math.round(sourceKbps ?? DEFAULT_SOURCE_KBPS)), audioKbps: 128, keyframeSeconds };
}

/**
 * How a copied ORIGINAL tier handles tracks that do not fit (tracks.ts): converted video makes it an encoded tier at
 * the upstream's size and about its bitrate (`sourceKbps`, else DEFAULT_SOURCE_KBPS), keeping fitting audio as is;
 * converted (or silent: the plan's `silentAudio`) audio alone is encoded to AAC beside the copied video. Nothing when every track is copied.
 */
export function originalConversion(
  tracks: ChannelTracks | undefined,
  keyframeSeconds: number,
  sourceKbps?: number,
): Pick<TierSpec, 'encode' | 'audio'> {
  if (!tracks) return {};
  const audioFits = tracks.audio?.mode === 'copied' && tracks.audio.codec !== null;
  if (tracks.video.mode === 'converted')
    return {
      encode: tierEncoding(0, true, keyframeSeconds, sourceKbps)!,
      ...(audioFits ? { audio: 'copy' as const } : {}),
    };
  return tracks.audio && tracks.audio.mode !== 'copied' ? { audio: 'aac' } : {};
}

/** Sorts tiers best first (ORIGINAL, then by bitrate), the order of a master playlist. */
export function bestFirst(rateTypes: readonly RateType[]): RateType[] {
  const rank = (r: RateType) => (r === 0 ? Infinity : TIERS[r].totalKbps!);
  return [...rateTypes].sort((a, b) => rank(b) - rank(a));
}
