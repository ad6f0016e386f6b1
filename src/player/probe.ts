/**
 * `probePlayback(url)`: plays a stream as a viewer would and measures what it gets, one `PlaybackStats` a second and a
 * `PlaybackSummary` at the end. One ffmpeg decodes video and audio (args.ts); the probe reads HTTP-FLV, WS-FLV and HLS
 * itself (so it knows each frame's bytes, each segment's fetch time and program date) and lets ffmpeg read RTMP (its
 * tracks copied back as FLV on fd 3 for the byte accounting). The decoded frames go through a playout (playout.ts)
 * that counts stalls; latency comes from PROGRAM-DATE-TIME (HLS), the relay's channel clock (FLV/RTMP on the relay)
 * or the freshest arrival (any other server).
 */
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { redactParams } from '../log.js';
import { locateFfmpeg } from '../media/ffmpeg/locate.js';
import { LineSplitter } from '../media/ffmpeg/progress.js';
import { tidyLine } from '../media/ffmpeg/stderr.js';
import { decoderArgs } from './args.js';
import { raceTimeout, SNAPSHOT_BYTES, tracked, writeSnapshot } from './processes.js';
import { flvTags, unitOfTag } from './flv.js';
import { readHls } from './hls.js';
import {
  PlayRefused,
  protocolOf,
  readHttp,
  readWebSocket,
  relayClockOffset,
  guessRelay,
  relayEndReason,
  relayRefusal,
  relayStatusOf,
  withPassword,
  type ByteSource,
} from './sources.js';
import { Meter } from './meter.js';
import { outcomeOf, type PlaybackStats, type PlaybackSummary } from './stats.js';
import { TsAccounting } from './ts.js';

export interface ProbeOptions {
  /** The channel password (sent as `pwd`). */
  pwd?: string;
  /** Play this long (ms), then stop; default: until the stream ends or `signal` aborts. */
  durationMs?: number;
  /** No decoded frame by then (ms, default 15 000): "never started". */
  startTimeoutMs?: number;
  /** HLS master playlists: the variant (`best`, `lowest`, an index, `720p`, a URI part such as `r10`). */
  variant?: string;
  /** Write a decoded frame as PNG here. */
  snapshot?: string;
  /** The relay media server's HTTP origin, for the latency of RTMP plays (HTTP URLs name it themselves). */
  relayHttp?: string;
  ffmpegPath?: string;
  signal?: AbortSignal;
  /** Between two stats (ms, default 1000). */
  intervalMs?: number;
}

/**
 * A running probe: iterate it (once) for the stats of each second; `summary` resolves when it is over. Leaving the
 * iteration early (break, return, a throw) stops the playback.
 */
export class PlaybackProbe implements AsyncIterable<PlaybackStats> {
  readonly summary: Promise<PlaybackSummary>;
  private readonly queue: PlaybackStats[] = [];
  private wake: (() => void) | null = null;
  private over = false;
  private readonly stop = new AbortController();

  constructor(url: string, o: ProbeOptions = {}) {
    const signal = o.signal ? AbortSignal.any([o.signal, this.stop.signal]) : this.stop.signal;
    this.summary = new Session(url, { ...o, signal }, (s) => {
      this.queue.push(s);
      this.wake?.();
    }).run();
    const done = () => {
      this.over = true;
      this.wake?.();
    };
    this.summary.then(done, done);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<PlaybackStats> {
    try {
      for (;;) {
        const next = this.queue.shift();
        if (next) {
          yield next;
          continue;
        }
        if (this.over) return;
        await new Promise<void>((r) => (this.wake = r));
        this.wake = null;
      }
    } finally {
      if (!this.over) this.stop.abort();
    }
  }
}

/** Plays `url` and measures it (see the module comment); never rejects: failures are outcomes of the summary. */
export function probePlayback(url: string, options: ProbeOptions = {}): PlaybackProbe {
  return new PlaybackProbe(url, options);
}

class Session {
  private readonly m: Meter;
  private readonly protocol;

  constructor(
    private readonly url: string,
    private readonly o: ProbeOptions,
    private readonly emit: (s: PlaybackStats) => void,
  ) {
    this.protocol = protocolOf(url);
    this.m = new Meter(url, this.protocol ?? 'http-flv', o.snapshot);
  }

