/**
 * Copy channels for the density scenarios (density, nodes): their upstreams, their starts, and the check that every
 * one of them stays real time over a window — ffmpeg's output time advances ≥ MIN_SPEED s per wall-clock second and
 * no HLS playlist skips a segment, restarts (a new discontinuity) or stops growing.
 *
 * Upstreams: a few members publish into the ingest, each relayed by a source channel (RTMP out), and every measured
 * channel relays one of those through an external RTMP URL (the source channel's public RTMP play URL) registered as
 * its own member's upstream — real relays read upstreams that live elsewhere, so one publisher per channel on this
 * machine would only measure the bench's feeders. (The ingest itself is read with single-use tokens only.)
 */
import fs from 'node:fs';
import { fixture } from '../../test/helpers/stack.js';
import { percentile } from './proc.js';
import { allInState, sleep, startPush, type Bench, type Started } from './context.js';

export const MIN_SPEED = 0.98;

/** The measured members of a scenario: `room` … (4 a room), user ids `<prefix><i>`. */
export const copyMember = (room: number, prefix: string) => (i: number) => ({
  roomId: room + Math.floor(i / 4),
  userId: `${prefix}${i}`,
  srcType: 0 as const,
});

/**
 * `publishers` members publishing into the ingest (rooms from `room`), each relayed by a source channel (RTMP out),
 * and the members `member(0 … members-1)` registered with one source channel's RTMP play URL as their upstream.
 * Answers the source channels' ids.
 */
export async function copyUpstreams(
  b: Bench,
  opts: { room: number; prefix: string; publishers: number; members: number; member: (i: number) => Member },
): Promise<string[]> {
  const { stack } = b;
  const urls: string[] = [];
  const ids: string[] = [];
  for (let k = 0; k < opts.publishers; k++) {
    const key = { roomId: opts.room + Math.floor(k / 4), userId: `${opts.prefix}${k}`, srcType: 0 as const };
    await stack.publish(key, fixture('alice-camera.mp4'));
    const src = await startPush(stack, { ...key, option: { encode: 5 } });
    ids.push(src.channelId);
    urls.push(src.urls.find((u) => u.type === 5)!.playUrl);
  }
  await allInState(stack, ids, 'live', 60_000);
  for (let i = 0; i < opts.members; i++) {
    const m = opts.member(i);
    const r = await stack.request('PUT', `/v1/rooms/${m.roomId}/upstreams`, {
      userId: m.userId,
      srcType: 0,
      url: urls[i % opts.publishers],
    });
    if (r.body?.code !== 0) throw new Error(`upstream registration refused: ${JSON.stringify(r.body)}`);
  }
  return ids;
}

export type Member = ReturnType<ReturnType<typeof copyMember>>;

/**
 * Starts copy channels (RTMP + HLS out) for members 0 … n-1, 10 at a time. A refused start ends the starts: the
 * channels started so far are answered with the refusal.
 */
export async function startCopyChannels(
  b: Bench,
  n: number,
  member: (i: number) => Member,
): Promise<{ started: Started[]; refused: string | null }> {
  const started: Started[] = [];
  for (let i = 0; i < n; i += 10) {
    const batch = await Promise.allSettled(
      Array.from({ length: Math.min(10, n - i) }, (_, j) =>
        startPush(b.stack, { ...member(i + j), option: { encode: 3 } }),
      ),
    );
    for (const r of batch) if (r.status === 'fulfilled') started.push(r.value);
    const no = batch.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (no) return { started, refused: (no.reason as Error).message };
  }
  return { started, refused: null };
}

/** An ffmpeg's output time (ms) at wall-clock time `at` (ms), or null when it has none. */
export interface Progress {
  outTimeMs: number;
  at: number;
  /** The channel's state, when it has a record. */
  state?: string;
}

export interface RealTime {
  realTime: boolean;
  minSpeed: number;
  hlsGaps: number;
  /**
   * Playlists whose window moved past segments this check never saw because it read them too late (the bench itself
   * stalled longer than a playlist's window): not counted as gaps, as ffmpeg numbers its segments without holes.
   */
  hlsUnverified: number;
  /** p95 of the time the media server took to serve a playlist during the window (no URLs: NaN). */
  playlistP95Ms: number;
  failures: string[];
}

interface Watch {
  /** highest media sequence number seen, -1: none yet */ maxSeq: number;
  /** segments missing between two reads that were less than a window apart */ skipped: number;
  /** segments missing between two reads further apart than the window */ unseen: number;
  /** the numbering went back (an output restarted with new numbers) */ renumbered: boolean;
  discontinuities: number;
  lastReadAt: number;
  lastNewAt: number;
  longestStallMs: number;
}

/**
 * Watches the HLS playlists on disk (what ffmpeg wrote: a slow media server is measured apart, by the HTTP time of a
 * few playlist URLs) and the output progress of a set of ffmpegs from `start` to `finish`.
 */
export class RealTimeWatch {
  private readonly watches: Watch[];
  private readonly httpMs: number[] = [];
  private round = 0;
  private p0: (Progress | null)[] = [];
  private polling = false;
  private poller: Promise<void> = Promise.resolve();

