import fs from 'node:fs/promises';
import path from 'node:path';
import type { RelayConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import type { Channel } from '../channels/types.js';
import type { ChannelStore } from '../channels/store.js';
import { startFailureCode } from '../channels/failure.js';
import { LIVE_APP } from '../channels/urls.js';
import { INGEST_APP } from '../rooms/ingest.js';
import { buildRelayArgs, type InputSpec, type RelayPlan } from '../media/ffmpeg/args.js';
import { FfmpegProcess, FfmpegStartError } from '../media/ffmpeg/process.js';
import { endPlaylist } from '../media/hls.js';
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

/** The ffmpeg plan of a channel: read the upstream, publish RTMP to the media server, write HLS when asked. */
export function planFor(ch: Channel, cfg: RelayConfig, secret: string): RelayPlan {
  const host = `${cfg.mediaInternalHost}:${cfg.rtmpPort}`;
  let input: InputSpec;
  if (ch.input.kind === 'ingest') {
    const streamPath = `/${INGEST_APP}/${ch.input.streamName}`;
    input = { url: `rtmp://${host}${streamPath}?token=${tokenFor(secret, readToken(streamPath))}`, protocolWhitelist: 'rtmp,tcp', fastProbe: true };
  } else {
    input = { url: ch.input.url, protocolWhitelist: ch.input.protocolWhitelist, loopFile: ch.input.isFile };
  }
  const livePath = `/${LIVE_APP}/${ch.channelId}`;
  return {
    input,
    rtmpUrl: `rtmp://${host}${livePath}?token=${tokenFor(secret, publishToken(livePath))}`,
    ...(ch.hls ? { hls: { dir: path.join(cfg.hlsDir, ch.channelId), segmentSeconds: cfg.hlsSegmentSeconds, listSize: cfg.hlsListSize } } : {}),
  };
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
    if (plan.hls) await fs.mkdir(plan.hls.dir, { recursive: true });
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

  /** Ends the playlist, marks the channel stopped and frees its slots. */
  private async finishStop(ch: Channel): Promise<RunOutcome> {
    await endPlaylist(this.deps.config.hlsDir, this.channelId);
    await this.deps.store.transition(this.channelId, ['stopping', 'starting', 'live'], 'stopped', 'stopped by request', { stoppedAt: Date.now() });
    await this.deps.store.release(ch);
    await this.deps.store.publish({ channelId: this.channelId, state: 'stopped' });
    this.log.info('channel stopped');
    return 'stopped';
  }

  private async fail(ch: Channel, code: number, message: string): Promise<RunOutcome> {
    // A refused start leaves no files behind; a channel that was live keeps its playlist, now ended.
    if (ch.state === 'starting') await fs.rm(path.join(this.deps.config.hlsDir, this.channelId), { recursive: true, force: true });
    else await endPlaylist(this.deps.config.hlsDir, this.channelId);
    await this.deps.store.transition(this.channelId, ['starting', 'live', 'stopping'], 'failed', message, { error: { code, message }, stoppedAt: Date.now() });
    await this.deps.store.release(ch);
    await this.deps.store.publish({ channelId: this.channelId, state: 'failed', code, message });
    return 'failed';
  }
}
