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
/**
 * Media the encoder may leave unread in a pipe before it is skipped (seconds): a few frames, so a slow encoder holds
 * little memory (9 canvas frames at 30 fps: 12 MB at 1280×720, 28 MB at 1920×1080).
 */
export const MAX_BACKLOG_S = 0.3;

/**
 * Paces the mix into its encoder from one monotonic start: video frame n at t0 + n/fps, audio chunk k at t0 + k·20 ms,
 * catching up by counts after event-loop lag, so the encoder's count-derived timestamps follow the wall clock. When
 * the encoder falls more than MAX_BACKLOG_S behind, media is skipped instead of buffered, the same time on both pipes
 * (a frame skipped drops its 1/fps of audio, within a chunk), so the picture never drifts from the sound; logged
 * once per streak.
 */
export class MixPump {
  private timer: NodeJS.Timeout | null = null;
  private video: Writable | null = null;
  private audio: Writable | null = null;
  private t0 = 0;
  private frames = 0;
  private chunks = 0;
  /** Media time skipped on each pipe (ms): the lesser one catches up, so both stay within a chunk or a frame. */
  private skippedMs = { video: 0, audio: 0 };
  /** Frames skipped in the current streak of a slow encoder (0: none), and whether it was warned of. */
  private streak = 0;
  private warned = false;
  /** Frames the current encoder has taken (before its first second, a skip is its start, not a slow encoder). */
  private taken = 0;
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
    this.frames = this.chunks = this.written = this.streak = this.taken = 0;
    this.warned = false;
    this.skippedMs = { video: 0, audio: 0 };
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
    const frameMs = 1000 / this.o.fps;
    const skipped = this.skippedMs;
    const audioCap = (MAX_BACKLOG_S * 1000 * CHUNK_BYTES) / CHUNK_MS;
    const videoCap = Math.ceil(MAX_BACKLOG_S * this.o.fps) * frameSize;
    // what one pipe owes the other is dropped only while the other flows: the encoder may be waiting on this one (at
    // its start it opens its inputs in turn), and starving it would stall both for good
    // audio first, a chunk ahead of the video: the encoder's interleaving never waits on the audio pipe
    while (this.chunks * CHUNK_MS <= elapsed + CHUNK_MS) {
      const pcm = this.nextAudio(); // pulled even when skipped: the members' FIFOs stay current
      this.chunks++;
      const owed = skipped.video - skipped.audio >= CHUNK_MS && video.writableLength <= videoCap;
      if (owed || audio.writableLength > audioCap) {
        skipped.audio += CHUNK_MS;
        if (!owed) this.behind();
      } else audio.write(pcm);
    }
    while (this.frames * frameMs <= elapsed) {
      this.frames++;
      const owed = skipped.audio - skipped.video >= frameMs && audio.writableLength <= audioCap;
      if (owed || video.writableLength > videoCap) {
        skipped.video += frameMs;
        if (!owed) this.behind();
        continue;
      }
      if (this.warned) this.o.logger.info({ skipped: this.streak }, 'mix encoder caught up');
      this.streak = 0;
      this.warned = false;
      // canvas buffers come back once the pipe has taken them: no allocation per frame (less GC)
      const frame = this.nextFrame(this.free.pop());
      video.write(frame, () => {
        this.taken++;
        if (this.free.length < FREE_BUFFERS) this.free.push(frame);
      });
      this.written++;
    }
  }

  // The encoder is behind: warned at the start of a streak (the count at its end); not while it starts (its inputs opened in turn, x264 set up).
  private behind(): void {
    if (this.streak++ > 0 || this.taken < this.o.fps) return;
    this.warned = true;
    this.o.logger.warn(
      { maxBacklogS: MAX_BACKLOG_S },
      'mix encoder behind: media skipped, the same time on video and audio',
    );
  }
}