  constructor(
    private readonly o: {
      names: readonly string[];
      playlists: readonly string[];
      /** playlist URLs timed over HTTP, 8 per poll */ urls: readonly string[];
      segSeconds: number;
      progress: () => Promise<(Progress | null)[]>;
    },
  ) {
    this.watches = o.playlists.map(() => ({
      maxSeq: -1,
      skipped: 0,
      unseen: 0,
      renumbered: false,
      discontinuities: -1,
      lastReadAt: 0,
      lastNewAt: Date.now(),
      longestStallMs: 0,
    }));
  }

  private async poll(): Promise<void> {
    for (let k = 0; k < Math.min(8, this.o.urls.length); k++) {
      const t = performance.now();
      await fetch(this.o.urls[(this.round * 8 + k) % this.o.urls.length]!)
        .then((r) => r.text())
        .catch(() => '');
      this.httpMs.push(performance.now() - t);
    }
    this.round++;
    await Promise.all(
      this.o.playlists.map(async (file, i) => {
        const text = await fs.promises.readFile(file, 'utf8').catch(() => '');
        const w = this.watches[i]!;
        const disc = (text.match(/#EXT-X-DISCONTINUITY\n/g) ?? []).length;
        const base = Number(/#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(text)?.[1] ?? NaN);
        const count = (text.match(/#EXTINF/g) ?? []).length;
        if (!Number.isFinite(base)) return;
        const now = Date.now();
        const last = base + count - 1;
        if (w.maxSeq >= 0 && base > w.maxSeq + 1) {
          // the window is `count` segments: a read within it of the previous one sees every segment in between
          if (now - w.lastReadAt < (count - 1) * this.o.segSeconds * 1000) w.skipped += base - w.maxSeq - 1;
          else w.unseen += base - w.maxSeq - 1;
        }
        if (w.maxSeq >= 0 && last < w.maxSeq) w.renumbered = true;
        const fresh = last > w.maxSeq;
        w.maxSeq = Math.max(w.maxSeq, last);
        w.lastReadAt = now;
        if (fresh) w.lastNewAt = now;
        else w.longestStallMs = Math.max(w.longestStallMs, now - w.lastNewAt);
        // a discontinuity tag that was not there at the first poll: the output restarted
        if (w.discontinuities < 0) w.discontinuities = disc;
        else if (disc > w.discontinuities) w.discontinuities = 1e6;
      }),
    );
  }

  /** Starts the window: a first poll and progress reading, then a poll every 2 s. */
  async start(): Promise<void> {
    await this.poll();
    this.p0 = await this.o.progress();
    this.polling = true;
    this.poller = (async () => {
      while (this.polling) {
        await sleep(2000);
        if (this.polling) await this.poll();
      }
    })();
  }

  /** Ends the window and judges every ffmpeg. */
  async finish(): Promise<RealTime> {
    this.polling = false;
    await this.poller;
    await this.poll();
    const p1 = await this.o.progress();
    const failures: string[] = [];
    let minSpeed = Infinity;
    let hlsGaps = 0;
    let hlsUnverified = 0;
    this.o.names.forEach((name, i) => {
      const a = this.p0[i];
      const z = p1[i];
      if (z?.state !== undefined && z.state !== 'live') failures.push(`${name} ${z.state}`);
      const speed = a && z && z.at > a.at ? (z.outTimeMs - a.outTimeMs) / (z.at - a.at) : 0;
      minSpeed = Math.min(minSpeed, speed);
      if (speed < MIN_SPEED) failures.push(`${name} speed ${speed.toFixed(3)}`);
      const w = this.watches[i]!;
      const none = w.maxSeq < 0;
      const stalled = w.longestStallMs > this.o.segSeconds * 2000 + 2500;
      const restarted = w.discontinuities >= 1e6 || w.renumbered;
      if (none || w.skipped > 0 || restarted || stalled) {
        hlsGaps++;
        failures.push(
          `${name} HLS${none ? ' no playlist' : ''}${w.skipped > 0 ? ` skipped ${w.skipped}` : ''}${restarted ? ' restarted' : ''}${stalled ? ` no new segment for ${w.longestStallMs} ms` : ''}`,
        );
      } else if (w.unseen > 0) hlsUnverified++;
    });
    return {
      realTime: failures.length === 0,
      minSpeed,
      hlsGaps,
      hlsUnverified,
      playlistP95Ms: Math.round(percentile(this.httpMs, 95)),
      failures,
    };
  }
}

/** Progress of channels from their records (the worker's latest ffmpeg progress, with its time). */
export const recordProgress = (b: Bench, ids: readonly string[]) => async (): Promise<(Progress | null)[]> => {
  const raw = await b.stack.redis.mget(...ids.map((id) => `${b.stack.prefix}:channel:${id}`));
  return raw.map((r) => {
    if (!r) return null;
    const ch = JSON.parse(r) as { state: string; stats?: { outTimeMs: number; updatedAt: number } };
    return ch.stats
      ? { outTimeMs: ch.stats.outTimeMs, at: ch.stats.updatedAt, state: ch.state }
      : { outTimeMs: NaN, at: NaN, state: ch.state };
  });
};
