import fs from 'node:fs/promises';
import path from 'node:path';

/*
 * Whether a recording file holds any media. A run that met a full disk (or died at once) leaves files with headers
 * and no media: a few-KiB MP4 without its moov box, an FLV of 0 bytes or only its header, 0-byte or cut HLS segments.
 * Those are never listed nor announced, and the worker deletes them.
 */

/** TS packets are 188 bytes and start with the sync byte 0x47. */
const TS_PACKET = 188;
/** Boxes/tags looked at before deciding (a recording's media comes within its first few). */
const MAX_STEPS = 4096;

type Reader = (offset: number, length: number) => Promise<Buffer>;

/**
 * An MP4 has media when it holds a complete `moov` box and a complete `mdat` box with payload (fragmented MP4: the
 * first fragment). Reads box headers only.
 */
export async function mp4HasMedia(read: Reader, size: number): Promise<boolean> {
  let moov = false;
  let mdat = false;
  for (let off = 0, i = 0; off + 8 <= size && i < MAX_STEPS; i++) {
    const h = await read(off, 16);
    if (h.length < 8) break;
    let len = h.readUInt32BE(0);
    const type = h.toString('latin1', 4, 8);
    let header = 8;
    if (len === 1) {
      if (h.length < 16) break;
      len = Number(h.readBigUInt64BE(8));
      header = 16;
    } else if (len === 0) len = size - off; // to the end of the file
    if (len < header || off + len > size) break; // cut: nothing past here is complete
    if (type === 'moov') moov = true;
    if (type === 'mdat' && len > header) mdat = true;
    if (moov && mdat) return true;
    off += len;
  }
  return false;
}

/**
 * An FLV has media when, after its header, a complete audio or video tag carries a frame (not only the codec's
 * sequence header).
 */
export async function flvHasMedia(read: Reader, size: number): Promise<boolean> {
  const head = await read(0, 9);
  if (head.length < 9 || head.toString('latin1', 0, 3) !== 'FLV') return false;
  for (let off = head.readUInt32BE(5) + 4, i = 0; off + 11 <= size && i < MAX_STEPS; i++) {
    const t = await read(off, 13);
    if (t.length < 13) break;
    const type = t[0]! & 0x1f;
    const dataSize = t.readUIntBE(1, 3);
    if (off + 11 + dataSize > size) break;
    if ((type === 8 || type === 9) && dataSize > 2) {
      const codec = type === 9 ? t[11]! & 0x0f : t[11]! >> 4;
      // AVC (7) and AAC (10) say in their second byte whether this is a sequence header (0) or a frame (1)
      const frame = type === 9 ? codec !== 7 || t[12] === 1 : codec !== 10 || t[12] === 1;
      if (frame) return true;
    }
    off += 11 + dataSize + 4;
  }
  return false;
}

/** Whether an HLS (MPEG-TS) segment of `size` bytes starting with `first` is whole: whole TS packets, at least one. */
export function segmentComplete(size: number, first: number | undefined): boolean {
  return size > 0 && size % TS_PACKET === 0 && first === 0x47;
}

/** Whether a recording file (by extension: .mp4, .flv, .ts) holds media; false when it cannot be read. */
export async function recordingHasMedia(file: string): Promise<boolean> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, 'r');
  } catch {
    return false;
  }
  try {
    const { size } = await fh.stat();
    const read: Reader = async (offset, length) => {
      const buf = Buffer.alloc(length);
      const { bytesRead } = await fh.read(buf, 0, length, offset);
      return buf.subarray(0, bytesRead);
    };
    if (file.endsWith('.mp4')) return await mp4HasMedia(read, size);
    if (file.endsWith('.flv')) return await flvHasMedia(read, size);
    if (file.endsWith('.ts')) return segmentComplete(size, (await read(0, 1))[0]);
    return size > 0;
  } finally {
    await fh.close();
  }
}

/**
 * Whether a file was last written before `notAfter` (ms): a file another run writes now is newer and left alone.
 */
async function settled(file: string, notAfter: number): Promise<boolean> {
  try {
    return (await fs.stat(file)).mtimeMs <= notAfter;
  } catch {
    return false;
  }
}

