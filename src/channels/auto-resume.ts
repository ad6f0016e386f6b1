import type { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import type { Keys } from '../redis/index.js';
import type { ChannelRecords } from './records.js';
import type { ChannelLifecycle } from './lifecycle.js';
import type { MediaEvent, MessageBus } from './messages.js';
import { memberLabel } from './messages.js';

/** Dependencies of auto-resume. */
export interface AutoResumeDeps {
  bus: Pick<MessageBus, 'subscribe'>;
  /** Reads the upstream → channel index. */
  redis: Pick<Redis, 'get'>;
  keys: Keys;
  store: Pick<ChannelRecords, 'get'>;
  lifecycle: Pick<ChannelLifecycle, 'resume'>;
  logger: Logger;
}

type MemberPublished = Extract<MediaEvent, { type: 'member-published' }>;

/**
 * The control side of a member's return: when the media plane reports a member publishing into the ingest, its
 * interrupted channel resumes if it asked for it (`option.autoResume`) or was interrupted because the media server was
 * away (`resumeOnReturn`). Every API process hears the event; the lifecycle's compare-and-set lets one of them resume.
 */
export class AutoResume {
  private unsubscribe: (() => Promise<void>) | null = null;

  constructor(private readonly deps: AutoResumeDeps) {}

  /** Starts listening to the media topic. */
  async start(): Promise<void> {
    this.unsubscribe = await this.deps.bus.subscribe('media', (ev) => {
      if (ev.type !== 'member-published') return;
      this.onMemberPublished(ev).catch((e: Error) =>
        this.deps.logger.warn({ member: memberLabel(ev), roomId: ev.roomId, err: e.message }, 'auto-resume failed'),
      );
    });
  }

  /** Stops listening. */
  async close(): Promise<void> {
    await this.unsubscribe?.();
    this.unsubscribe = null;
  }

  /** Resumes the member's channel when it is interrupted and wants to resume; returns whether this process did. */
  async onMemberPublished(ev: MemberPublished): Promise<boolean> {
    const { redis, keys, store, logger } = this.deps;
    const channelId = await redis.get(keys.upstreamChannel(ev.sdkAppId, ev.roomId, ev.userId, ev.srcType));
    const ch = channelId ? await store.get(channelId) : null;
    if (!ch || ch.state !== 'interrupted' || !(ch.option.autoResume || ch.resumeOnReturn)) return false;
    const moved = await this.deps.lifecycle.resume(ch, 'resumed: the member published again');
    // not moved: the channel left `interrupted` meanwhile (stopped, recycled, or resumed by a start or another process)
    if (moved.ok) logger.info({ channelId: ch.channelId }, 'channel resumed by itself');
    else
      logger.debug({ channelId: ch.channelId, state: moved.state }, 'auto-resume: the channel changed state meanwhile');
    return moved.ok;
  }
}
