import type { PushTarget, RateType } from '../channels/types.js';
import { makePushTargets } from '../targets/check.js';
import type { ApiDeps } from './app.js';

/**
 * The checked push targets of a start's option (push or mix start): each destination allowed by the egress policy
 * and, when the relay's ffmpeg is known, one it can write; none when the option has none.
 */
export async function targetsOf(
  option: { pushTargets?: readonly { url: string; rateType?: number }[] },
  rateTypes: readonly RateType[],
  deps: Pick<ApiDeps, 'config' | 'ffmpeg'>,
): Promise<PushTarget[]> {
  if (!option.pushTargets) return [];
  const checks = { egress: deps.config.egress, ...(deps.ffmpeg ? { ffmpeg: deps.ffmpeg } : {}) };
  return makePushTargets(option.pushTargets, rateTypes, checks);
}
