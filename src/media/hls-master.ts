import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../log.js';
import { masterPlaylist, writeAtomic, type Variant } from './hls.js';
import { probeSegment } from './ts-probe.js';

/** One variant of a multi-tier channel: its media playlist (relative `uri` under the master's folder) and a forecast. */
export interface MasterVariant {
  /** What is declared until its segments are read: the tier's nominal figures. */
  forecast: Variant;
  /** The forecast BANDWIDTH is a cap the encoder keeps to (maxrate): declared at least, not only measured. */
  capped: boolean;
}

/** Headroom over the highest segment bit rate measured so far: later segments may be larger (RFC 8216 4.3.4.2). */
export const BANDWIDTH_HEADROOM = 1.2;
/**
 * Bytes of a segment read to find its PAT, PMT, SPS and first ADTS header: the audio's first packet may come after a
 * whole keyframe (measured: 128 KiB missed it at 2.8 Mbit/s, 120 fps), so up to a 2 s segment at 16 Mbit/s.
 */
const HEAD_BYTES = 4 * 1024 * 1024;
/** Shorter segments (a stream's end, a restart) say little about the peak rate. */
const MIN_MEASURED_SECONDS = 0.5;

interface Measured {
  variant: Variant;
  probed: boolean;
  peakBps: number;
  seen: Set<string>;
}

/**
 * Writes and keeps the master playlist of a multi-tier HLS channel true to its streams (RFC 8216 4.3.4.2): CODECS
 * and RESOLUTION from each variant's segments (`probeSegment`: the H.264 SPS and the audio's object type), BANDWIDTH
 * at least the highest segment bit rate measured (bytes × 8 / EXTINF) with `BANDWIDTH_HEADROOM`. It is written once
 * every variant has a segment, or with the forecast of those without after `deadlineMs` (the media server holds a
 * player's playlist request for three target durations), and rewritten (atomically) whenever a segment says more:
 * another codec or size after a restart, or a segment above the declared BANDWIDTH.
 */
export class MasterPlaylistWriter {
  private readonly variants: Measured[];
  private written: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly started = Date.now();
  private running: Promise<void> = Promise.resolve();

  /**
   * @param file the master playlist's path; each variant's media playlist is `forecast.uri` beside it.
   * @param pollMs how often the variants' playlists are read (a fraction of the target duration).
   */
  constructor(
    private readonly file: string,
    variants: readonly MasterVariant[],
    private readonly opts: { pollMs: number; deadlineMs: number; logger: Logger },
  ) {
    this.variants = variants.map((v) => ({
      variant: { ...v.forecast },
      probed: false,
      peakBps: v.capped ? v.forecast.bandwidth / BANDWIDTH_HEADROOM : 0,
      seen: new Set(),
    }));
  }

  /** Starts watching; resolves after the first look (which writes nothing before a segment or the deadline). */
  start(): void {
    const tick = () => {
      this.running = this.look()
        .catch((e: Error) => this.opts.logger.debug({ err: e.message }, 'master playlist not updated'))
        .finally(() => {
          if (this.timer) this.timer = setTimeout(tick, this.opts.pollMs);
        });
    };
    this.timer = setTimeout(tick, 0);
  }

  /** Stops watching (the master stays as last written). */
  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  /** The master playlist as last written, or null. */
  get text(): string | null {
    return this.written;
  }

  private async look(): Promise<void> {
    const dir = path.dirname(this.file);
    await Promise.all(this.variants.map((v) => this.measure(v, dir)));
    const due = this.variants.every((v) => v.probed) || Date.now() - this.started >= this.opts.deadlineMs;
    if (!due) return;
    const text = masterPlaylist(this.variants.map((v) => v.variant));
    if (text === this.written) return;
    await writeAtomic(this.file, text);
    this.opts.logger.debug({ master: text }, this.written === null ? 'master playlist written' : 'master rewritten');
    this.written = text;
  }

  /** Reads the segments of one variant not read yet: their bit rate, and the codecs of the newest. */
  private async measure(v: Measured, dir: string): Promise<void> {
    const playlistDir = path.join(dir, path.dirname(v.variant.uri));
    let playlist: string;
    try {
      playlist = await fs.readFile(path.join(dir, v.variant.uri), 'utf8');
    } catch {
      return;
    }
    let newest: { file: string; size: number } | null = null;
    const listed = mediaSegments(playlist);
    // only what the window still lists is remembered (a channel that runs for days lists 6 segments, not thousands)
    for (const uri of v.seen) if (!listed.some((s) => s.uri === uri)) v.seen.delete(uri);
    for (const { uri, seconds } of listed) {
      if (v.seen.has(uri)) continue;
      const file = path.join(playlistDir, uri);
      const size = await fs.stat(file).then(
        (s) => s.size,
        () => null,
      );
      if (size === null) continue;
      v.seen.add(uri);
      newest = { file, size };
      if (seconds >= MIN_MEASURED_SECONDS) v.peakBps = Math.max(v.peakBps, (size * 8) / seconds);
    }
    if (newest) {
      const head = await readHead(newest.file, Math.min(newest.size, HEAD_BYTES));
      const found = head ? probeSegment(head) : null;
      if (found?.video) {
        v.variant.codecs = found.audio ? `${found.video},${found.audio}` : found.video;
        if (found.width && found.height) [v.variant.width, v.variant.height] = [found.width, found.height];
        v.probed = true;
      }
    }
    const declared = v.variant.bandwidth;
    const wanted = Math.ceil(v.peakBps * BANDWIDTH_HEADROOM);
    // raised when a segment goes past it (and set from the measure on the first probe); never lowered after
    if (v.peakBps > 0 && (v.peakBps > declared || (newest && !this.written))) v.variant.bandwidth = wanted;
  }
}

/** The media segments of a media playlist with their EXTINF durations (seconds). */
export function mediaSegments(playlist: string): { uri: string; seconds: number }[] {
  const out: { uri: string; seconds: number }[] = [];
  let seconds: number | null = null;
  for (const raw of playlist.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#EXTINF:')) seconds = parseFloat(line.slice(8));
    else if (line && !line.startsWith('#') && seconds !== null) {
      out.push({ uri: line, seconds });
      seconds = null;
    }
  }
  return out;
}

/** The first `bytes` of a file (a segment's size is known from its stat: no 4 MiB buffer for a 200 KB segment). */
async function readHead(file: string, bytes: number): Promise<Buffer | null> {
  let fh: fs.FileHandle | undefined;
  try {
    fh = await fs.open(file, 'r');
    const buf = Buffer.alloc(bytes);
    const { bytesRead } = await fh.read(buf, 0, bytes, 0);
    return buf.subarray(0, bytesRead);
  } catch {
    return null;
  } finally {
    await fh?.close();
  }
}
