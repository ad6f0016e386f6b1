import fs from 'node:fs/promises';
import path from 'node:path';
import type { RelayConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import type { Channel } from '../channels/types.js';
import type { ChannelStore } from '../channels/store.js';
import { startFailureCode } from '../channels/failure.js';
import { channelStreams, LIVE_APP } from '../channels/urls.js';
import { bestFirst, DEFAULT_SOURCE_KBPS, TIERS, tierEncoding } from '../channels/tiers.js';
import { channelHlsRoot, channelPlaylists } from '../channels/layout.js';
import { recordSinks, taskDir } from '../records/index.js';
import { INGEST_APP } from '../rooms/ingest.js';
import { buildRelayArgs, type InputSpec, type RelayPlan, type Sink, type TierSpec } from '../media/ffmpeg/args.js';
import { FfmpegProcess, FfmpegStartError, type InputVideo } from '../media/ffmpeg/process.js';
import { endPlaylists, masterPlaylist, writeAtomic, type Variant } from '../media/hls.js';
import { publishToken, readToken, tokenFor } from '../media-server/tokens.js';

/** Why a running channel is asked to end: an API stop, a worker shutdown (hand over), or a lost job lock. */
export type EndReason = 'stop' | 'shutdown' | 'lock-lost';

/** What the runner needs from its worker. */
export interface RunnerDeps {
  config: RelayConfig;
  store: ChannelStore;
  logger: Logger;
  /** Shared secret signing internal URLs. */
  secret: string;
  workerId: string;
}

/** How a run ended. */
export type RunOutcome = 'stopped' | 'failed' | 'gone' | 'handover';

const STATS_INTERVAL_MS = 1000;

/** The ffmpeg plan of a channel: read the upstream once, make each tier, publish it, write HLS and recordings. */
export function planFor(ch: Channel, cfg: RelayConfig, secret: string): RelayPlan {
  const host = `${cfg.mediaInternalHost}:${cfg.rtmpPort}`;
  let input: InputSpec;
  if (ch.input.kind === 'ingest') {
    const streamPath = `/${INGEST_APP}/${ch.input.streamName}`;
    input = { url: `rtmp://${host}${streamPath}?token=${tokenFor(secret, readToken(streamPath))}`, protocolWhitelist: 'rtmp,tcp', fastProbe: true };
  } else {
    input = { url: ch.input.url, protocolWhitelist: ch.input.protocolWhitelist, loopFile: ch.input.isFile };
  }
  const best = bestFirst(ch.option.rateTypes)[0];
  const tiers: TierSpec[] = channelStreams(ch.channelId, ch.option.rateTypes).map((s) => {
    const livePath = `/${LIVE_APP}/${s.streamName}`;
    // ph: the password hash travels with the worker's signed publish, so the media server knows it before any frame
    const rtmp: Sink = { kind: 'rtmp', url: `rtmp://${host}${livePath}?token=${tokenFor(secret, publishToken(livePath))}${ch.passwordHash ? `&ph=${ch.passwordHash}` : ''}` };
    const sinks: Sink[] = [rtmp];
    if (ch.hls) sinks.push({ kind: 'hls', dir: path.join(cfg.hlsDir, s.hlsDir), segmentSeconds: cfg.hlsSegmentSeconds, listSize: cfg.hlsListSize });
    if (ch.recordTaskId !== undefined && s.rateType === best) {
      sinks.push(...recordSinks(taskDir(cfg.recordsDir, ch.sdkAppId, ch.recordTaskId), ch.channelId, ch.recordTaskId, ch.option.recordFileType, cfg.recordMaxSeconds, cfg.hlsSegmentSeconds));
    }
    const encode = tierEncoding(s.rateType, !!ch.watermark, cfg.hlsSegmentSeconds, ch.input.kind === 'ingest' ? ch.input.videoKbps : undefined);
    return { sinks, ...(encode ? { encode } : {}) };
  });
  const wm = ch.watermark;
  const place = ch.option.waterMarkPosition;
  return {
    input,
    tiers,
    ...(wm && place ? { watermark: { file: wm.file, relativeWidth: place.relativeWidth, aspect: wm.height / wm.width, corner: place.corner, margin: place.margin } } : {}),
  };
}

/** Folders a plan writes into, made before ffmpeg starts. */
function planDirs(plan: RelayPlan): string[] {
  return plan.tiers.flatMap((t) => t.sinks.map((s) => (s.kind === 'hls' || s.kind === 'record-hls' ? s.dir : s.kind === 'record' ? path.dirname(s.pattern) : null)))
    .filter((d): d is string => d !== null);
}

const CODECS: Record<string, string> = { baseline: 'avc1.42e01e', 'constrained baseline': 'avc1.42e01e', main: 'avc1.4d401f', high: 'avc1.640028' };

/** The master playlist of a multi-tier HLS channel, from the upstream's size as ffmpeg reported it. */
export function masterFor(ch: Channel, src: InputVideo | null, sourceKbps: number | undefined): string {
  const srcW = src?.width ?? 1280;
  const srcH = src?.height ?? 720;
  const variants: Variant[] = bestFirst(ch.option.rateTypes).map((rt) => {
    const t = TIERS[rt];
    const encoded = rt !== 0 || !!ch.watermark;
    const height = t.maxHeight ? Math.min(t.maxHeight, srcH) : srcH;
    const width = Math.round((srcW * height) / srcH / 2) * 2;
    const kbps = t.totalKbps ?? (sourceKbps ?? DEFAULT_SOURCE_KBPS) + 128;
    const video = encoded ? CODECS.main! : CODECS[(src?.profile ?? 'high').toLowerCase()] ?? CODECS.high!;
    return { uri: `r${rt}/index.m3u8`, bandwidth: Math.round(kbps * 1100), width, height, codecs: `${video},mp4a.40.2` };
  });
  return masterPlaylist(variants);
}

/** Runs one channel on this worker: spawns its ffmpeg, reports state and stats, and ends it as asked. */
export class ChannelRunner {
  private readonly log: Logger;
  /** Ends the run from inside (the record says stopping or is gone), when a pub/sub stop message was missed. */
  private readonly local = new AbortController();

  constructor(private readonly deps: RunnerDeps, private readonly channelId: string, private readonly end: AbortSignal) {
    this.log = deps.logger.child({ channelId });
  }

  async run(): Promise<RunOutcome> {
    const { store, config } = this.deps;
    const ch = await store.get(this.channelId);
    if (!ch || ch.state === 'stopped' || ch.state === 'failed') return 'gone';
    if (ch.state === 'stopping') return this.finishStop(ch);
    const plan = planFor(ch, config, this.deps.secret);
    for (const dir of planDirs(plan)) await fs.mkdir(dir, { recursive: true });
    const ff = new FfmpegProcess({ ffmpegPath: config.ffmpegPath, args: buildRelayArgs(plan), logger: this.log, startTimeoutMs: config.startTimeoutMs });
    const t0 = Date.now();
    try {
      await ff.start();
    } catch (e) {
      await ff.kill();
      if (!(e instanceof FfmpegStartError)) throw e;
      const { code, message } = startFailureCode(e.kind);
      this.log.warn({ kind: e.kind, stderr: e.stderrTail.slice(-5) }, 'start failed');
      return this.fail(ch, code, message);
    }
    if (ch.hls && ch.option.rateTypes.length > 1) {
      await writeAtomic(path.join(channelHlsRoot(this.channelId, config), 'index.m3u8'), masterFor(ch, ff.inputVideo, ch.input.kind === 'ingest' ? ch.input.videoKbps : undefined));
    }
    const resumed = ch.state === 'live';
    const moved = await store.transition(this.channelId, ['starting', 'live'], 'live', resumed ? `resumed on ${this.deps.workerId}` : 'media flowing',
      { worker: this.deps.workerId, ...(ch.startedAt ? {} : { startedAt: Date.now() }) });
    if (!moved.ok) {
      await ff.close();
      const now = await store.get(this.channelId);
      return now?.state === 'stopping' ? this.finishStop(now) : 'gone';
    }
    await store.publish({ channelId: this.channelId, state: 'live' });
    this.log.info({ startMs: Date.now() - t0, resumed }, 'channel live');
    return this.supervise(ch, ff);
  }

  // Waits until the channel is asked to end or ffmpeg dies, saving stats meanwhile.
  private async supervise(ch: Channel, ff: FfmpegProcess): Promise<RunOutcome> {
    const died = ff.done;
    const ended = new Promise<EndReason>((resolve) => {
      for (const signal of [this.end, this.local.signal]) {
        if (signal.aborted) resolve(signal.reason as EndReason);
        signal.addEventListener('abort', () => resolve(signal.reason as EndReason), { once: true });
      }
    });
    const timer = setInterval(() => { void this.tick(ff); }, STATS_INTERVAL_MS);
    try {
      const first = await Promise.race([ended.then((reason) => ({ reason })), died.then((exit) => ({ exit }))]);
      if ('exit' in first) {
        this.log.warn({ exit: { code: first.exit.code, signal: first.exit.signal }, stderr: first.exit.stderrTail.slice(-5) }, 'ffmpeg died');
        const now = await this.deps.store.get(this.channelId);
        if (now?.state === 'stopping') return this.finishStop(now);
        return this.fail(ch, 6012, `the upstream ended or the relay process died (exit ${first.exit.code ?? first.exit.signal})`);
      }
      if (first.reason === 'lock-lost') { await ff.kill(); return 'handover'; }
      await ff.close();
      if (first.reason === 'shutdown') return 'handover';
      const now = await this.deps.store.get(this.channelId);
      return now ? this.finishStop(now) : 'gone';
    } finally {
      clearInterval(timer);
    }
  }

  // Saves the figures and, by the same write, notices a stop whose message never arrived.
  private async tick(ff: FfmpegProcess): Promise<void> {
    const p = ff.progress;
    const stats = p ? { frames: p.frame, fps: p.fps, speed: p.speed, outTimeMs: Math.round(p.outTimeUs / 1000), updatedAt: Date.now() } : undefined;
    try {
      const res = await this.deps.store.transition(this.channelId, ['live'], null, '', stats ? { stats } : {});
      if (!res.ok && !this.local.signal.aborted) this.local.abort('stop' satisfies EndReason);
    } catch (e) {
      this.log.debug({ err: (e as Error).message }, 'stats not saved');
    }
  }

  /** Ends the playlists, marks the channel stopped and frees its slots. */
  private async finishStop(ch: Channel): Promise<RunOutcome> {
    await endPlaylists(channelPlaylists(ch, this.deps.config));
    await this.deps.store.transition(this.channelId, ['stopping', 'starting', 'live'], 'stopped', 'stopped by request', { stoppedAt: Date.now() });
    await this.deps.store.release(ch);
    await this.deps.store.publish({ channelId: this.channelId, state: 'stopped' });
    this.log.info('channel stopped');
    return 'stopped';
  }

  private async fail(ch: Channel, code: number, message: string): Promise<RunOutcome> {
    // A refused start leaves no files behind; a channel that was live keeps its playlist, now ended.
    if (ch.state === 'starting') await fs.rm(channelHlsRoot(this.channelId, this.deps.config), { recursive: true, force: true });
    else await endPlaylists(channelPlaylists(ch, this.deps.config));
    await this.deps.store.transition(this.channelId, ['starting', 'live', 'stopping'], 'failed', message, { error: { code, message }, stoppedAt: Date.now() });
    await this.deps.store.release(ch);
    await this.deps.store.publish({ channelId: this.channelId, state: 'failed', code, message });
    return 'failed';
  }
}
