import fs from 'node:fs/promises';
import path from 'node:path';
import { RelayError } from '../errors/index.js';

/*
 * Disk space of the data folders: the free-space admission of recordings and uploads, and how a full disk shows in
 * ffmpeg's errors and Node's (README "Security": disk policy).
 */

const MIB = 1024 * 1024;

/** ffmpeg's and the OS's words for a full disk or an exhausted disk quota. */
const DISK_FULL = /No space left on device|ENOSPC|Disk quota exceeded|EDQUOT/i;

/** Whether ffmpeg's last error lines (or any messages) say the disk is full. */
export function isDiskFull(lines: readonly string[]): boolean {
  return lines.some((l) => DISK_FULL.test(l));
}

/** Whether a Node error is a full disk (errno ENOSPC, or EDQUOT for a user quota). */
export function isDiskFullError(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/**
 * Bytes an unprivileged writer may still write on the file system holding `dir` (statfs: available blocks × block
 * size). A folder not made yet is measured at its nearest existing parent.
 */
export async function freeBytes(dir: string): Promise<number> {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    try {
      const st = await fs.statfs(d);
      return st.bavail * st.bsize;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || d === path.dirname(d)) throw e;
    }
  }
}

/** Whether `free` bytes are below a threshold of `minFreeMB` MiB (0 disables the threshold). */
export function belowThreshold(free: number, minFreeMB: number): boolean {
  return minFreeMB > 0 && free < minFreeMB * MIB;
}

/** The 50007 hint of an upload (the table's speaks of starts with record). */
export const UPLOAD_DISK_HINT =
  "retry the upload later; operators: free disk space on the watermarks folder's disk (RELAY_MIN_FREE_MB sets the threshold)";

/** Bytes as MiB with one decimal, for messages. */
export const mib = (bytes: number): string => (bytes / MIB).toFixed(1);

/**
 * Refuses (50007, HTTP 507) when any folder's file system has less than `minFreeMB` MiB free. `what` names each
 * folder in the message (e.g. "recordings"); `hint` replaces the table's (which speaks of starts with record). The
 * client is told the disk is low, never how much is free: the figures (bytes free, the threshold) ride in the error's
 * operator log fields.
 */
export async function assertFreeSpace(
  dirs: readonly { dir: string; what: string }[],
  minFreeMB: number,
  hint?: string,
): Promise<void> {
  if (minFreeMB <= 0) return;
  for (const { dir, what } of dirs) {
    const free = await freeBytes(dir);
    if (belowThreshold(free, minFreeMB))
      throw new RelayError(
        50007,
        `insufficient storage: the disk of the ${what} is below the relay's free-space threshold`,
        {
          ...(hint ? { hint } : {}),
          log: { dir, freeBytes: free, freeMiB: Number(mib(free)), minFreeMB },
        },
      );
  }
}

/** The 50007 answer of a write that found the disk full (`hint` as for `assertFreeSpace`). */
export function diskFullRefusal(what: string, hint?: string): RelayError {
  return new RelayError(50007, `insufficient storage: no space left on the disk of the ${what}`, hint ? { hint } : {});
}

/**
 * The channel failure (or recording stop) of an ffmpeg that found the disk full; `cause` says who found it (ffmpeg's
 * error by default, or the run's own measure).
 */
export function diskFullFailure(
  what: 'recordings' | 'live HLS',
  cause = 'ffmpeg: No space left on device',
): { code: 50007; message: string } {
  return { code: 50007, message: `disk full: no space left on the disk of the ${what} (${cause})` };
}

/**
 * What a running channel does when its ffmpeg found the disk full: when it records and its live outputs still have
 * room (no live HLS, or an HLS folder with at least `liveMinFreeBytes` free) it stops recording and goes on live;
 * otherwise it fails. Never a retry: a full disk does not empty itself.
 */
export function afterDiskFull(o: {
  recording: boolean;
  liveHls: boolean;
  hlsFreeBytes: number;
  liveMinFreeBytes: number;
}): 'stop-recording' | 'fail' {
  if (!o.recording) return 'fail';
  if (o.liveHls && o.hlsFreeBytes < o.liveMinFreeBytes) return 'fail';
  return 'stop-recording';
}
