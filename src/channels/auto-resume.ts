import type { Redis } from 'ioredis';
import type { Queue } from 'bullmq';
import type { Logger } from '../log.js';
import type { Keys } from '../redis/index.js';
import type { PushJobData, PushJobResult } from '../queue/index.js';
import type { ChannelStore } from './store.js';
import type { MediaEvent, MessageBus } from './messages.js';
import { memberLabel } from './messages.js';
import { resumeChannel } from './lifecycle.js';

/** How long one process holds the right to resume a channel (several API processes hear the same publish). */
const CLAIM_MS = 10_000;

/** Dependencies of auto-resume. */
export interface AutoResumeDeps {
  bus: Pick<MessageBus, 'subscribe'>;
  /** Reads the upstream → channel index and holds the per-channel claim. */
  redis: Pick<Redis, 'get' | 'set' | 'del'>;
  keys: Keys;
  store: ChannelStore;
  queue: Pick<Queue<PushJobData, PushJobResult>, 'add'>;
  maxChannelsPerRoom: number;
  logger: Logger;
}

type MemberPublished = Extract<MediaEvent, { type: 'member-published' }>;

/**
 * The control side of a member's return: when the media plane reports a member publishing into the ingest, its
 * interrupted channel resumes if it asked for it (`option.autoResume`) or was interrupted because the media server was
 * away (`resumeOnReturn`).
 */
export class AutoResume {
  private unsubscribe: (() => Promise<void>) | null = null;

  constructor(private readonly deps: AutoResumeDeps) {}

  /** Starts listening to the media topic. */
  async start(): Promise<void> {
    this.unsubscribe = await this.deps.bus.subscribe('media', (ev) => {
      if (ev.type !== 'member-published') return;
      this.onMemberPublished(ev).catch((e: Error) => this.deps.logger.warn({ member: memberLabel(ev), roomId: ev.roomId, err: e.message }, 'auto-resume failed'));
    });
  }

  /** Stops listening. */
  async close(): Promise<void> {
    await this.unsubscribe?.();
    this.unsubscribe = null;
  }

  /** Resumes the member's channel when it is interrupted and wants to resume; returns whether it did. */
  async onMemberPublished(ev: MemberPublished): Promise<boolean> {
    const { redis, keys, store, logger } = this.deps;
    const channelId = await redis.get(keys.upstreamChannel(ev.sdkAppId, ev.roomId, ev.userId, ev.srcType));
    if (!channelId) return false;
    // Every API process hears the publish: one of them resumes (a second resumeChannel would re-retain the channel).
    const claim = keys.resumeClaim(channelId);
    if ((await redis.set(claim, '1', 'PX', CLAIM_MS, 'NX')) !== 'OK') {
      logger.debug({ channelId }, 'auto-resume: another process handles this channel');
      return false;
    }
    try {
      const ch = await store.get(channelId);
      if (!ch || ch.state !== 'interrupted' || !(ch.option.autoResume || ch.resumeOnReturn)) return false;
      const resumed = await resumeChannel(store, this.deps.queue, ch, 'resumed: the member published again', this.deps.maxChannelsPerRoom);
      if (resumed) logger.info({ channelId }, 'channel resumed by itself');
      // not moved: the channel left `interrupted` meanwhile (stopped, recycled or resumed by a start)
      else logger.debug({ channelId }, 'auto-resume: the channel changed state meanwhile');
      return resumed;
    } finally {
      await redis.del(claim);
    }
  }
}
