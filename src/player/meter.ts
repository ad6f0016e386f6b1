/**
 * The measuring side of a playback (pure of processes and sockets): media units from the byte accounting, the
 * decoder's log lines, segment and clock facts go in; a `PlaybackStats` per second and the `PlaybackSummary` come out.
 * How each figure is defined: stats.ts; the playout and the sync marks: playout.ts.
 */
import { existsSync, statSync } from 'node:fs';
import { redactParams } from '../log.js';
import { tidyLine } from '../media/ffmpeg/stderr.js';
import { DecoderLog, isDecodeError } from './decoder-log.js';
import type { MediaUnit } from './flv.js';
import type { FetchedSegment } from './hls.js';
import type { HlsVariant } from './hls-playlist.js';
import { Playout, SyncMarks } from './playout.js';
import { PLAY_EXIT, type LatencySource, type PlaybackStats, type PlaybackSummary, type PlayProtocol } from './stats.js';

interface Unit extends MediaUnit {
  at: number;
}

const median = (xs: readonly number[]): number | null => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
};

const roundOrNull = (v: number | null) => (v === null ? null : Math.round(v));

export class Meter {
  private readonly t0 = performance.now();
  private readonly wallOffset = Date.now() - performance.now();
  private readonly startedWall = Date.now();
  private readonly playout = new Playout();
  private readonly marks = new SyncMarks();
  private readonly units: Unit[] = [];
  private lastAudioPts: number | null = null;
  private clockSamples: number[] = [];
  private decodeErrors = 0;
  firstFrameAt: number | null = null;
  frames = 0;
  private size: { width: number; height: number } | null = null;
  relayOff: number | null = null;
  private arrivalOff: number | null = null;
  private lastVideoPts: number | null = null;
  private readonly segments: { firstPts: number | null; pdt: number | null; durationMs: number }[] = [];
  lastSegment: FetchedSegment | null = null;
  variant: HlsVariant | null = null;
  /** Error lines of the decoder (the last 50). */
  readonly stderr: string[] = [];
  private readonly partial = {
    video: [] as number[],
    audio: [] as number[],
    drift: [] as number[],
    latency: [] as number[],
  };
  private latencySource: LatencySource | null = null;
  private firstShownPts: number | null = null;
  private readonly errorSamples: string[] = [];
  private readonly perSecond = {
    video: [] as number[],
    audio: [] as number[],
    drift: [] as number[],
    latency: [] as number[],
  };
  private pendingSegment: { firstPts: number | null } | null = null;
  private lastDrift: { ms: number; source: 'marks' | 'clocks' } | null = null;
  lastDecodeError: string | null = null;
  private readonly log = new DecoderLog();

  constructor(
    readonly url: string,
    readonly protocol: PlayProtocol,
    private readonly snapshot?: string,
  ) {}

  now(): number {
    return performance.now();
  }

  get elapsedMs(): number {
    return this.now() - this.t0;
  }

  /** A fetched HLS segment, before its bytes go to the accounting. */
  segment(s: FetchedSegment): void {
    const seg = { firstPts: null as number | null, pdt: s.programDateMs, durationMs: s.durationS * 1000 };
    this.segments.push(seg);
    if (this.segments.length > 30) this.segments.shift();
    this.pendingSegment = seg;
    this.lastSegment = s;
  }

  playoutEnd(): number {
    const f = this.playout.onScreen(Infinity);
    return f ? f.shownAt + this.playout.intervalMs : 0;
  }

  onUnit(u: MediaUnit): void {
    const at = this.now();
    this.units.push({ ...u, at });
    while (this.units.length && this.units[0]!.at < at - 30_000) this.units.shift();
    if (u.track === 'video') {
      const off = u.ptsMs - at;
      // the freshest arrival; a clock that goes back or jumps (a publisher reconnecting elsewhere) starts it again
      const jump =
        this.lastVideoPts !== null && (u.ptsMs < this.lastVideoPts - 1000 || u.ptsMs > this.lastVideoPts + 5000);
      if (this.arrivalOff === null || off > this.arrivalOff || jump) this.arrivalOff = off;
      this.lastVideoPts = u.ptsMs;
      if (this.pendingSegment && this.pendingSegment.firstPts === null) this.pendingSegment.firstPts = u.ptsMs;
    }
  }

