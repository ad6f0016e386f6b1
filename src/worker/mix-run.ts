import { execFile } from 'node:child_process';
import type { RelayConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import type { RunNode } from './run-node.js';
import type { ChannelRecords } from '../channels/records.js';
import type { Channel } from '../channels/types.js';
import type { RoomRegistry } from '../rooms/registry.js';
import { INGEST_APP, ingestStreamName } from '../rooms/ingest.js';
import { isIngestMember } from '../rooms/model.js';
import { checkUpstream } from '../rooms/upstream-check.js';
import { runTokenQuery } from '../auth/run-tokens.js';
import { imageFrameArgs } from '../media/ffmpeg/feeder.js';
import type { FfmpegOptions } from '../media/ffmpeg/process.js';
import { colourBackground, frameBytes, type Frame } from '../mix/composer.js';
import { MixEngine, type MemberRead } from '../mix/engine.js';
import { memberKey, type MixCanvas, type MixMember } from '../mix/layout.js';
import { runEgress } from './egress.js';

/** What a mix run needs of its worker. */
export interface MixRunDeps {
  config: RelayConfig;
  store: Pick<ChannelRecords, 'get'>;
  rooms: Pick<RoomRegistry, 'get'>;
  logger: Logger;
  secret: string;
  /** Told of each layout the run applies (the worker's load follows the mix's cost). */
  onMixApplied?: (ch: Channel) => void;
  /** Where members publish in a cluster of media nodes; absent: RELAY_MEDIA_INTERNAL_HOST. */
  node?: Pick<RunNode, 'memberAt'>;
}

const RECORD_CHECK_MS = 1000;

/**
 * The worker side of a mix channel's run: its MixEngine (feeders, composition, pacing), which outlives the encoder
 * ffmpeg (each new encoder is attached to it), the layout kept as the record says (checked each second and on a
 * control message), and the end of the run once every member has been gone for the retention time.
 */
export class MixRun {
  private readonly timer: NodeJS.Timeout;
  private checking = false;
  /** A refresh asked for while one was under way: it runs again after (the record may have changed meanwhile). */
  private again = false;
  /** The record's mix the engine shows, as JSON (its version included: a rewrite under the same version still applies). */
  private applied: string;

  private constructor(
    private readonly deps: MixRunDeps,
    private readonly ch: Channel,
    readonly engine: MixEngine,
    onAllGone: () => void,
  ) {
    this.applied = JSON.stringify(ch.mix);
    this.timer = setInterval(() => {
      void this.refresh();
      if (Date.now() - engine.lastPresentAt <= deps.config.retentionMs) return;
      deps.logger.info(
        { retentionMs: deps.config.retentionMs },
        'every mix member gone for the retention time: stopping',
      );
      clearInterval(this.timer);
      onAllGone();
    }, RECORD_CHECK_MS);
  }

  static async start(deps: MixRunDeps, ch: Channel, gen: number, onAllGone: () => void): Promise<MixRun> {
    const mix = ch.mix!;
    const log = deps.logger;
    const background = await backgroundOf(deps.config.ffmpegPath, mix.canvas).catch((e: Error) => {
      log.warn({ err: e.message }, 'mix background image not decoded: colour used');
      return colourBackground(mix.canvas.width, mix.canvas.height, mix.canvas.background);
    });
    const resolve = (m: MixMember) => memberRead(deps, ch, gen, m);
    const engine = new MixEngine({ ffmpegPath: deps.config.ffmpegPath, logger: log, resolve }, mix, background);
    return new MixRun(deps, ch, engine, onAllGone);
  }

  /** The encoder's pipes option: each new encoder ffmpeg is fed by the engine as soon as it runs. */
  get encoderPipes(): Pick<FfmpegOptions, 'pipes'> {
    return { pipes: { kind: 'encoder', onSpawn: (io) => this.engine.attach(io) } };
  }

  /** Applies whatever layout the record holds if it changed (on a control message, and at the 1 s check). */
  async refresh(): Promise<void> {
    if (this.checking) {
      this.again = true;
      return;
    }
    this.checking = true;
    try {
      const now = await this.deps.store.get(this.ch.channelId);
      const seen = JSON.stringify(now?.mix);
      if (now?.mix && seen !== this.applied) {
        this.engine.update(now.mix);
        this.applied = seen;
        this.deps.onMixApplied?.(now);
        this.deps.logger.info({ version: now.mix.version, layout: now.mix.layout }, 'mix layout applied');
      }
    } catch (e) {
      this.deps.logger.debug({ err: (e as Error).message }, 'mix layout not checked');
    } finally {
      this.checking = false;
    }
    if (this.again) {
      this.again = false;
      await this.refresh();
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.engine.stop();
  }
}

/** Where a member is read now, as a channel of it would be: the ingest with a run token, or its URL via the egress. */
async function memberRead(deps: MixRunDeps, ch: Channel, gen: number, m: MixMember): Promise<MemberRead | null> {
  const up = await deps.rooms.get(ch.sdkAppId, ch.roomId, m.userId, m.srcType);
  if (!up) return null;
  const member = memberKey(m);
  if (isIngestMember(up)) {
    const streamPath = `/${INGEST_APP}/${ingestStreamName(up)}`;
    const query = runTokenQuery(deps.secret, 'read', streamPath, { channelId: ch.channelId, gen });
    const { mediaInternalHost, rtmpPort } = deps.config;
    const at = (await deps.node?.memberAt(up)) ?? { host: mediaInternalHost, rtmpPort };
    const url = `rtmp://${at.host}:${at.rtmpPort}${streamPath}?${query}`;
    return { source: { member, url, protocolWhitelist: 'rtmp,tcp', fastProbe: true } };
  }
  const input = await checkUpstream(up.url ?? '', deps.config);
  const source = { member, ...input, loopFile: input.isFile, untrustedClock: true };
  const egress = await runEgress({ sources: [source], tiers: [] }, deps.config, deps.logger);
  return { source: egress.plan.sources[0]!, env: egress.env, close: () => egress.close() };
}

/** The canvas background: a colour, or the registered image decoded once to a canvas-size frame. */
function backgroundOf(ffmpegPath: string, c: MixCanvas): Promise<Frame> {
  const file = c.backgroundImageFile;
  if (!file) return Promise.resolve(colourBackground(c.width, c.height, c.background));
  const size = frameBytes(c.width, c.height);
  return new Promise((resolve, reject) =>
    execFile(
      ffmpegPath,
      imageFrameArgs(file, c.width, c.height),
      { encoding: 'buffer', maxBuffer: size + 1024, timeout: 10_000 },
      (err, stdout) =>
        err || stdout.length < size
          ? reject(err ?? new Error('short image frame'))
          : resolve({ w: c.width, h: c.height, data: stdout.subarray(0, size) }),
    ),
  );
}
