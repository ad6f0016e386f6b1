import type { ChannelCosts } from '../config/index.js';
import type { Channel } from './types.js';

/** The CPU cores a channel is expected to use: each tier's kind, plus the decode and overlay of a watermark. */
export function channelCost(ch: Pick<Channel, 'option' | 'watermark'>, costs: ChannelCosts): number {
  const wm = !!ch.watermark;
  let cores = wm ? costs.watermark : 0;
  for (const rt of ch.option.rateTypes) {
    if (rt === 10) cores += costs.rate550;
    else if (rt === 20) cores += costs.rate900;
    else cores += wm ? costs.originalEncode : costs.copy;
  }
  return Math.round(cores * 10_000) / 10_000;
}