  onLine(line: string): void {
    const e = this.log.read(line);
    if (!e) {
      if (/\[(error|fatal)\]/.test(line)) this.stderr.push(line);
      return;
    }
    const now = this.now();
    switch (e.kind) {
      case 'video':
        this.frames++;
        this.firstFrameAt ??= now;
        this.size = { width: e.width, height: e.height };
        this.playout.frame(e.ptsMs, now, e.width, e.height);
        this.firstShownPts ??= e.ptsMs;
        if (this.lastAudioPts !== null) this.clockSamples.push(this.lastAudioPts - e.ptsMs);
        break;
      case 'luma':
        this.marks.luma(e.ptsMs, e.mean);
        break;
      case 'audio':
        this.lastAudioPts = e.ptsMs;
        break;
      case 'level':
        if (this.lastAudioPts !== null) this.marks.level(this.lastAudioPts, e.rmsDb);
        break;
      case 'error':
        this.stderr.push(line);
        if (this.stderr.length > 50) this.stderr.shift();
        if (isDecodeError(line)) {
          this.decodeErrors++;
          const tidy = tidyLine(line.replace(/\[(error|fatal)\] /, ''));
          if (this.errorSamples.length < 3 && !this.errorSamples.includes(tidy)) this.errorSamples.push(tidy);
        }
        break;
    }
  }

  private latency(ptsMs: number, shownAt: number): { ms: number; source: LatencySource } | null {
    if (this.protocol === 'hls') {
      for (let i = this.segments.length - 1; i >= 0; i--) {
        const s = this.segments[i]!;
        if (s.firstPts === null || s.pdt === null) continue;
        const into = ptsMs - s.firstPts;
        if (into >= 0 && into <= s.durationMs + 1000)
          return { ms: Math.round(shownAt + this.wallOffset - (s.pdt + into)), source: 'program-date-time' };
      }
      return null;
    }
    if (this.relayOff !== null) return { ms: Math.round(shownAt - (ptsMs - this.relayOff)), source: 'relay-clock' };
    if (this.arrivalOff !== null) return { ms: Math.round(shownAt - (ptsMs - this.arrivalOff)), source: 'arrival' };
    return null;
  }

  tick(now: number, kind: 'live' | 'end'): PlaybackStats {
    const f = this.playout.onScreen(now);
    const stalls = this.playout.stallsAt(now);
    let videoKbps = 0;
    let audioKbps = 0;
    if (f) {
      // the media shown in the last second; less than a second shown so far: that much
      const first = this.firstShownPts ?? f.ptsMs;
      const span = f.ptsMs >= first ? Math.min(1000, f.ptsMs - first + this.playout.intervalMs) : 1000;
      const inWindow = (u: Unit) => u.ptsMs > f.ptsMs - span && u.ptsMs <= f.ptsMs;
      for (const u of this.units)
        if (inWindow(u)) u.track === 'video' ? (videoKbps += u.bytes) : (audioKbps += u.bytes);
      videoKbps = Math.round((videoKbps * 8) / span);
      audioKbps = Math.round((audioKbps * 8) / span);
    }
    const clock = median(this.clockSamples);
    this.clockSamples = [];
    const marks = this.marks.offsetMs;
    // an HLS segment is decoded at once: a second without decoding keeps the last figure
    if (marks !== null) this.lastDrift = { ms: marks, source: 'marks' };
    else if (clock !== null) this.lastDrift = { ms: clock, source: 'clocks' };
    const drift = this.lastDrift?.ms ?? null;
    const source = this.lastDrift?.source ?? null;
    const lat = f ? this.latency(f.ptsMs, f.shownAt) : null;
    const state =
      kind === 'end' ? 'ended' : !f ? 'connecting' : this.playout.ongoingStallMs(now) > 0 ? 'stalled' : 'playing';
    const fps = this.playout.shownBetween(now - 1000, now).length;
    // the summary averages whole seconds of playing; a run shorter than that, what it has
    const whole = this.firstFrameAt !== null && now - this.firstFrameAt >= 1000;
    const into = whole ? this.perSecond : this.partial;
    if (f && (state === 'playing' || (kind === 'end' && this.perSecond.video.length === 0))) {
      into.video.push(videoKbps);
      into.audio.push(audioKbps);
      if (lat) into.latency.push(lat.ms);
      if (drift !== null) into.drift.push(drift);
    }
    if (lat) this.latencySource = lat.source;
    const s: PlaybackStats = {
      t: Math.round((now - this.t0) / 1000),
      state,
      protocol: this.protocol!,
      width: f?.width ?? null,
      height: f?.height ?? null,
      fps,
      videoKbps,
      audioKbps,
      avDriftMs: drift === null ? null : Math.round(drift),
      avDriftSource: source,
      avClockMs: clock === null ? null : Math.round(clock),
      latencyMs: lat?.ms ?? null,
      latencySource: lat?.source ?? null,
      stalls: stalls.count,
      stallMs: stalls.totalMs,
      decodeErrors: this.decodeErrors,
      ...(this.protocol === 'hls'
        ? {
            hls: {
              variant: this.variantView(),
              mediaSequence: this.lastSegment?.sequence ?? null,
              fetchMs: this.lastSegment?.fetchMs ?? null,
              segmentBytes: this.lastSegment?.bytes ?? null,
            },
          }
        : {}),
    };
    return s;
  }

