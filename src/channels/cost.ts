import type { ChannelCosts } from '../config/index.js';
import type { Channel } from './types.js';

/** Cores of one audio track converted to AAC (measured: about 1-2 % of a core for 48 kHz stereo). */
export const AUDIO_CONVERT_CORES = 0.02;

/**
 * The CPU cores a channel is expected to use: each tier's kind, plus the decode and overlay of a watermark. ORIGINAL
 * copies (`costs.copy`) unless it is encoded: for a watermark, or because its video is converted (`tracks`, see
 * tracks.ts: `costs.originalEncode`); converted or silent audio beside copied video adds AUDIO_CONVERT_CORES.
 */
export function channelCost(
  ch: Pick<Channel, 'option' | 'watermark' | 'tracks'> & { mix?: Channel['mix'] },
  costs: ChannelCosts,
): number {
  if (ch.mix) return mixCost(ch.mix, ch, costs);
  const wm = !!ch.watermark;
  let cores = wm ? costs.watermark : 0;
  for (const rt of ch.option.rateTypes) {
    if (rt === 10) cores += costs.rate550;
    else if (rt === 20) cores += costs.rate900;
    else {
      cores += wm || ch.tracks?.video.mode === 'converted' ? costs.originalEncode : costs.copy;
      const audio = ch.tracks?.audio?.mode;
      const copiedVideo = ch.tracks?.video.mode !== 'converted';
      if (!wm && copiedVideo && (audio === 'converted' || audio === 'silent')) cores += AUDIO_CONVERT_CORES;
    }
  }
  return Math.round(cores * 10_000) / 10_000;
}

/**
 * One mix member: its feeder decoding 720p30 H.264 and scaling it to its tile, and its frames through the worker, in
 * cores. With MIX_CORES_PER_MPIXEL_S calibrated on `npm run bench -- --only mix` (2026-11-29, 2 cores: 4 members on a
 * 1280×720 30 fps canvas, 0.74 core for the whole stack, median of 3; 4 × 0.08 + 27.6 × 0.015 = 0.73 charged).
 */
export const MIX_MEMBER_CORES = 0.08;
/** Composing the canvas in the worker, piping it to the encoder and x264 (veryfast), per million pixels a second. */
export const MIX_CORES_PER_MPIXEL_S = 0.015;

/**
 * The CPU cores a mix is expected to use: a decode per member, the canvas composed and encoded at its size and frame
 * rate (ORIGINAL), the 550/900 tiers as for a push, and the watermark's overlay.
 */
export function mixCost(
  mix: { members: readonly unknown[]; canvas: { width: number; height: number; fps: number } },
  ch: Pick<Channel, 'option' | 'watermark'>,
  costs: ChannelCosts,
): number {
  const { width, height, fps } = mix.canvas;
  let cores = mix.members.length * MIX_MEMBER_CORES + (ch.watermark ? costs.watermark : 0);
  for (const rt of ch.option.rateTypes)
    cores +=
      rt === 10 ? costs.rate550 : rt === 20 ? costs.rate900 : (width * height * fps * MIX_CORES_PER_MPIXEL_S) / 1e6;
  return Math.round(cores * 10_000) / 10_000;
}
