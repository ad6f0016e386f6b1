import crypto from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs/promises';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import type { RtpPacket, RtcpPacket } from 'werift';
import type { Logger } from '../log.js';
import type { IngestKey } from '../rooms/ingest.js';
import { FfmpegProcess } from '../media/ffmpeg/process.js';
import { bridgeArgs, bridgeSdp, type BridgePorts } from './bridge-args.js';
import { startsKeyframe } from './keyframe.js';
import { freeRtpPortPair } from './ports.js';
import type { ChosenCodecs } from './sdp.js';
import type { AnsweredPeer } from './peer.js';

/** Settings of a WHIP session. */
export interface WhipSessionOptions {
  ffmpegPath: string;
  /** No RTP for this long ends the session (RELAY_INGEST_IDLE_MS; 0: never). */
  idleMs: number;
  /** Keyframe interval of converted video, and of the keyframes asked for when H.264 is copied (s). */
  gopSeconds: number;
  /** Bitrate of converted video, kbit/s. */
  videoKbps: number;
  /** Folder of the bridge's SDP files. */
  workDir: string;
  /** The member's ingest URL with a fresh single-use bridge token. */
  ingestUrl: () => string;
  logger: Logger;
}

/** Typed events of a session. */
export interface WhipSessionEvents {
  /** close() began: the session takes no more requests. */
  closing: [reason: string];
  /** Everything it ran has ended. */
  closed: [reason: string];
}

const PLI_UNTIL_FLOWING_MS = 500;
const PLI_MIN_GAP_MS = 300;
const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 60_000;
const RESTART_DELAY_MS = 500;

/**
 * One WHIP publisher: werift receives its RTP and forwards it to local UDP ports, where one bridge ffmpeg reads it
 * (SDP) and publishes H.264 + AAC into the member's ingest stream, so the member registers like an RTMP one. The
 * session asks for keyframes (PLI) while the bridge waits for one and, when H.264 is copied, every `gopSeconds`;
 * it restarts a bridge that dies, and ends on DELETE, ICE/DTLS failure or `idleMs` without RTP.
 */
