import fs from 'node:fs/promises';
import path from 'node:path';

/** The playlist file of a channel's HLS folder. */
export function playlistPath(hlsRoot: string, channelId: string): string {
  return path.join(hlsRoot, channelId, 'index.m3u8');
}

/**
 * Ends a channel's playlist with #EXT-X-ENDLIST (ffmpeg runs with omit_endlist so that a worker handoff never ends
 * playback; only an explicit stop or a final failure does). Written to a temp file and renamed, so a player never
 * reads half a playlist. Returns false when there is no playlist.
 */
export async function endPlaylist(hlsRoot: string, channelId: string): Promise<boolean> {
  const file = playlistPath(hlsRoot, channelId);
  let text: string;
  try { text = await fs.readFile(file, 'utf8'); } catch { return false; }
  if (/#EXT-X-ENDLIST\s*$/.test(text)) return true;
  const tmp = `${file}.end.tmp`;
  await fs.writeFile(tmp, text.replace(/\s*$/, '\n') + '#EXT-X-ENDLIST\n');
  await fs.rename(tmp, file);
  return true;
}
