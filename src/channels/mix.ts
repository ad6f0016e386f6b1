import { RelayError } from '../errors/index.js';
import { AccountRegistry } from '../tenants/accounts.js';
import type { App } from '../tenants/apps.js';
import { validateMix, type MixCanvas, type MixLayoutKind, type MixMember, type MixSpec } from '../mix/layout.js';
import { processLock, type KeyedLock } from '../redis/lock.js';
import { assertRoomToGrow, assertWorkerRoom, type StartResult } from './admission.js';
import { mixCost } from './cost.js';
import { hashChannelPassword } from './password.js';
import type { PushService, PushServiceDeps } from './service.js';
import { newChannelId } from './store.js';
import { FINAL_STATES, type Channel, type PushTarget, type ResolvedPushOption } from './types.js';
import { encodeHasHls, playUrls } from './urls.js';

/**
 * The user id of a room's mix channel. It is outside the member id pattern (`^[A-Za-z0-9_-]{1,32}$`), so a mix can
 * never take the channel slot of a member's upstream (room, user, srcType): a room has at most one mix at a time, and
 * it counts toward the room's and the account's channel limits like any channel.
 */
export const MIX_USER_ID = '$mix';

/** A validated mix start. */
export interface MixStartRequest {
  roomId: number;
  members: MixMember[];
  layout: MixLayoutKind;
  canvas: MixCanvas;
  floatPosition?: 'right' | 'bottom';
  option: ResolvedPushOption;
  channelPassword?: string;
  /** External destinations of the mix's output (checked by the route, as a push start's). */
  pushTargets?: PushTarget[];
}

/** A layout update: the members (added, removed, moved), the layout, where float's small tiles go. */
export type MixLayoutUpdate = Pick<MixSpec, 'members' | 'layout' | 'floatPosition'>;

/** Start of a mix and its live layout updates; stop, states, URLs and webhooks are those of any channel. */
export class MixService {
  constructor(
    private readonly d: PushServiceDeps,
    private readonly push: PushService,
    /** Serialises the layout updates of one mix (a Redis lock across API processes; in-process by default). */
    private readonly lock: { run: KeyedLock; key(channelId: string): string } = {
      run: processLock(),
      key: (id) => id,
    },
  ) {}

  /** Starts a mix of the room's members; resolves once the composed canvas flows (as push start does). */
  async start(app: Pick<App, 'sdkAppId' | 'accountId'>, req: MixStartRequest): Promise<StartResult> {
    const { config } = this.d;
    const { sdkAppId, accountId } = app;
    const account = await this.d.accounts.get(accountId);
    if (!account) throw new RelayError(1002, `account ${accountId} of app ${sdkAppId} does not exist`);
    AccountRegistry.assertActive(account);
    if ((await this.d.rooms.list(sdkAppId, req.roomId)).length === 0)
      throw new RelayError(40000410, `room ${req.roomId} does not exist (no upstream registered)`);
    const spec: MixSpec = {
      members: req.members,
      layout: req.layout,
      canvas: { background: '#000000', ...req.canvas },
      ...(req.floatPosition ? { floatPosition: req.floatPosition } : {}),
      version: 1,
    };
    validateMix(spec, config.mixMaxMembers);
    if (req.canvas.backgroundImageId !== undefined) {
      const image = await this.d.watermarks.get(sdkAppId, req.canvas.backgroundImageId);
      if (!image)
        throw new RelayError(50002, `unknown background image ${req.canvas.backgroundImageId}`, {
          hint: 'upload the image as a watermark (POST /v1/watermarks) and pass its waterMarkId',
        });
      spec.canvas.backgroundImageFile = this.d.watermarks.file(sdkAppId, image.waterMarkId);
    }
    if (req.option.record) await this.d.storage?.assertCanRecord(account, encodeHasHls(req.option.encode));
    if (config.startRateLimitMs > 0) {
      const retryAfterMs = await this.d.rateLimit.take(sdkAppId, req.roomId, MIX_USER_ID, config.startRateLimitMs);
      if (retryAfterMs !== null) throw new RelayError(40000500, undefined, { details: { retryAfterMs } });
    }
    const { option, watermark } = await this.push.watermarkOf(sdkAppId, req.option);
    const cost = mixCost(spec, { option, ...(watermark ? { watermark } : {}) }, config.costs);
    assertWorkerRoom(await this.d.workers(), cost);
    const channelId = newChannelId();
    const now = Date.now();
    const ch: Channel = {
      channelId,
      sdkAppId,
      accountId,
      roomId: req.roomId,
      userId: MIX_USER_ID,
      srcType: 0,
      option,
      input: { kind: 'mix' },
      mix: spec,
      urls: playUrls(config, channelId, option.encode, option.rateTypes),
      hls: encodeHasHls(option.encode),
      state: 'starting',
      createdAt: now,
      cost,
      ...(watermark ? { watermark } : {}),
      ...(req.pushTargets?.length ? { pushTargets: req.pushTargets } : {}),
      ...(req.channelPassword !== undefined
        ? { passwordHash: hashChannelPassword(channelId, req.channelPassword) }
        : {}),
      history: [{ state: 'starting', at: now, reason: 'mix start requested' }],
    };
    return this.push.launch(ch, account, { roomId: req.roomId, userId: MIX_USER_ID, srcType: 0 });
  }

  /**
   * Changes a running mix's members and layout: written into the record, then a control message makes its worker
   * apply it at once (the worker also checks the record every second). The canvas stays; viewers stay connected. The
   * update replaces the layout whole (no floatPosition: the default). Updates of one mix run one at a time (the
   * lock), so each gets its own version and the last one written is the one shown. More members cost more: the
   * increase must fit on the mix's worker (50005 as a start otherwise), and the record's cost follows.
   */
  async updateLayout(sdkAppId: string, channelId: string, update: MixLayoutUpdate): Promise<{ version: number }> {
    const busy = () => new RelayError(50005, `mix ${channelId} is being changed`, { hint: 'retry in a second' });
    return this.lock.run(this.lock.key(channelId), () => this.updateLocked(sdkAppId, channelId, update), busy);
  }

  private async updateLocked(sdkAppId: string, channelId: string, update: MixLayoutUpdate) {
    const ch = await this.d.store.get(channelId);
    if (!ch || ch.sdkAppId !== sdkAppId || !ch.mix)
      throw new RelayError(50002, `no such mix ${channelId.slice(0, 64)}`, {
        status: 404,
        hint: 'check the channelId returned by mix/start',
      });
    if (FINAL_STATES.includes(ch.state) || ch.state === 'stopping')
      throw new RelayError(40000412, `mix ${channelId} is ${ch.state}`);
    const { floatPosition: _was, ...kept } = ch.mix;
    const next: MixSpec = {
      ...kept,
      members: update.members,
      layout: update.layout,
      ...(update.floatPosition ? { floatPosition: update.floatPosition } : {}),
      version: ch.mix.version + 1,
    };
    validateMix(next, this.d.config.mixMaxMembers);
    const cost = mixCost(next, ch, this.d.config.costs);
    const was = ch.cost ?? mixCost(ch.mix, ch, this.d.config.costs);
    if (cost > was) assertRoomToGrow(await this.d.workers(), ch.worker, Math.round((cost - was) * 1e4) / 1e4, cost);
    if (!(await this.d.lifecycle.patch(channelId, { mix: next, cost }, ['starting', 'live'])))
      throw new RelayError(40000412, `mix ${channelId} is no longer running`);
    await this.d.bus.publish('control', { type: 'mix-layout', channelId });
    return { version: next.version };
  }
}
