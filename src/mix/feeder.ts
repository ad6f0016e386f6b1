import type { Readable } from 'node:stream';
import type { Logger } from '../log.js';
import { feederArgs, NO_AUDIO, NO_VIDEO, type FeederSpec } from '../media/ffmpeg/feeder.js';
import type { SourceSpec } from '../media/ffmpeg/input.js';
import { FfmpegProcess, type FfmpegExit } from '../media/ffmpeg/process.js';
import { frameBytes, type Frame } from './composer.js';

/** What a feeder hands on. */
export interface FeederSink {
  /** A frame, valid until the next but one: keep a copy to hold it longer. */
  frame(f: Frame): void;
  audio(pcm: Buffer): void;
}

/** How long a feeder may take to its first frame. */
const FIRST_FRAME_MS = 10_000;

/**
 * One member's feeder ffmpeg (see media/ffmpeg/feeder.ts): cuts its stdout into frames of the tile size and passes
 * them and its PCM on. `started` resolves true on the first frame (the first audio when it has no video output),
 * false when it ended first.
 */
export class Feeder {
  private readonly ff: FfmpegProcess;
  readonly started: Promise<boolean>;
  readonly w: number;
  readonly h: number;
  readonly video: boolean;
  /** When it was spawned (ms). */
  readonly spawnedAt = Date.now();

  constructor(o: {
    ffmpegPath: string;
    source: SourceSpec;
    spec: FeederSpec;
    env?: Readonly<Record<string, string>>;
    logger: Logger;
    sink: FeederSink;
  }) {
    this.w = o.spec.width;
    this.h = o.spec.height;
    this.video = o.spec.video !== false;
    const size = frameBytes(this.w, this.h);
    let first: () => void = () => undefined;
    const flowing = new Promise<void>((r) => (first = r));
    // one copy per byte, into two buffers in turn: the sink keeps only the latest frame (and copies what it keeps
    // longer), so the one before can be filled again (no allocation per frame: less GC)
    const buffers = [Buffer.allocUnsafe(size), Buffer.allocUnsafe(size)];
    let turn = 0;
    let filled = 0;
    const onVideo = (d: Buffer) => {
      for (let off = 0; off < d.length;) {
        const frame = buffers[turn]!;
        const n = Math.min(size - filled, d.length - off);
        d.copy(frame, filled, off, off + n);
        filled += n;
        off += n;
        if (filled < size) continue;
        o.sink.frame({ w: this.w, h: this.h, data: frame });
        turn ^= 1;
        filled = 0;
        first();
      }
    };
    this.ff = new FfmpegProcess({
      ffmpegPath: o.ffmpegPath,
      args: feederArgs(o.source, o.spec),
      logger: o.logger,
      startTimeoutMs: FIRST_FRAME_MS,
      killGraceMs: 1000,
      ...(o.env ? { env: o.env } : {}),
      pipes: {
        kind: 'feeder',
        onSpawn: (io) => {
          io.stdout?.on('data', onVideo);
          (io.fd3 as Readable | null)?.on('data', (d: Buffer) => {
            o.sink.audio(d);
            if (!this.video) first();
          });
        },
      },
    });
    this.started = this.ff.start({ flowing }).then(
      () => true,
      () => false,
    );
  }

  /** How it ended (also when it never started). */
  get done(): Promise<FfmpegExit> {
    return this.ff.done;
  }

  /** Whether its ffmpeg said the member has no audio track. */
  get noAudio(): boolean {
    return this.ff.stderrTail.some((l) => NO_AUDIO.test(l));
  }

  /** Whether its ffmpeg said the member has no video track. */
  get noVideo(): boolean {
    return this.ff.stderrTail.some((l) => NO_VIDEO.test(l));
  }

  /** Why it ended, in ffmpeg's words: its last stderr line. */
  get reason(): string | null {
    return this.ff.stderrTail.at(-1)?.slice(0, 200) ?? null;
  }

  get running(): boolean {
    return this.ff.running;
  }

  close(): Promise<void> {
    return this.ff.kill();
  }
}
