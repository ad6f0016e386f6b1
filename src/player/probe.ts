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
import { locateFfmpeg } from '../media/ffmpeg/locate.js';
import { LineSplitter } from '../media/ffmpeg/progress.js';
import { tidyLine } from '../media/ffmpeg/stderr.js';
import { decoderArgs, snapshotArgs } from './args.js';
import { flvTags, unitOfTag, type MediaUnit } from './flv.js';
import { readHls, type FetchedSegment } from './hls.js';
import type { HlsVariant } from './hls-playlist.js';
import { Playout, SyncMarks } from './playout.js';
import {
  getJson,
  PlayRefused,
  protocolOf,
  readHttp,
  readWebSocket,
  relayStatusOf,
  withPassword,
  type ByteSource,
  type RelayStatus,
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

/** A running probe: iterate it for the stats of each second; `summary` resolves when it is over. */
export class PlaybackProbe implements AsyncIterable<PlaybackStats> {
  readonly summary: Promise<PlaybackSummary>;
  private readonly queue: PlaybackStats[] = [];
  private wake: (() => void) | null = null;
  private over = false;

  constructor(url: string, o: ProbeOptions = {}) {
    this.summary = new Session(url, o, (s) => {
      this.queue.push(s);
      this.wake?.();
    }).run();
    void this.summary.finally(() => {
      this.over = true;
      this.wake?.();
    });
  }

  async *[Symbol.asyncIterator](): AsyncIterator<PlaybackStats> {
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
  }
}

/** Plays `url` and measures it (see the module comment); never rejects: failures are outcomes of the summary. */
export function probePlayback(url: string, options: ProbeOptions = {}): PlaybackProbe {
  return new PlaybackProbe(url, options);
}

/** Bytes of the start of a stream kept for --snapshot (a GOP of 2 s at 16 Mbit/s). */
const SNAPSHOT_BYTES = 4 * 1024 * 1024;

/** Decodes `data` (the start of the stream) into the --snapshot PNG; gives up after 15 s. */
function writeSnapshot(ffmpeg: string, format: 'flv' | 'mpegts', data: Buffer, file: string): Promise<void> {
  return new Promise((resolve) => {
    const p = spawn(ffmpeg, snapshotArgs(format, file), { stdio: ['pipe', 'ignore', 'ignore'] });
    const timer = setTimeout(() => p.kill('SIGKILL'), 15_000);
    p.on('error', () => undefined);
    p.on('close', () => (clearTimeout(timer), resolve()));
    p.stdin!.on('error', () => undefined);
    p.stdin!.end(data);
  });
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

  async run(): Promise<PlaybackSummary> {
    const protocol = this.protocol;
    const m = this.m;
    if (!protocol) return m.summary('refused', `not a play URL this player reads: ${this.url}`, 0);
    const url = withPassword(this.url, this.o.pwd);
    const ffmpeg = this.o.ffmpegPath ?? locateFfmpeg().path;
    const input =
      protocol === 'rtmp'
        ? ({ kind: 'url', url } as const)
        : ({ kind: 'pipe', format: protocol === 'hls' ? 'mpegts' : 'flv' } as const);
    const child = spawn(ffmpeg, decoderArgs({ input, copyFlvToFd3: protocol === 'rtmp' }), {
      stdio: ['pipe', 'ignore', 'pipe', protocol === 'rtmp' ? 'pipe' : 'ignore'],
    });
    const killChild = () => child.kill('SIGKILL');
    process.once('exit', killChild);
    const exited = new Promise<void>((r) => child.once('close', () => r()));
    child.on('error', () => undefined);
    child.stdin!.on('error', () => undefined);
    const lines = new LineSplitter((l) => m.onLine(l));
    child.stderr!.on('data', (d: Buffer) => lines.push(d));

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
    let source: ByteSource | null = null;
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
    let sourceEnded = false;
    const sourceDone = (source?.done ?? exited).then(
      () => {
        sourceEnded = true;
        child.stdin!.end();
      },
      (e: Error) => {
        if (e instanceof PlayRefused) refused = e;
        else sourceError = e;
        child.stdin!.end();
      },
    );
    let decoderDone = false;
    void exited.then(() => (decoderDone = true));

    const interval = this.o.intervalMs ?? 1000;
    const deadline = this.o.durationMs !== undefined ? m.now() - m.elapsedMs + this.o.durationMs : Infinity;
    const startBy = m.now() - m.elapsedMs + (this.o.startTimeoutMs ?? 15_000);
    const relay = protocol === 'hls' ? null : relayStatusOf(url, this.o.relayHttp);
    let endedByServer = false;
    let reason: string | null = null;
    let nextTick = m.now() - m.elapsedMs + interval;
    for (;;) {
      await new Promise((r) => setTimeout(r, Math.max(0, Math.min(nextTick, deadline) - m.now())));
      const now = m.now();
      if (relay) void this.sampleRelayClock(relay.statusUrl, relay.stream);
      if (refused) break;
      if (this.o.signal?.aborted || now >= deadline) break;
      if (m.frames === 0 && (now >= startBy || decoderDone)) {
        reason = decoderDone ? this.whyNoMedia(sourceError) : `no frame decoded in ${Math.round(m.elapsedMs)} ms`;
        break;
      }
      if (decoderDone && now >= m.playoutEnd()) {
        endedByServer = true;
        reason = sourceError
          ? `connection lost: ${(sourceError as Error).message}`
          : sourceEnded
            ? 'the stream ended'
            : 'the stream ended';
        break;
      }
      if (now >= nextTick) {
        this.emit(m.tick(now, 'live'));
        nextTick += interval;
      }
    }
    source?.close();
    killChild();
    await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))]);
    process.off('exit', killChild);
    await sourceDone;
    const now = m.now();
    if (refused) return m.summary('refused', (refused as PlayRefused).message, (refused as PlayRefused).status);
    if (m.frames === 0 && protocol === 'rtmp' && relay) {
      const why = await this.rtmpRefusal(relay.statusUrl);
      if (why) return m.summary('refused', why.reason, why.status);
    }
    if (this.o.snapshot !== undefined && headBytes > 0)
      await writeSnapshot(ffmpeg, protocol === 'hls' ? 'mpegts' : 'flv', Buffer.concat(head), this.o.snapshot);
    const last = m.tick(now, 'end');
    const outcome = outcomeOf({ frames: m.frames, endedByServer, stalls: last.stalls });
    return m.summary(outcome, reason, undefined, last);
  }

  private whyNoMedia(sourceError: Error | null): string {
    if (sourceError) return `cannot play: ${sourceError.message}`;
    const line = [...this.m.stderr].reverse().find((l) => /\[(error|fatal)\]/.test(l));
    return line ? tidyLine(line.replace(/\[(error|fatal)\] /, '')) : 'the stream ended before a frame was decoded';
  }

  private async sampleRelayClock(statusUrl: string, stream: string): Promise<void> {
    const sent = this.m.now();
    const r = await getJson<RelayStatus>(statusUrl, 2000);
    const got = this.m.now();
    const edges = r?.body?.liveEdge;
    if (!edges) return;
    const e = edges[stream] ?? (Object.keys(edges).length === 1 ? Object.values(edges)[0] : undefined);
    if (!e) return;
    this.m.relayOff = e.timestampMs + e.ageMs + (got - sent) / 2 - got;
  }

  private async rtmpRefusal(statusUrl: string): Promise<{ status: number; reason: string } | null> {
    const r = await getJson<RelayStatus & { message?: string; hint?: string }>(statusUrl);
    if (!r) return null;
    if (r.status === 404) return { status: 404, reason: `404 ${r.body?.message ?? 'no such channel'}` };
    if (r.body?.passwordProtected)
      return this.o.pwd === undefined
        ? { status: 401, reason: '401 password required (add --pwd <password>)' }
        : { status: 403, reason: '403 wrong password (check the channel password)' };
    if (r.body?.state && r.body.state !== 'live' && r.body.state !== 'starting')
      return { status: 404, reason: `404 live ended: channel is ${r.body.state}` };
    return null;
  }
}