  /** Plays and measures; never rejects (a failure of the player itself is the summary's reason). */
  async run(): Promise<PlaybackSummary> {
    try {
      return await this.play();
    } catch (e) {
      const m = this.m;
      return m.summary(
        m.frames ? 'stalled' : 'never-started',
        redactParams(`the player failed: ${(e as Error).message}`),
      );
    }
  }

  private async play(): Promise<PlaybackSummary> {
    const protocol = this.protocol;
    const m = this.m;
    if (!protocol) return m.summary('refused', `not a play URL this player reads: ${redactParams(this.url)}`, 0);
    const url = withPassword(this.url, this.o.pwd);
    const ffmpeg = this.o.ffmpegPath ?? locateFfmpeg().path;
    const input =
      protocol === 'rtmp'
        ? ({ kind: 'url', url } as const)
        : ({ kind: 'pipe', format: protocol === 'hls' ? 'mpegts' : 'flv' } as const);
    const child = tracked(
      spawn(ffmpeg, decoderArgs({ input, copyFlvToFd3: protocol === 'rtmp' }), {
        stdio: ['pipe', 'ignore', 'pipe', protocol === 'rtmp' ? 'pipe' : 'ignore'],
      }),
    );
    let spawnError: Error | null = null;
    let exitedAt: number | null = null;
    const exited = new Promise<void>((r) => child.once('close', () => ((exitedAt = m.now()), r())));
    child.on('error', (e) => (spawnError = e));
    child.stdin!.on('error', () => undefined);
    const lines = new LineSplitter((l) => m.onLine(l));
    child.stderr!.on('data', (d: Buffer) => lines.push(d));
    let source: ByteSource | null = null;
    try {
      const feedFlv = flvTags((t) => {
        const u = unitOfTag(t);
        if (u) m.onUnit(u);
      });
      const ts = new TsAccounting((u) => m.onUnit(u));
      const write = (b: Buffer) => {
        if (!child.stdin!.destroyed) child.stdin!.write(b);
      };
      // the first bytes received, for --snapshot
      const head: Buffer[] = [];
      let headBytes = 0;
      const keep = (b: Buffer) => {
        if (this.o.snapshot === undefined || headBytes >= SNAPSHOT_BYTES) return;
        head.push(Buffer.from(b));
        headBytes += b.length;
      };
      const flv = (b: Buffer) => (feedFlv(b), keep(b), write(b));
      if (protocol === 'rtmp') (child.stdio[3] as Readable).on('data', (b: Buffer) => (feedFlv(b), keep(b)));
      else if (protocol === 'http-flv') source = readHttp(url, flv);
      else if (protocol === 'ws-flv') source = readWebSocket(url, flv);
      else
        source = readHls(url, {
          variant: this.o.variant,
          onVariant: (v) => (m.variant = v),
          onSegment: (data, s) => {
            ts.flush();
            m.segment(s);
            ts.push(data);
            keep(data);
            write(data);
          },
        });

      let refused: PlayRefused | null = null;
      let sourceError: Error | null = null;
      let sourceEndedAt: number | null = null;
      const sourceDone = (source?.done ?? exited).then(
        () => {
          sourceEndedAt = m.now();
          child.stdin!.end();
        },
        (e: Error) => {
          if (e instanceof PlayRefused) refused = e;
          else sourceError = e;
          sourceEndedAt = m.now();
          child.stdin!.end();
        },
      );

      const interval = this.o.intervalMs ?? 1000;
      const t0 = m.now() - m.elapsedMs;
      const deadline = this.o.durationMs !== undefined ? t0 + this.o.durationMs : Infinity;
      const startBy = t0 + (this.o.startTimeoutMs ?? 15_000);
      // the relay's status: named by an HTTP URL or --relay-http; else, for RTMP, asked once on the relay's default port
      let relay = protocol === 'hls' ? null : relayStatusOf(url, this.o.relayHttp);
      const sampleClock = () => {
        if (relay)
          void relayClockOffset(relay.statusUrl, relay.stream, () => m.now()).then((off) => {
            if (off !== null) m.relayOff = off;
          });
      };
      if (!relay && protocol === 'rtmp')
        void guessRelay(url).then((r) => {
          relay = r;
          sampleClock();
        });
      sampleClock();
      /** The server ended the stream, at that time (its connection closed, or RTMP's reader exited). */
      let endedAt: number | null = null;
      let reason: string | null = null;
      let decoderFailed = false;
      let nextTick = t0 + interval;
      for (;;) {
        await new Promise((r) => setTimeout(r, Math.max(0, Math.min(nextTick, deadline) - m.now())));
        const now = m.now();
        sampleClock();
        if (refused) break;
        if (this.o.signal?.aborted || now >= deadline) {
          if (now >= nextTick - 100 && m.frames > 0) this.emit(m.tick(now, 'live')); // the last second, too
          break;
        }
        if (m.frames === 0 && (now >= startBy || exitedAt !== null)) {
          reason =
            exitedAt !== null
              ? this.whyNoMedia(spawnError ?? sourceError, ffmpeg)
              : `no frame decoded in ${Math.round(m.elapsedMs)} ms`;
          break;
        }
        if (exitedAt !== null && now >= m.playoutEnd()) {
          // a pipe's decoder that exits while its source still flows failed by itself: not the server's doing
          decoderFailed = protocol !== 'rtmp' && sourceEndedAt === null;
          endedAt = decoderFailed ? null : protocol === 'rtmp' ? exitedAt : sourceEndedAt;
          reason = decoderFailed
            ? `the decoder exited: ${this.lastError() ?? 'no reason given'}`
            : sourceError
              ? `connection lost: ${(sourceError as Error).message}`
              : (source?.endReason ?? 'the server closed the stream');
          break;
        }
        if (now >= nextTick) {
          this.emit(m.tick(now, 'live'));
          nextTick += interval;
        }
      }
      source?.close();
      child.kill('SIGKILL');
      await raceTimeout(exited, 2000);
      await raceTimeout(sourceDone, 2000);
      if (refused)
        return m.summary('refused', redactParams((refused as PlayRefused).message), (refused as PlayRefused).status);
      const known = relay as { statusUrl: string; stream: string } | null;
      if (m.frames === 0 && protocol === 'rtmp' && known) {
        const why = await relayRefusal(known.statusUrl, url, this.o.pwd !== undefined);
        if (why) return m.summary('refused', why.reason, why.status);
      }
      if (m.frames === 0 && protocol === 'rtmp' && !known && reason !== null)
        reason +=
          ' (an RTMP server refuses by closing the connection; on the relay, --relay-http http://HOST:8000 tells why)';
      // what the relay says of a live it ended (FLV, RTMP)
      if (endedAt !== null && known) reason = (await relayEndReason(known.statusUrl)) ?? reason;
      if (this.o.snapshot !== undefined && headBytes > 0)
        await writeSnapshot(ffmpeg, protocol === 'hls' ? 'mpegts' : 'flv', Buffer.concat(head), this.o.snapshot);
      // an ended stream is measured up to its end: the last frame's time, or the server's close when that came later
      // (a freeze until then is a stall), not the moment this loop noticed
      const at = endedAt !== null ? Math.max(m.playoutEnd(), endedAt) : m.now();
      const last = m.tick(at, 'end');
      const outcome = decoderFailed
        ? 'stalled'
        : outcomeOf({ frames: m.frames, endedByServer: endedAt !== null, stalls: last.stalls });
      return m.summary(outcome, reason === null ? null : redactParams(reason), undefined, last, at);
    } finally {
      source?.close();
      child.kill('SIGKILL');
    }
  }

  private lastError(): string | null {
    const line = [...this.m.stderr].reverse().find((l) => /\[(error|fatal)\]/.test(l));
    return line ? tidyLine(line.replace(/\[(error|fatal)\] /, '')) : null;
  }

  private whyNoMedia(error: Error | null, ffmpeg: string): string {
    if (error && (error as NodeJS.ErrnoException).code === 'ENOENT')
      return `cannot run ffmpeg at ${ffmpeg} (install it, or set FFMPEG_PATH)`;
    if (error) return `cannot play: ${error.message}`;
    return this.lastError() ?? 'the stream ended before a frame was decoded';
  }
}
