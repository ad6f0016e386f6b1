import type { MediaEvent, MessageBus } from '../channels/messages.js';
import { FfmpegStartError, type FfmpegProcess } from '../media/ffmpeg/process.js';

/**
 * The media server's keyframe reports, for the worker's ffmpegs: a channel goes live the moment the media server
 * receives its first keyframe, which is often before ffmpeg's first progress report. One subscription per worker.
 */
export class KeyframeWatch {
  private readonly waiting = new Map<string, Set<() => void>>();
  private unsubscribe: (() => Promise<void>) | null = null;

  /** Subscribes to the bus's `media` topic. */
  async start(bus: Pick<MessageBus, 'subscribe'>): Promise<void> {
    this.unsubscribe = await bus.subscribe('media', (ev) => this.onEvent(ev));
  }

  /** Feeds one media event (a keyframe wakes every watcher of its channel). */
  onEvent(ev: MediaEvent): void {
    if (ev.type !== 'keyframe') return;
    const set = this.waiting.get(ev.channelId);
    if (!set) return;
    this.waiting.delete(ev.channelId);
    for (const wake of set) wake();
  }

  /**
   * Resolves on the next keyframe the media server reports for the channel. Once `signal` aborts it never settles
   * and holds nothing (so an ffmpeg that started by its own progress report leaves no watcher behind).
   */
  firstKeyframe(channelId: string, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      if (signal.aborted) return;
      const set = this.waiting.get(channelId) ?? new Set();
      this.waiting.set(channelId, set);
      const wake = () => {
        signal.removeEventListener('abort', forget);
        resolve();
      };
      const forget = () => {
        set.delete(wake);
        if (set.size === 0 && this.waiting.get(channelId) === set) this.waiting.delete(channelId);
      };
      set.add(wake);
      signal.addEventListener('abort', forget, { once: true });
    });
  }

  /** Channels with a watcher now. */
  get watching(): number {
    return this.waiting.size;
  }

  /** Drops the subscription. */
  async close(): Promise<void> {
    await this.unsubscribe?.();
    this.unsubscribe = null;
  }
}

/**
 * Starts a channel's ffmpeg: media flows on its first progress report or the media server's first keyframe of the
 * channel, whichever comes first. Answers null, or why it did not start (its ffmpeg then killed).
 */
export async function startFlowing(
  ff: FfmpegProcess,
  channelId: string,
  keyframes?: Pick<KeyframeWatch, 'firstKeyframe'>,
): Promise<FfmpegStartError | null> {
  const watch = new AbortController();
  try {
    await ff.start(keyframes ? { flowing: keyframes.firstKeyframe(channelId, watch.signal) } : {});
    return null;
  } catch (e) {
    await ff.kill();
    if (!(e instanceof FfmpegStartError)) throw e;
    return e;
  } finally {
    watch.abort();
  }
}
