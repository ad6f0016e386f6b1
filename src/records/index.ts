import fs from 'node:fs/promises';
import path from 'node:path';
import type { Redis } from 'ioredis';
import type { Keys } from '../redis/index.js';
import type { Sink } from '../media/ffmpeg/args.js';
import { recordingHasMedia } from './media-check.js';

/** Record file types as the SDK numbers them: HLS=1, FLV=2, MP4=4 and their sums. */
export type RecordFileType = 1 | 2 | 3 | 4 | 5 | 6 | 7;

/** A recording task: every file a channel records, across worker handovers, belongs to it. */
export interface RecordTask {
  recordTaskId: number;
  sdkAppId: string;
  channelId: string;
  fileType: RecordFileType;
  createdAt: number;
}

/** One recorded file as the API lists it. */
export interface RecordFile {
  name: string;
  format: 'mp4' | 'flv' | 'hls';
  bytes: number;
  /** Start time (from the file name), end time (last write) and their difference, in ms. */
  startedAt: number;
  endedAt: number;
  durationMs: number;
}

/** Folder of a task's files. */
export function taskDir(recordsRoot: string, sdkAppId: string, taskId: number): string {
  return path.join(recordsRoot, sdkAppId, String(taskId));
}

/** File names a person can read: `<channelId>_<taskId>_<YYYYMMDD-HHMMSS>.<ext>` (UTC start time of the file). */
export function recordPattern(dir: string, channelId: string, taskId: number): string {
  return path.join(dir, `${channelId}_${taskId}_%Y%m%d-%H%M%S`);
}

const FILE_NAME = /^(ch_[0-9a-f]{20})_(\d+)_(\d{8})-(\d{6})\.(mp4|flv)$/; // a channel id (CHANNEL_ID_SOURCE), task, UTC start

/** The sinks recording a channel's best tier, by the SDK's file type bits (HLS 1, FLV 2, MP4 4). */
export function recordSinks(
  dir: string,
  channelId: string,
  taskId: number,
  fileType: RecordFileType,
  maxSeconds: number,
  segmentSeconds: number,
): Sink[] {
  const sinks: Sink[] = [];
  const pattern = recordPattern(dir, channelId, taskId);
  if (fileType & 4) sinks.push({ kind: 'record', format: 'mp4', pattern, maxSeconds });
  if (fileType & 2) sinks.push({ kind: 'record', format: 'flv', pattern, maxSeconds });
  if (fileType & 1) sinks.push({ kind: 'record-hls', dir: path.join(dir, 'hls'), segmentSeconds });
  return sinks;
}

/** Recording tasks and their files. */
export class RecordStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    readonly root: string,
  ) {}

  /** Opens a new task for a channel. */
  async create(sdkAppId: string, channelId: string, fileType: RecordFileType): Promise<RecordTask> {
    const recordTaskId = await this.redis.incr(this.keys.recordTaskSeq());
    const task: RecordTask = { recordTaskId, sdkAppId, channelId, fileType, createdAt: Date.now() };
    await this.redis.set(this.keys.recordTask(recordTaskId), JSON.stringify(task));
    return task;
  }

  /** A task of the app, or null. */
  async get(sdkAppId: string, taskId: number): Promise<RecordTask | null> {
    const raw = await this.redis.get(this.keys.recordTask(taskId));
    const task = raw ? (JSON.parse(raw) as RecordTask) : null;
    return task && task.sdkAppId === sdkAppId ? task : null;
  }

  /** Deletes a task record (a refused start leaves none). */
  async remove(taskId: number): Promise<void> {
    await this.redis.del(this.keys.recordTask(taskId));
  }

  /**
   * The files of a task, oldest first; the HLS recording counts as one file (its playlist). Files without media (a
   * run that met a full disk, or a file just opened) are not listed, nor a playlist without segments.
   */
  async files(task: RecordTask): Promise<RecordFile[]> {
    const dir = taskDir(this.root, task.sdkAppId, task.recordTaskId);
    let names: string[];
    try {
      names = await fs.readdir(dir);
    } catch {
      return [];
    }
    const out: RecordFile[] = [];
    for (const name of names) {
      const m = FILE_NAME.exec(name);
      if (!m || !(await recordingHasMedia(path.join(dir, name)))) continue;
      const st = await fs.stat(path.join(dir, name));
      const [d, t] = [m[3]!, m[4]!];
      const startedAt = Date.UTC(
        +d.slice(0, 4),
        +d.slice(4, 6) - 1,
        +d.slice(6, 8),
        +t.slice(0, 2),
        +t.slice(2, 4),
        +t.slice(4, 6),
      );
      out.push({
        name,
        format: m[5] as 'mp4' | 'flv',
        bytes: st.size,
        startedAt,
        endedAt: st.mtimeMs,
        durationMs: Math.max(0, Math.round(st.mtimeMs - startedAt)),
      });
    }
    const playlist = path.join(dir, 'hls', 'index.m3u8');
    try {
      const [st, text] = await Promise.all([fs.stat(playlist), fs.readFile(playlist, 'utf8')]);
      const seconds = [...text.matchAll(/#EXTINF:([\d.]+)/g)].reduce((s, x) => s + Number(x[1]), 0);
      if (/^[^#\s]/m.test(text))
        out.push({
          name: 'hls/index.m3u8',
          format: 'hls',
          bytes: st.size,
          startedAt: task.createdAt,
          endedAt: st.mtimeMs,
          durationMs: Math.round(seconds * 1000),
        });
    } catch {
      /* no HLS recording */
    }
    return out.sort((a, b) => a.startedAt - b.startedAt || a.name.localeCompare(b.name));
  }

  /** Absolute path of a task's file for download, or null when the name is not one of its files. */
  async filePath(task: RecordTask, name: string): Promise<string | null> {
    const dir = taskDir(this.root, task.sdkAppId, task.recordTaskId);
    const ok = FILE_NAME.test(name) || /^hls\/(index\.m3u8|rec_\d{6,9}\.ts)$/.test(name);
    if (!ok) return null;
    const full = path.join(dir, name);
    try {
      await fs.access(full);
      return full;
    } catch {
      return null;
    }
  }
}
