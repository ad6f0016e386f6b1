import path from 'node:path';
import { channelStreams } from './urls.js';
import { taskDir } from '../records/index.js';
import type { Channel } from './types.js';

/** Folders of the data directory. */
export interface DataLayout {
  hlsDir: string;
  recordsDir: string;
}

/** Every live and recorded HLS playlist of a channel (those that get ENDLIST when it ends). */
export function channelPlaylists(
  ch: Pick<Channel, 'channelId' | 'sdkAppId' | 'option' | 'hls' | 'recordTaskId'>,
  d: DataLayout,
): string[] {
  const files = ch.hls
    ? channelStreams(ch.channelId, ch.option.rateTypes).map((s) => path.join(d.hlsDir, s.hlsDir, 'index.m3u8'))
    : [];
  if (ch.recordTaskId !== undefined && ch.option.recordFileType & 1)
    files.push(path.join(taskDir(d.recordsDir, ch.sdkAppId, ch.recordTaskId), 'hls', 'index.m3u8'));
  return files;
}

/** The channel's live HLS folder (all its tiers). */
export function channelHlsRoot(channelId: string, d: Pick<DataLayout, 'hlsDir'>): string {
  return path.join(d.hlsDir, channelId);
}
