import fs from 'node:fs/promises';

/**
 * Ends a playlist with #EXT-X-ENDLIST (ffmpeg runs with omit_endlist so that a worker handoff never ends playback;
 * only an explicit stop or a final failure does). Written to a temp file and renamed, so a player never reads half a
 * playlist; on a disk too full for the temp file, appended in place. Returns false when there is no playlist or it
 * could not be written (a full disk never stops the state change that ends it).
 */
export async function endPlaylist(file: string): Promise<boolean> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    return false;
  }
  if (/#EXT-X-ENDLIST\s*$/.test(text)) return true;
  const tmp = `${file}.end.tmp`;
  try {
    await fs.writeFile(tmp, text.replace(/\s*$/, '\n') + '#EXT-X-ENDLIST\n');
    await fs.rename(tmp, file);
  } catch {
    await fs.rm(tmp, { force: true });
    try {
      await fs.appendFile(file, `${text.endsWith('\n') ? '' : '\n'}#EXT-X-ENDLIST\n`);
    } catch {
      return false;
    }
  }
  return true;
}

/** Ends each playlist that exists. */
export async function endPlaylists(files: readonly string[]): Promise<void> {
  await Promise.all(files.map((f) => endPlaylist(f)));
}

/** One variant of a master playlist. */
export interface Variant {
  uri: string;
  bandwidth: number;
  width: number;
  height: number;
  codecs: string;
}

/** A master playlist listing the variants in the given order (best first), so players can adapt. */
export function masterPlaylist(variants: readonly Variant[]): string {
  const lines = ['#EXTM3U', '#EXT-X-VERSION:3', '#EXT-X-INDEPENDENT-SEGMENTS'];
  for (const v of variants) {
    lines.push(
      `#EXT-X-STREAM-INF:BANDWIDTH=${v.bandwidth},RESOLUTION=${v.width}x${v.height},CODECS="${v.codecs}"`,
      v.uri,
    );
  }
  return lines.join('\n') + '\n';
}

/** Writes a file atomically (temp + rename). */
export async function writeAtomic(file: string, text: string): Promise<void> {
  await fs.writeFile(`${file}.tmp`, text);
  await fs.rename(`${file}.tmp`, file);
}
