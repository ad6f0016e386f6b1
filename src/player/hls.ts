/**
 * An HLS client as a player runs one (RFC 8216 6.3): it reads the play URL (a master playlist: the variant asked
 * for), starts three target durations from the live end (6.3.3), fetches each new segment in order and reloads the
 * playlist (after a target duration when it changed, half of one when it did not, 6.3.4). Segments go to `onSegment`
 * with their fetch time; the stream ends at ENDLIST or when the playlist is gone (404) after playing.
 */
import {
  chooseVariant,
  parseMaster,
  parseMedia,
  startIndex,
  type HlsSegment,
  type HlsVariant,
} from './hls-playlist.js';
import { PlayRefused, refusalReason, type ByteSource } from './sources.js';

/** A fetched segment. */
export interface FetchedSegment extends HlsSegment {
  fetchMs: number;
  bytes: number;
}

export interface HlsReaderOptions {
  /** The variant of a master playlist (see `chooseVariant`). */
  variant?: string;
  onVariant?: (v: HlsVariant | null) => void;
  onSegment: (data: Buffer, s: FetchedSegment) => void;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });

async function get(url: string, signal: AbortSignal): Promise<{ status: number; body: Buffer }> {
  // one controller per request (AbortSignal.any would leave a listener on the reader's signal per request)
  const ac = new AbortController();
  const abort = () => ac.abort();
  signal.addEventListener('abort', abort, { once: true });
  const timer = setTimeout(abort, 15_000);
  try {
    const res = await fetch(url, { signal: ac.signal });
    return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', abort);
  }
}

/** Reads an HLS stream until it ends or is closed. */
export function readHls(url: string, o: HlsReaderOptions): ByteSource {
  const stop = new AbortController();
  const source: ByteSource = { done: Promise.resolve(), close: () => stop.abort() };
  source.done = run(url, o, stop.signal).then((why) => {
    if (why) source.endReason = why;
  });
  source.done.catch(() => undefined);
  return source;
}

async function run(url: string, o: HlsReaderOptions, signal: AbortSignal): Promise<string | void> {
  let first = await get(url, signal);
  if (first.status !== 200) {
    const reason = refusalReason(first.status, first.body.toString('utf8'));
    throw first.status >= 400 && first.status < 500 ? new PlayRefused(first.status, reason) : new Error(reason);
  }
  if (
    !first.body
      .subarray(0, 16)
      .toString('utf8')
      .replace(/^\uFEFF/, '')
      .startsWith('#EXTM3U')
  )
    throw new Error(`not an HLS playlist (no #EXTM3U; ${first.body.length} bytes): is this a play URL?`);
  let mediaUrl = url;
  const variants = parseMaster(first.body.toString('utf8'));
  if (variants) {
    const v = chooseVariant(variants, o.variant);
    if (!v)
      throw new PlayRefused(
        0,
        `no variant "${o.variant}" in the master playlist (${variants.map((x) => `#${x.index} ${x.resolution ?? ''} ${x.uri}`).join(', ')})`,
      );
    o.onVariant?.(v);
    mediaUrl = new URL(v.uri, url).toString();
    first = await get(mediaUrl, signal);
    if (first.status !== 200) {
      const reason = refusalReason(first.status, first.body.toString('utf8'));
      throw first.status >= 400 && first.status < 500 ? new PlayRefused(first.status, reason) : new Error(reason);
    }
  } else o.onVariant?.(null);
  let playlist = parseMedia(first.body.toString('utf8'));
  let next = playlist.segments.length ? playlist.segments[startIndex(playlist)]!.sequence : playlist.mediaSequence;
  let played = false;
  let loadStart = performance.now();
  while (!signal.aborted) {
    const todo = playlist.segments.filter((s) => s.sequence >= next);
    // fell behind the window: go on with the oldest segment still listed
    if (playlist.segments.length && next < playlist.segments[0]!.sequence) next = playlist.segments[0]!.sequence;
    for (const s of todo) {
      if (signal.aborted) return;
      const t0 = performance.now();
      let r: { status: number; body: Buffer };
      try {
        r = await get(new URL(s.uri, mediaUrl).toString(), signal);
      } catch {
        if (signal.aborted) return;
        r = { status: 0, body: Buffer.alloc(0) }; // a reset or a timeout: a player skips the segment and goes on
      }
      if (r.status !== 200) {
        next = s.sequence + 1; // gone from the window meanwhile: a player skips it
        continue;
      }
      played = true;
      o.onSegment(r.body, { ...s, fetchMs: Math.round(performance.now() - t0), bytes: r.body.length });
      next = s.sequence + 1;
    }
    if (playlist.ended && next > (playlist.segments.at(-1)?.sequence ?? -1))
      return 'the playlist ended (#EXT-X-ENDLIST)';
    const target = (playlist.targetDurationS || 2) * 1000;
    await sleep(todo.length > 0 ? Math.max(0, loadStart + target - performance.now()) : target / 2, signal);
    if (signal.aborted) return;
    loadStart = performance.now();
    let r: { status: number; body: Buffer };
    try {
      r = await get(mediaUrl, signal);
    } catch {
      if (signal.aborted) return;
      continue; // a failed reload: try again after the wait, as players do
    }
    if (r.status === 404 || r.status === 410) {
      if (played) return `the playlist is gone (${r.status})`;
      throw new PlayRefused(r.status, refusalReason(r.status, r.body.toString('utf8')));
    }
    if (r.status === 200) {
      const was = playlist;
      playlist = parseMedia(r.body.toString('utf8'));
      // numbering that went back (a packager restarted without continuing it): start again as a new client would
      const last = playlist.segments.at(-1)?.sequence ?? -1;
      if (last < next - 1 && playlist.segments.length && playlist.segments.at(-1)!.uri !== was.segments.at(-1)?.uri)
        next = playlist.segments[startIndex(playlist)]!.sequence;
    }
  }
}