export class WhipSession extends EventEmitter<WhipSessionEvents> {
  readonly id = crypto.randomBytes(16).toString('hex');
  readonly createdAt = Date.now();
  private readonly out = dgram.createSocket('udp4');
  private bridge: FfmpegProcess | null = null;
  private flowing = false;
  private closed = false;
  private lastRtpAt = Date.now();
  private lastKeyframeAt = 0;
  private lastPliAt = 0;
  private videoSsrc: number | null = null;
  private restarts: number[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  /** When the bridge first published media (ms since the epoch), for figures. */
  firstFlowAt: number | null = null;

  constructor(
    readonly key: IngestKey,
    readonly streamName: string,
    private readonly peer: AnsweredPeer,
    private readonly codecs: ChosenCodecs,
    private readonly ports: BridgePorts,
    private readonly opts: WhipSessionOptions,
  ) {
    super();
    this.out.on('error', () => undefined);
  }

  /** Finds the bridge's ports, wires the tracks and starts the bridge; the peer is already answered. */
  static async open(
    key: IngestKey,
    streamName: string,
    peer: AnsweredPeer,
    codecs: ChosenCodecs,
    opts: WhipSessionOptions,
  ): Promise<WhipSession> {
    const ports = {
      video: await freeRtpPortPair(),
      audio: codecs.audio && peer.audio ? await freeRtpPortPair() : null,
    };
    const s = new WhipSession(key, streamName, peer, codecs, ports, opts);
    await new Promise<void>((r) => s.out.bind(0, '127.0.0.1', r));
    s.wire();
    await s.startBridge();
    return s;
  }

  private get log(): Logger {
    return this.opts.logger;
  }

  private wire(): void {
    const { pc, video, audio } = this.peer;
    video.receiver.track.onReceiveRtp.subscribe((rtp) => this.onVideo(rtp));
    video.receiver.track.onReceiveRtcp.subscribe((p) => this.forwardRtcp(p, this.ports.video));
    if (audio && this.ports.audio !== null) {
      const port = this.ports.audio;
      audio.receiver.track.onReceiveRtp.subscribe((rtp) => this.forward(rtp.serialize(), port));
      audio.receiver.track.onReceiveRtcp.subscribe((p) => this.forwardRtcp(p, port));
    }
    pc.connectionStateChange.subscribe((state) => {
      if (state === 'failed' || state === 'closed') void this.close(`ICE/DTLS ${state}`);
    });
    const every = (ms: number, f: () => void) => {
      const t = setInterval(f, ms);
      t.unref();
      this.timers.push(t);
    };
    every(Math.max(50, Math.min(1000, Math.floor(this.opts.idleMs / 4) || 1000)), () => this.checkIdle());
    every(250, () => this.keyframeTick());
  }

  private onVideo(rtp: RtpPacket): void {
    this.videoSsrc = rtp.header.ssrc;
    if (startsKeyframe(this.codecs.video.kind, rtp.payload)) this.lastKeyframeAt = Date.now();
    this.forward(rtp.serialize(), this.ports.video);
  }

  private forward(packet: Buffer, port: number): void {
    this.lastRtpAt = Date.now();
    this.out.send(packet, port, '127.0.0.1');
  }

  // Sender reports let ffmpeg put audio and video on one clock (lip sync); other RTCP is the peer's business.
  private forwardRtcp(p: RtcpPacket, rtpPort: number): void {
    if (p.type === 200) this.out.send(p.serialize(), rtpPort + 1, '127.0.0.1');
  }

  private checkIdle(): void {
    const silent = Date.now() - this.lastRtpAt;
    if (this.opts.idleMs > 0 && silent >= this.opts.idleMs) void this.close(`no RTP for ${silent} ms`);
  }

  // Until the bridge publishes, a keyframe is what it waits for; copied H.264 keeps one every GOP for HLS and readers.
  private keyframeTick(): void {
    const now = Date.now();
    if (!this.flowing) {
      if (now - this.lastPliAt >= PLI_UNTIL_FLOWING_MS) this.requestKeyframe();
      return;
    }
    const gopMs = this.opts.gopSeconds * 1000;
    if (this.codecs.video.copy && now - this.lastKeyframeAt >= gopMs && now - this.lastPliAt >= gopMs)
      this.requestKeyframe();
  }

  /** Asks the publisher for a keyframe (PLI), at most one per 300 ms. */
  requestKeyframe(): void {
    const now = Date.now();
    if (this.closed || this.videoSsrc === null || now - this.lastPliAt < PLI_MIN_GAP_MS) return;
    this.lastPliAt = now;
    this.peer.video.receiver.sendRtcpPLI(this.videoSsrc).catch(() => undefined);
  }

  private get sdpPath(): string {
    return path.join(this.opts.workDir, `${this.id}.sdp`);
  }

  private async startBridge(): Promise<void> {
    await fs.mkdir(this.opts.workDir, { recursive: true });
    await fs.writeFile(this.sdpPath, bridgeSdp(this.ports, this.codecs));
    const ff = new FfmpegProcess({
      ffmpegPath: this.opts.ffmpegPath,
      args: bridgeArgs({
        sdpPath: this.sdpPath,
        codecs: this.codecs,
        rtmpUrl: this.opts.ingestUrl(),
        gopSeconds: this.opts.gopSeconds,
        videoKbps: this.opts.videoKbps,
      }),
      logger: this.log,
      // the idle watch ends a session without media; a bridge that hears nothing waits as long
      startTimeoutMs: (this.opts.idleMs || 30_000) + 5000,
      // ffmpeg leaves a silent RTP read on a second signal only; nothing to finalise in an RTMP publish anyway
      killGraceMs: 500,
    });
    this.bridge = ff;
    this.flowing = false;
    this.lastPliAt = 0;
    ff.once('exit', (exit) => {
      if (this.closed || exit.expected) return;
      this.log.warn({ session: this.id, code: exit.code, reason: exit.reason }, 'WHIP bridge ffmpeg exited');
      this.restartBridge();
    });
    ff.start().then(
      () => {
        this.flowing = true;
        this.firstFlowAt ??= Date.now();
        this.log.info(
          { session: this.id, stream: this.streamName, ms: Date.now() - this.createdAt },
          'WHIP bridge flowing',
        );
      },
      () => undefined, // its exit event restarts it or ends the session
    );
  }

  private restartBridge(): void {
    const now = Date.now();
    this.restarts = this.restarts.filter((t) => now - t < RESTART_WINDOW_MS);
    if (this.restarts.length >= MAX_RESTARTS) {
      void this.close(`bridge ffmpeg died ${MAX_RESTARTS} times within ${RESTART_WINDOW_MS / 1000} s`);
      return;
    }
    this.restarts.push(now);
    const t = setTimeout(() => {
      if (!this.closed) this.startBridge().catch((e: Error) => void this.close(`bridge restart failed: ${e.message}`));
    }, RESTART_DELAY_MS);
    t.unref();
  }

  /** Ends the session: the bridge (so the member leaves the ingest), the peer connection, the sockets. Idempotent. */
  async close(reason = 'closed'): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.emit('closing', reason);
    for (const t of this.timers) clearInterval(t);
    const t0 = Date.now();
    await this.bridge?.close().catch(() => undefined);
    const bridgeMs = Date.now() - t0;
    this.log.info({ session: this.id, stream: this.streamName, reason, bridgeMs }, 'WHIP session ended');
    await this.peer.pc.close().catch(() => undefined);
    this.out.close();
    await fs.rm(this.sdpPath, { force: true });
    this.emit('closed', reason);
  }

  /** The SDP answer the session was opened with. */
  get answer(): string {
    return this.peer.answer;
  }

  /** Whether close() has been called. */
  get ended(): boolean {
    return this.closed;
  }
}