/**
 * Deletes the MP4 and FLV files of a task folder that hold no media and were last written before `notAfter`; returns
 * their names.
 */
export async function removeEmptyRecordings(dir: string, notAfter: number): Promise<string[]> {
  let names: string[];
  try {
    names = (await fs.readdir(dir)).filter((n) => /\.(mp4|flv)$/.test(n));
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const file = path.join(dir, name);
    if (!(await settled(file, notAfter)) || (await recordingHasMedia(file))) continue;
    await fs.rm(file, { force: true });
    removed.push(name);
  }
  return removed;
}

/**
 * The playlist text without the segments `keep` refuses, ended with #EXT-X-ENDLIST. A segment's #EXTINF and other
 * per-segment tags go with it; a discontinuity before a dropped segment moves to the next one kept.
 */
export function prunePlaylist(text: string, keep: (uri: string) => boolean): { text: string; segments: number } {
  const out: string[] = [];
  let pending: string[] = [];
  let segments = 0;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line === '#EXT-X-ENDLIST') continue;
    if (line.startsWith('#EXTINF') || line.startsWith('#EXT-X-DISCONTINUITY') || line.startsWith('#EXT-X-PROGRAM')) {
      if (!pending.includes(line) || !line.startsWith('#EXT-X-DISCONTINUITY')) pending.push(line);
      continue;
    }
    if (line.startsWith('#')) {
      out.push(line);
      continue;
    }
    if (keep(line)) {
      out.push(...pending, line);
      segments++;
      pending = [];
    } else pending = pending.filter((t) => t.startsWith('#EXT-X-DISCONTINUITY'));
  }
  return { text: [...out, '#EXT-X-ENDLIST', ''].join('\n'), segments };
}

/**
 * Finalises an HLS recording when a run ends, however it ended: incomplete segments last written before `notAfter`
 * (ms), and complete ones the playlist does not list, are deleted, and the playlist ends with #EXT-X-ENDLIST (a later
 * run of the channel appends to it again; ffmpeg drops the ENDLIST). `lastRead` is the playlist as the run last read
 * it: ffmpeg ≥ 5 empties or cuts the playlist when its disk fills, so the one listing more segments stands. A playlist
 * left without segments is removed. A playlist written after `notAfter` belongs to another run and is left alone.
 * Returns the segments listed, or null when nothing was done.
 */
export async function finaliseHlsRecording(dir: string, notAfter: number, lastRead?: string): Promise<number | null> {
  const playlist = path.join(dir, 'index.m3u8');
  const mtime = await fs.stat(playlist).then(
    (st) => st.mtimeMs,
    () => null,
  );
  if (mtime !== null && mtime > notAfter) return null;
  let text = mtime === null ? null : await fs.readFile(playlist, 'utf8').catch(() => null);
  if (lastRead !== undefined && listedSegments(lastRead).length > listedSegments(text ?? '').length) text = lastRead;
  if (text === null) return null;
  const listed = new Set(listedSegments(text));
  const complete = new Set<string>();
  for (const name of await fs.readdir(dir)) {
    if (!name.endsWith('.ts')) continue;
    const file = path.join(dir, name);
    if (listed.has(name) && (await recordingHasMedia(file))) complete.add(name);
    else if (await settled(file, notAfter)) await fs.rm(file, { force: true });
  }
  const pruned = prunePlaylist(text, (uri) => complete.has(uri));
  if (pruned.segments === 0) {
    await fs.rm(playlist, { force: true });
    return 0;
  }
  await writeReplacing(playlist, pruned.text);
  return pruned.segments;
}

/** The segment URIs a playlist lists, in order. */
export function listedSegments(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
}

/**
 * Replaces a file's text by temp file and rename; on a disk too full for the temp file, rewrites it in place (its
 * own blocks are freed first). Throws only when both fail.
 */
export async function writeReplacing(file: string, text: string): Promise<void> {
  const tmp = `${file}.fin.tmp`;
  try {
    await fs.writeFile(tmp, text);
    await fs.rename(tmp, file);
  } catch {
    await fs.rm(tmp, { force: true });
    await fs.writeFile(file, text);
  }
}
