import type { ChannelLifecycle } from '../channels/lifecycle.js';
import type { Channel } from '../channels/types.js';
import type { RelayConfig } from '../config/index.js';
import type { Logger } from '../log.js';

/** How many times a channel's job was picked up (its runs started) since when: kept in the channel record. */
export interface RunStarts {
  count: number;
  since: number;
}

/** Starts are counted within this window; a run that stays live `STEADY_MS` clears the count. */
export const RUN_STARTS_WINDOW_MS = 10 * 60_000;
export const STEADY_MS = 60_000;

/** The count after one more start at `now`: a new window when the last one is over. */
export function countStart(prev: RunStarts | undefined, now: number, windowMs = RUN_STARTS_WINDOW_MS): RunStarts {
  if (!prev || now - prev.since > windowMs || now < prev.since) return { count: 1, since: now };
  return { count: prev.count + 1, since: prev.since };
}

/**
 * The failure of a channel whose runs keep being started again: each run ended its worker (or the whole relay process)
 * before it could end by itself, so starting it once more would only repeat that. Null while it may run.
 */
export function crashLoopFailure(
  starts: RunStarts,
  maxStarts: number,
  windowMs = RUN_STARTS_WINDOW_MS,
): { code: 6012; message: string } | null {
  if (starts.count <= maxStarts) return null;
  return {
    code: 6012,
    message: `crash loop: the channel's run was started ${starts.count} times within ${Math.round(windowMs / 60_000)} min without staying live, each run ended its worker or media process; it is not run again`,
  };
}

/**
 * Counts this start of the channel's run in its record before anything runs, so a run that kills its worker (or the
 * whole relay) is still counted; past `maxRunStarts` within the window the channel fails (6012) instead of running.
 */
export async function crashLooping(
  ch: Channel,
  deps: {
    config: Pick<RelayConfig, 'maxRunStarts'>;
    lifecycle: Pick<ChannelLifecycle, 'patch' | 'fail'>;
    logger: Logger;
  },
): Promise<boolean> {
  if (ch.state !== 'starting' && ch.state !== 'live') return false;
  const starts = countStart(ch.runStarts, Date.now());
  const failure = crashLoopFailure(starts, deps.config.maxRunStarts);
  if (!failure) {
    await deps.lifecycle.patch(ch.channelId, { runStarts: starts }, ['starting', 'live']);
    return false;
  }
  deps.logger.warn({ channelId: ch.channelId, starts }, failure.message);
  return (await deps.lifecycle.fail(ch, failure, ch.runGen ?? 0)).ok;
}
