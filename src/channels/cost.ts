import type { ChannelCosts } from '../config/index.js';
import type { Channel } from './types.js';

/** Cores of one audio track converted to AAC (measured: about 1-2 % of a core for 48 kHz stereo). */
export const AUDIO_CONVERT_CORES = 0.02;

/**
 * The CPU cores a channel is expected to use: each tier's kind, plus the decode and overlay of a watermark. ORIGINAL
 * copies (`costs.copy`) unless it is encoded: for a watermark, or because its video is converted (`tracks`, see
 * tracks.ts: `costs.originalEncode`); converted or silent audio beside copied video adds AUDIO_CONVERT_CORES.
 */
export function channelCost(ch: Pick<Channel, 'option' | 'watermark' | 'tracks'>, costs: ChannelCosts): number {
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
