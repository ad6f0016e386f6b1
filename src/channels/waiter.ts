import type { ChannelRecords } from './records.js';
import type { Channel, ChannelState } from './types.js';
import type { MessageBus } from './messages.js';

const POLL_MS = 250;

/**
 * Waits for channels to reach a state: woken by the events channel, with a slow poll of the record as a fallback
 * (a pub/sub message can be lost across a Redis reconnect).
 */
export class ChannelWaiter {
  private readonly waiting = new Map<string, Set<() => void>>();
  private subscribed: Promise<() => Promise<void>> | null = null;

  constructor(
    private readonly bus: Pick<MessageBus, 'subscribe'>,
    private readonly store: Pick<ChannelRecords, 'get'>,
  ) {}

  private ensureSubscribed(): Promise<unknown> {
    this.subscribed ??= this.bus.subscribe('events', (ev) => {
      for (const wake of this.waiting.get(ev.channelId) ?? []) wake();
    });
    return this.subscribed;
  }

  /**
   * Resolves with the record once its state is one of `states` (or it is gone: null), or with the last record seen at
   * the deadline.
   */
  async until(
    channelId: string,
    states: readonly ChannelState[],
    timeoutMs: number,
  ): Promise<{ channel: Channel | null; reached: boolean }> {
    await this.ensureSubscribed();
    const deadline = Date.now() + timeoutMs;
    let wake: () => void = () => undefined;
    const set = this.waiting.get(channelId) ?? new Set();
    this.waiting.set(channelId, set);
    try {
      for (;;) {
        const ch = await this.store.get(channelId);
        if (!ch) return { channel: null, reached: true };
        if (states.includes(ch.state)) return { channel: ch, reached: true };
        const left = deadline - Date.now();
        if (left <= 0) return { channel: ch, reached: false };
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, Math.min(POLL_MS, left));
          wake = () => {
            clearTimeout(t);
            resolve();
          };
          set.add(wake);
        });
        set.delete(wake);
      }
    } finally {
      set.delete(wake);
      if (set.size === 0) this.waiting.delete(channelId);
    }
  }

  /** Stops listening. */
  async close(): Promise<void> {
    if (this.subscribed) await (await this.subscribed)();
  }
}
