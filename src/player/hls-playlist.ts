/**
 * HLS playlists as a client reads them (RFC 8216): a master playlist's variants (4.3.4.2) and a media playlist's
 * segments with their sequence numbers, durations, EXT-X-PROGRAM-DATE-TIME (4.3.2.6, carried forward by EXTINF when
 * only the first segment has one) and discontinuities; and which segment a live client starts with (6.3.3). Pure.
 */

export interface HlsVariant {
  index: number;
  uri: string;
  bandwidth: number | null;
  resolution: string | null;
  height: number | null;
}

export interface HlsSegment {
  sequence: number;
  uri: string;
  durationS: number;
  /** Wall clock of its first sample (ms since the epoch), or null. */
  programDateMs: number | null;
  discontinuity: boolean;
}

export interface MediaPlaylist {
  targetDurationS: number;
  mediaSequence: number;
  segments: HlsSegment[];
  ended: boolean;
}

const attr = (line: string, name: string): string | null => {
  const m = new RegExp(`(?:^|[:,])${name}=("[^"]*"|[^,]*)`).exec(line);
  return m ? m[1]!.replace(/^"|"$/g, '') : null;
};

/** The variants of a master playlist, or null when `text` is a media playlist. */
export function parseMaster(text: string): HlsVariant[] | null {
  if (!text.includes('#EXT-X-STREAM-INF')) return null;
  const lines = text.split(/\r?\n/).map((l) => l.trim());
  const out: HlsVariant[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i]!.startsWith('#EXT-X-STREAM-INF:')) continue;
    const uri = lines.slice(i + 1).find((l) => l && !l.startsWith('#'));
    if (!uri) continue;
    const bw = attr(lines[i]!, 'BANDWIDTH');
    const res = attr(lines[i]!, 'RESOLUTION');
    out.push({
      index: out.length,
      uri,
      bandwidth: bw ? Number(bw) : null,
      resolution: res,
      height: res && /^\d+x\d+$/.test(res) ? Number(res.split('x')[1]) : null,
    });
  }
  return out;
}

/**
 * The variant `choice` names: `best` (default: the highest BANDWIDTH) or `lowest`, an index into the list, a height
 * (`720p`), else the first whose URI contains it (the relay's tiers: `r10`, `r20`). Null when none matches.
 */
export function chooseVariant(variants: readonly HlsVariant[], choice = 'best'): HlsVariant | null {
  if (variants.length === 0) return null;
  const byBw = [...variants].sort((a, b) => (b.bandwidth ?? 0) - (a.bandwidth ?? 0));
  if (choice === 'best') return byBw[0]!;
  if (choice === 'lowest') return byBw[byBw.length - 1]!;
  if (/^\d+$/.test(choice) && Number(choice) < variants.length) return variants[Number(choice)]!;
  const p = /^(\d+)p$/.exec(choice);
  if (p) return variants.find((v) => v.height === Number(p[1])) ?? null;
  return variants.find((v) => v.uri.includes(choice)) ?? null;
}

export function parseMedia(text: string): MediaPlaylist {
  let target = 0;
  let seq = 0;
  let ended = false;
  const segments: HlsSegment[] = [];
  let duration = 0;
  let pdt: number | null = null;
  let disc = false;
  let carried: number | null = null;
  for (const raw of text.split(/\r?\n/)) {
    const l = raw.trim();
    if (!l) continue;
    if (l.startsWith('#EXT-X-TARGETDURATION:')) target = Number(l.slice(22));
    else if (l.startsWith('#EXT-X-MEDIA-SEQUENCE:')) seq = Number(l.slice(22));
    else if (l.startsWith('#EXTINF:')) duration = parseFloat(l.slice(8));
    else if (l.startsWith('#EXT-X-PROGRAM-DATE-TIME:')) {
      const t = Date.parse(l.slice(25));
      pdt = Number.isFinite(t) ? t : null;
    } else if (l === '#EXT-X-DISCONTINUITY') {
      disc = true;
      carried = null;
    } else if (l === '#EXT-X-ENDLIST') ended = true;
    else if (!l.startsWith('#')) {
      const programDateMs: number | null = pdt ?? carried;
      segments.push({
        sequence: seq + segments.length,
        uri: l,
        durationS: duration,
        programDateMs,
        discontinuity: disc,
      });
      carried = programDateMs === null ? null : programDateMs + duration * 1000;
      pdt = null;
      disc = false;
    }
  }
  return { targetDurationS: target, mediaSequence: seq, segments, ended };
}

/**
 * The index of the segment a client starts with: the first of an ended playlist; on a live one the last segment that
 * starts at least three target durations before the playlist's end (RFC 8216 6.3.3), or the first.
 */
export function startIndex(p: MediaPlaylist): number {
  if (p.ended || p.segments.length === 0) return 0;
  let fromEnd = 0;
  for (let i = p.segments.length - 1; i >= 0; i--) {
    fromEnd += p.segments[i]!.durationS;
    if (fromEnd >= 3 * p.targetDurationS) return i;
  }
  return 0;
}
