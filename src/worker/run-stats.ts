import type { Logger } from '../log.js';
import type { ChannelLifecycle } from '../channels/lifecycle.js';
import type { FfmpegProcess } from '../media/ffmpeg/process.js';
import { progressFigures } from '../media/ffmpeg/progress.js';
import type { RunRecording } from './recording.js';
import type { EndReason } from './end-signal.js';

/** What a run's stats write needs. */
export interface StatsTick {
  lifecycle: Pick<ChannelLifecycle, 'patchRun'>;
  channelId: string;
  gen: number;
  /** Ends the run from inside: a stop whose message never arrived, or a newer run. */
  local: AbortController;
  log: Logger;
}

/** Saves the figures of a run's ffmpeg and, by the same write, notices a stop whose message never arrived. */
export async function statsTick(t: StatsTick, ff: FfmpegProcess, rec: RunRecording): Promise<void> {
  rec.tick(() => ff.close()); // files announced; quota or full disk: ffmpeg ends its files
  const stats = ff.progress ? { stats: progressFigures(ff.progress, Date.now()) } : {};
  try {
    const live = await t.lifecycle.patchRun(t.channelId, t.gen, stats, ['live']);
    if (!live.ok && !t.local.signal.aborted) t.local.abort((live.fenced ? 'superseded' : 'stop') as EndReason);
  } catch (e) {
    t.log.debug({ err: (e as Error).message }, 'stats not saved');
  }
}