  summary(
    outcome: PlaybackSummary['outcome'],
    reason: string | null,
    status?: number,
    last?: PlaybackStats,
    /** When the playback ended (default: now). */
    end = this.now(),
  ): PlaybackSummary {
    const now = end;
    const played = this.firstFrameAt === null ? 0 : (now - this.firstFrameAt) / 1000;
    const shown = this.playout.shownCount(now);
    // frames per second of playing: the time frozen in stalls (a lost upstream before the end) does not count
    const playing = played - this.playout.stallsAt(now).totalMs / 1000;
    const avg = (xs: number[]) => (xs.length ? Math.round(xs.reduce((a, b) => a + b, 0) / xs.length) : null);
    const per = this.perSecond.video.length > 0 ? this.perSecond : this.partial;
    const marks = this.marks.offsetMs;
    return {
      summary: true,
      url: redactParams(this.url),
      protocol: this.protocol ?? 'http-flv',
      outcome,
      exitCode: PLAY_EXIT[outcome],
      reason,
      ...(status !== undefined ? { status } : {}),
      playedSeconds: Math.round(played * 10) / 10,
      seconds: Math.round((this.now() - this.t0) / 100) / 10,
      firstFrameMs: this.firstFrameAt === null ? null : Math.round(this.firstFrameAt - this.t0),
      width: this.size?.width ?? null,
      height: this.size?.height ?? null,
      frames: shown,
      fps: playing > 0.5 ? Math.round((shown / playing) * 10) / 10 : null,
      videoKbps: avg(per.video),
      audioKbps: avg(per.audio),
      avDriftMs: marks ?? roundOrNull(median(per.drift)),
      avDriftSource: marks !== null ? 'marks' : (this.lastDrift?.source ?? null),
      latencyMs: roundOrNull(median(per.latency)),
      latencySource: this.latencySource,
      stalls: last?.stalls ?? 0,
      stallMs: last?.stallMs ?? 0,
      decodeErrors: this.decodeErrors,
      decodeErrorSamples: this.errorSamples,
      ...(this.protocol === 'hls' ? { variant: this.variantView() } : {}),
      ...(this.snapshot !== undefined ? { snapshot: this.snapshotWritten() } : {}),
    };
  }

  /** The HLS variant playing, as reported (its URI without credentials). */
  private variantView(): { index: number; bandwidth: number | null; resolution: string | null; uri: string } | null {
    const v = this.variant;
    return v ? { index: v.index, bandwidth: v.bandwidth, resolution: v.resolution, uri: redactParams(v.uri) } : null;
  }

  /** The snapshot file, when the decoder wrote it during this run. */
  private snapshotWritten(): string | null {
    const file = this.snapshot;
    if (!file || !existsSync(file)) return null;
    const st = statSync(file);
    return st.size > 0 && st.mtimeMs >= this.startedWall - 1000 ? file : null;
  }
}
