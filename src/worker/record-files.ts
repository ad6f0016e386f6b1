import fs from 'node:fs/promises';
import path from 'node:path';
import type { ChannelLifecycle, ChannelRef } from '../channels/lifecycle.js';
import { taskDir } from '../records/index.js';
import {
  finaliseHlsRecording,
  listedSegments,
  recordingHasMedia,
  removeEmptyRecordings,
} from '../records/media-check.js';

/**
 * Tells the app (webhook `record.file_ready`) about a channel's recording files once each is complete: every file but
 * the one being written while ffmpeg runs, and all of them once it has ended. Each file is announced once per run; a
 * complete file without media (a run that met a full disk) is deleted instead, never announced.
 */
export class RecordFileAnnouncer {
  private readonly announced = new Set<string>();
  /** The HLS recording's playlist as last read while ffmpeg ran, and its mtime (ffmpeg ≥ 5 empties it on a full disk). */
  private playlist: { text: string; mtimeMs: number } | null = null;

  constructor(
    private readonly lifecycle: Pick<ChannelLifecycle, 'recordFileReady'>,
    private readonly recordsDir: string,
  ) {}

  /** Announces the complete files of the channel's task; `final` when its ffmpeg has ended. */
  async announce(ch: ChannelRef & { recordTaskId?: number }, final: boolean): Promise<void> {
    const taskId = ch.recordTaskId;
    if (taskId === undefined) return;
    const dir = taskDir(this.recordsDir, ch.sdkAppId, taskId);
    if (!final) await this.readPlaylist(path.join(dir, 'hls', 'index.m3u8'));
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
    await finaliseHlsRecording(path.join(dir, 'hls'), endedAt, this.playlist?.text);
    await this.announce(ch, true);
  }

  // Keeps the playlist when it changed and lists more segments than the copy kept (it only grows while recording).
  private async readPlaylist(file: string): Promise<void> {
    const mtimeMs = await fs.stat(file).then(
      (st) => st.mtimeMs,
      () => null,
    );
    if (mtimeMs === null || mtimeMs === this.playlist?.mtimeMs) return;
    const text = await fs.readFile(file, 'utf8').catch(() => '');
    if (text.endsWith('\n') && listedSegments(text).length >= listedSegments(this.playlist?.text ?? '').length)
      this.playlist = { text, mtimeMs };
  }
}
