import fs from 'node:fs/promises';
import path from 'node:path';
import type { ChannelLifecycle, ChannelRef } from '../channels/lifecycle.js';
import { taskDir } from '../records/index.js';
import { finaliseHlsRecording, recordingHasMedia, removeEmptyRecordings } from '../records/media-check.js';

/**
 * Tells the app (webhook `record.file_ready`) about a channel's recording files once each is complete: every file but
 * the one being written while ffmpeg runs, and all of them once it has ended. Each file is announced once per run; a
 * complete file without media (a run that met a full disk) is deleted instead, never announced.
 */
export class RecordFileAnnouncer {
  private readonly announced = new Set<string>();

  constructor(
    private readonly lifecycle: Pick<ChannelLifecycle, 'recordFileReady'>,
    private readonly recordsDir: string,
  ) {}

  /** Announces the complete files of the channel's task; `final` when its ffmpeg has ended. */
  async announce(ch: ChannelRef & { recordTaskId?: number }, final: boolean): Promise<void> {
    const taskId = ch.recordTaskId;
    if (taskId === undefined) return;
    const dir = taskDir(this.recordsDir, ch.sdkAppId, taskId);
    let names: string[];
    try {
      names = (await fs.readdir(dir)).filter((n) => /\.(mp4|flv)$/.test(n)).sort();
    } catch {
      return;
    }
    for (const format of ['mp4', 'flv']) {
      const files = names.filter((n) => n.endsWith(`.${format}`));
      for (const name of final ? files : files.slice(0, -1)) {
        if (this.announced.has(name)) continue;
        const file = path.join(dir, name);
        this.announced.add(name);
        if (!(await recordingHasMedia(file))) {
          await fs.rm(file, { force: true });
          continue;
        }
        const st = await fs.stat(file);
        await this.lifecycle.recordFileReady(ch, { recordTaskId: taskId, name, format, bytes: st.size });
      }
    }
  }

  /**
   * After the run's ffmpeg ended at `endedAt` (ms), however the run ended: deletes its files without media, finalises
   * the HLS recording (ENDLIST, complete segments only) and announces what is left. Files written after `endedAt`
   * belong to another run of the channel and are left alone.
   */
  async finish(ch: ChannelRef & { recordTaskId?: number }, endedAt: number): Promise<void> {
    if (ch.recordTaskId === undefined) return;
    const dir = taskDir(this.recordsDir, ch.sdkAppId, ch.recordTaskId);
    for (const name of await removeEmptyRecordings(dir, endedAt)) this.announced.add(name);
    await finaliseHlsRecording(path.join(dir, 'hls'), endedAt);
    await this.announce(ch, true);
  }
}
