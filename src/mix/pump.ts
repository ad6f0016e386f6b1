import type { Writable } from 'node:stream';
import type { Logger } from '../log.js';
import { CHUNK_BYTES, CHUNK_MS } from './audio.js';
import { frameBytes } from './composer.js';

/** The encoder's raw inputs: canvas video on stdin, mixed audio on fd 3. */
export interface EncoderPipes {
  stdin: Writable | null;
  fd3: unknown;
}

const TICK_MS = 5;
/** Canvas buffers kept for reuse. */
const FREE_BUFFERS = 4;
/** Data the encoder may leave unread before frames are skipped (seconds of media). */
const MAX_BACKLOG_S = 2;

/**
 * Paces the mix into its encoder from one monotonic start: video frame n at t0 + n/fps, audio chunk k at t0 + k·20 ms,
 * catching up by counts after event-loop lag, so the encoder's count-derived timestamps follow the wall clock. When
 * the encoder falls more than MAX_BACKLOG_S behind, frames are skipped (logged) instead of buffered.
 */
export class MixPump {
  private timer: NodeJS.Timeout | null = null;
  private video: Writable | null = null;
  private audio: Writable | null = null;
  private t0 = 0;
  private frames = 0;
  private chunks = 0;
  private skipped = 0;
  private readonly free: Buffer[] = [];
  /** Frames written to the current encoder. */
  written = 0;

  constructor(
    private readonly o: { width: number; height: number; fps: number; logger: Logger },
    private readonly nextFrame: (into?: Buffer) => Buffer,
    private readonly nextAudio: () => Buffer,
  ) {}

  attach(io: EncoderPipes): void {
    this.detach();
    const quiet = (e: Error) => this.o.logger.debug({ err: e.message }, 'mix encoder pipe closed');
    this.video = io.stdin;
    this.audio = io.fd3 as Writable | null;
    this.video?.on('error', quiet);
    this.audio?.on('error', quiet);
    this.t0 = performance.now();
    this.frames = this.chunks = this.written = 0;
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.tick();
  }

  detach(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.video = this.audio = null;
  }

  private tick(): void {
    const elapsed = performance.now() - this.t0;
    const { video, audio } = this;
    if (!video || !audio || video.destroyed || audio.destroyed) return;
    const frameSize = frameBytes(this.o.width, this.o.height);
    // audio first, a chunk ahead of the video: the encoder's interleaving never waits on the audio pipe
    while (this.chunks * CHUNK_MS <= elapsed + CHUNK_MS) {
      const pcm = this.nextAudio();
      this.chunks++;
      if (audio.writableLength <= (MAX_BACKLOG_S * 1000 * CHUNK_BYTES) / CHUNK_MS) audio.write(pcm);
    }
    while ((this.frames * 1000) / this.o.fps <= elapsed) {
      this.frames++;
      if (video.writableLength > MAX_BACKLOG_S * this.o.fps * frameSize) {
        if (this.skipped++ % (this.o.fps * 10) === 0)
          this.o.logger.warn({ skipped: this.skipped }, 'mix encoder behind: frames skipped');
        continue;
      }
      // canvas buffers come back once the pipe has taken them: no allocation per frame (less GC)
      const frame = this.nextFrame(this.free.pop());
      video.write(frame, () => (this.free.length < FREE_BUFFERS ? this.free.push(frame) : undefined));
      this.written++;
    }
  }
}
