import type { Logger } from '../log.js';
import type { StartFailureKind } from '../media/ffmpeg/process.js';
import type { Channel } from '../channels/types.js';
import type { RoomRegistry } from '../rooms/registry.js';
import { isIngestMember } from '../rooms/model.js';

/** Failures older than this no longer count towards giving up. */
export const RESTART_WINDOW_MS = 60_000;
/** Wait before the first restart; it doubles with each failure in the window… */
export const BACKOFF_BASE_MS = 500;
/** …up to this. */
export const BACKOFF_MAX_MS = 8000;

/** What to do after an ffmpeg of a running channel crashed, stalled or could not restart. */
export type RestartDecision =
  | { action: 'restart'; backoffMs: number; failures: number }
  /** Too many failures: the channel fails. */
  | { action: 'fail'; failures: number }
  /** Too many failures while the media server was unreachable: interrupt, resume when the member publishes again. */
  | { action: 'interrupt'; failures: number };

/**
 * The restart policy of one run: restart with a doubling backoff (0.5 s … 8 s), and give up after more than
 * `maxRestarts` failures within a minute.
 */
export class RestartPolicy {
  private readonly failures: number[] = [];

  constructor(private readonly maxRestarts: number) {}

  /** Counts a failure at `now`; `mediaDown` when ffmpeg's errors say the media server refused it. */
  afterFailure(mediaDown: boolean, now = Date.now()): RestartDecision {
    this.failures.push(now);
    while (this.failures.length && this.failures[0]! < now - RESTART_WINDOW_MS) this.failures.shift();
    const failures = this.failures.length;
    if (failures > this.maxRestarts) return { action: mediaDown ? 'interrupt' : 'fail', failures };
    return { action: 'restart', backoffMs: Math.min(BACKOFF_BASE_MS * 2 ** (failures - 1), BACKOFF_MAX_MS), failures };
  }
}

/** What a start failure of ffmpeg leads to (a restart goes through RestartPolicy.afterFailure). */
export type StartFailureAction = 'fail' | 'interrupt' | 'restart';

/**
 * Decides after an ffmpeg did not start: a brand-new channel refuses its start on the first failure, and a source
 * without video, or one this ffmpeg cannot relay, never gets better; the media server being away (restarting) is retried; otherwise an upstream that is
 * unreadable or gone interrupts the channel. `upstreamPresent` is asked only when it matters.
 */
export async function afterStartFailure(
  kind: StartFailureKind,
  o: { firstStartOfNewChannel: boolean; mediaDown: boolean; upstreamPresent: () => Promise<boolean> },
): Promise<StartFailureAction> {
  if (o.firstStartOfNewChannel || kind === 'no-video' || kind === 'unsupported') return 'fail';
  if (o.mediaDown) return 'restart';
  if (kind !== 'exited' || !(await o.upstreamPresent())) return 'interrupt';
  return 'restart';
}

/** Whether the member still publishes (ingest); an external URL is assumed there until ffmpeg cannot read it. */
export async function upstreamPresent(rooms: Pick<RoomRegistry, 'get'>, ch: Channel): Promise<boolean> {
  if (ch.input.kind !== 'ingest') return true;
  const up = await rooms.get(ch.sdkAppId, ch.roomId, ch.userId, ch.srcType);
  return isIngestMember(up);
}

/**
 * Whether ffmpeg's errors say the media server at `host` (host:port) refused connections (it is down or restarting).
 */
export function mediaServerRefused(stderr: readonly string[], host: string): boolean {
  return stderr.some((l) => l.includes(host) && /Connection refused|Connection reset|Broken pipe/i.test(l));
}

/**
 * Kills ffmpeg when its output time has not moved for `stallMs` (checked every second), so the restart policy takes
 * over; returns the function that stops watching.
 */
export function watchStall(
  ff: { readonly progress: { outTimeUs: number } | null; kill(): Promise<unknown> },
  stallMs: number,
  log: Pick<Logger, 'warn'>,
): () => void {
  let lastOut = -1;
  let lastChange = Date.now();
  const timer = setInterval(() => {
    const out = ff.progress?.outTimeUs ?? -1;
    if (out !== lastOut) {
      lastOut = out;
      lastChange = Date.now();
      return;
    }
    if (Date.now() - lastChange >= stallMs) {
      log.warn({ stalledMs: Date.now() - lastChange }, 'ffmpeg stalled: killing it');
      void ff.kill();
    }
  }, 1000);
  return () => clearInterval(timer);
}
