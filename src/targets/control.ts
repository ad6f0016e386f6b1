import type { Redis } from 'ioredis';
import { RelayError } from '../errors/index.js';
import type { Keys } from '../redis/index.js';
import type { ChannelRecords } from '../channels/records.js';
import type { ChannelLifecycle } from '../channels/lifecycle.js';
import type { MessageBus } from '../channels/messages.js';
import { CHANNEL_ID_PATTERN, type Channel, type PushTarget } from '../channels/types.js';
import {
  duplicateTarget,
  makePushTargets,
  MAX_PUSH_TARGETS,
  normaliseTargetUrl,
  TARGET_ID_PATTERN,
  type TargetCheckDeps,
} from './check.js';
import { targetView, type PushTargetView } from '../channels/view.js';
import { redisLock } from '../redis/lock.js';

/** What adding and removing targets needs. */
export interface PushTargetControlDeps extends TargetCheckDeps {
  store: Pick<ChannelRecords, 'get'>;
  /** Serialises the read-modify-write of a channel's targets (two adds at once must not lose one). */
  redis: Pick<Redis, 'set' | 'eval'>;
  keys: Pick<Keys, 'targetsLock'>;
  lifecycle: Pick<ChannelLifecycle, 'patch'>;
  bus: Pick<MessageBus, 'publish'>;
}

/** States a channel takes targets in (an interrupted one starts them when it resumes). */
const OPEN = ['starting', 'live', 'interrupted'] as const;

/**
 * Push targets of a running channel (issue 14): list, add (checked like a start's), remove. The channel record holds
 * them; the worker that runs the channel hears of a change on the control topic, and at its next record read anyway.
 */
export class PushTargetControl {
  constructor(private readonly d: PushTargetControlDeps) {}

  async list(sdkAppId: string, channelId: string): Promise<PushTargetView[]> {
    const ch = await this.owned(sdkAppId, channelId);
    return (ch.pushTargets ?? []).map((t) => targetView(ch, t, true));
  }

  async add(sdkAppId: string, channelId: string, entry: { url: string; rateType?: number }): Promise<PushTargetView> {
    const first = await this.owned(sdkAppId, channelId);
    this.assertOpen(first);
    const [t] = await makePushTargets([entry], first.option.rateTypes, this.d); // checked before the lock (DNS)
    return this.locked(channelId, async () => {
      const ch = await this.owned(sdkAppId, channelId);
      this.assertOpen(ch);
      const have = ch.pushTargets ?? [];
      if (have.length >= MAX_PUSH_TARGETS)
        throw new RelayError(50002, `a channel has at most ${MAX_PUSH_TARGETS} push targets`, {
          status: 409,
          hint: 'remove one first (DELETE /v1/push/{channelId}/targets/{targetId})',
        });
      if (have.some((h) => normaliseTargetUrl(h.url) === t!.url)) throw duplicateTarget();
      await this.write(ch, [...have, t!]);
      return targetView(ch, t!, true);
    });
  }

  async remove(sdkAppId: string, channelId: string, targetId: string): Promise<void> {
    await this.owned(sdkAppId, channelId);
    await this.locked(channelId, () => this.removeLocked(sdkAppId, channelId, targetId));
  }

  private async removeLocked(sdkAppId: string, channelId: string, targetId: string): Promise<void> {
    const ch = await this.owned(sdkAppId, channelId);
    const have = ch.pushTargets ?? [];
    if (!TARGET_ID_PATTERN.test(targetId) || !have.some((t) => t.targetId === targetId))
      throw new RelayError(50002, `no such push target ${targetId.slice(0, 32)}`, {
        status: 404,
        hint: 'list the channel targets with GET /v1/push/{channelId}/targets',
      });
    await this.write(
      ch,
      have.filter((t) => t.targetId !== targetId),
    );
  }

  // Runs `fn` holding the channel's targets lock (src/redis/lock.ts: SET NX with a 5 s expiry, released by its holder).
  private locked<T>(channelId: string, fn: () => Promise<T>): Promise<T> {
    const busy = () =>
      new RelayError(50005, 'push targets of the channel are being changed', { hint: 'retry in a second' });
    return redisLock(this.d.redis)(this.d.keys.targetsLock(channelId), fn, busy);
  }

  private async write(ch: Channel, targets: PushTarget[]): Promise<void> {
    const ok = await this.d.lifecycle.patch(ch.channelId, { pushTargets: targets.length ? targets : null }, [
      ...OPEN,
      'stopping',
    ]);
    if (!ok) this.assertOpen({ ...ch, state: 'stopped' });
    await this.d.bus.publish('control', { type: 'targets', channelId: ch.channelId }).catch(() => undefined);
  }

  private assertOpen(ch: Channel): void {
    if (!(OPEN as readonly string[]).includes(ch.state))
      throw new RelayError(50002, `channel ${ch.channelId} is ${ch.state}: it takes no push targets`, {
        status: 409,
        hint: 'start the push again, then add targets',
      });
  }

  private async owned(sdkAppId: string, channelId: string): Promise<Channel> {
    const ch = CHANNEL_ID_PATTERN.test(channelId) ? await this.d.store.get(channelId) : null;
    if (!ch || ch.sdkAppId !== sdkAppId)
      throw new RelayError(50002, `no such channel ${channelId.slice(0, 64)}`, {
        status: 404,
        hint: 'check the channelId returned by push/start',
      });
    return ch;
  }
}

export type { PushTargetView };
