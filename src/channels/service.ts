import fs from 'node:fs/promises';
import type { Queue } from 'bullmq';
import type { RelayConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import { RelayError, isErrorCode } from '../errors/index.js';
import type { RoomRegistry } from '../rooms/registry.js';
import { isIngestMember, SRC_TYPE_NAMES } from '../rooms/model.js';
import { checkUpstream } from '../rooms/upstream-check.js';
import type { FfmpegInfo } from '../media/ffmpeg/capabilities.js';
import { ingestStreamName } from '../rooms/ingest.js';
import type { PushJobData, PushJobResult } from '../queue/index.js';
import type { WorkerHeartbeat } from '../queue/heartbeat.js';
import type { MessageBus } from './messages.js';
import type { WatermarkRegistry } from '../watermarks/registry.js';
import { taskDir, type RecordStore } from '../records/index.js';
import type { StoragePolicy } from '../records/storage.js';
import {
  admissionRefusal,
  assertWorkerRoom,
  type StartRateLimit,
  type StartRequest,
  type StartResult,
  type StopResult,
} from './admission.js';
import { hashChannelPassword } from './password.js';
import { channelCost } from './cost.js';
import { inputCodecs, normalizeCodec, planTracks } from './tracks.js';
import { AccountRegistry, type Account } from '../tenants/accounts.js';
import type { App } from '../tenants/apps.js';
import type { ChannelLifecycle } from './lifecycle.js';
import type { ChannelRecords } from './records.js';
import { newChannelId } from './store.js';
import type { ChannelWaiter } from './waiter.js';
import { encodeHasHls, placedOn, playUrls } from './urls.js';
import { FINAL_STATES, type Channel, type ChannelInput } from './types.js';
import type { Placement } from '../cluster/placement.js';

/** Dependencies of the push service. */
export interface PushServiceDeps {
  config: RelayConfig;
  store: Pick<ChannelRecords, 'admit' | 'get'>;
  lifecycle: Pick<ChannelLifecycle, 'resume' | 'requestStop' | 'finishStop' | 'erase' | 'patch'>;
  /** Sends control messages to workers. */
  bus: Pick<MessageBus, 'publish'>;
  rooms: Pick<RoomRegistry, 'list'>;
  queue: Pick<Queue<PushJobData, PushJobResult>, 'add' | 'remove'>;
  waiter: Pick<ChannelWaiter, 'until'>;
  rateLimit: StartRateLimit;
  /** Workers that reported recently (CPU-cost admission). */
  workers: () => Promise<WorkerHeartbeat[]>;
  /** Media nodes with room (cluster/placement.ts): a new channel goes to the one with the most; absent: one server. */
  placement?: Pick<Placement, 'place' | 'release'>;
  accounts: Pick<AccountRegistry, 'get'>;
  watermarks: Pick<WatermarkRegistry, 'get' | 'file'>;
  records: Pick<RecordStore, 'create' | 'remove' | 'root'>;
  /** Free-space admission and storage quotas of starts with recording (50007, 20102); none: not checked. */
  storage?: Pick<StoragePolicy, 'assertCanRecord'>;
  /** The relay's ffmpeg: an upstream it cannot read is refused at start (50008); absent: not checked. */
  ffmpeg?: () => Promise<FfmpegInfo>;
  logger: Logger;
}

const STOP_WAIT_MS = 8000;
/** A failed channel's own hint, if it has one (else the code's default hint answers). */
const hintOf = (error: { hint?: string }) => (error.hint ? { hint: error.hint } : {});

export type { StartRateLimit, StartRequest, StartResult, StopResult };
export { redisStartRateLimit } from './admission.js';

/** Start and stop of bypass pushes: admission, the job, and waiting for the worker's answer. */
export class PushService {
  constructor(private readonly d: PushServiceDeps) {}

  private get ffmpegDep(): { ffmpeg?: () => Promise<FfmpegInfo> } {
    return this.d.ffmpeg ? { ffmpeg: this.d.ffmpeg } : {};
  }

  /** Starts a push; resolves once media flows, or throws the SPEC code of the refusal (nothing left of it). */
  async start(app: Pick<App, 'sdkAppId' | 'accountId'>, req: StartRequest): Promise<StartResult> {
    const { config, rooms } = this.d;
    const { sdkAppId, accountId } = app;
    const account = await this.d.accounts.get(accountId);
    if (!account) throw new RelayError(1002, `account ${accountId} of app ${sdkAppId} does not exist`);
    AccountRegistry.assertActive(account);
    const upstreams = await rooms.list(sdkAppId, req.roomId);
    if (upstreams.length === 0)
      throw new RelayError(40000410, `room ${req.roomId} does not exist (no upstream registered)`);
    const up = upstreams.find((u) => u.userId === req.userId && u.srcType === req.srcType);
    if (!up) {
      const other = upstreams.find((u) => u.userId === req.userId);
      throw new RelayError(
        40000411,
        other
          ? `user ${req.userId} has no ${SRC_TYPE_NAMES[req.srcType]} upstream in room ${req.roomId} (it has ${SRC_TYPE_NAMES[other.srcType]})`
          : `user ${req.userId} has no upstream in room ${req.roomId}`,
      );
    }
    if (req.option.record) await this.d.storage?.assertCanRecord(account, encodeHasHls(req.option.encode));
    if (config.startRateLimitMs > 0) {
      const retryAfterMs = await this.d.rateLimit.take(sdkAppId, req.roomId, req.userId, config.startRateLimitMs);
      if (retryAfterMs !== null) throw new RelayError(40000500, undefined, { details: { retryAfterMs } });
    }
    const input: ChannelInput = isIngestMember(up)
      ? {
          kind: 'ingest',
          streamName: ingestStreamName(up),
          ...(up.stats?.videoKbps ? { videoKbps: up.stats.videoKbps } : {}),
          ...(up.stats?.videoCodec ? { videoCodec: normalizeCodec('video', up.stats.videoCodec)! } : {}),
          ...(up.stats ? { audioCodec: normalizeCodec('audio', up.stats.audioCodec) ?? 'none' } : {}),
        }
      : // checked again at each start: the file may be gone, the host may resolve elsewhere now (DNS rebinding)
        { kind: 'external', ...(await checkUpstream(up.url ?? '', { ...config, ...this.ffmpegDep })) };
    const { option, watermark } = await this.watermarkOf(sdkAppId, req.option);
    const channelId = newChannelId();
    const now = Date.now();
    const tracks = planTracks(inputCodecs(input));
    const cost = channelCost({ option, tracks, ...(watermark ? { watermark } : {}) }, config.costs);
    assertWorkerRoom(await this.d.workers(), cost);
    const ch: Channel = {
      channelId,
      sdkAppId,
      accountId,
      roomId: req.roomId,
      userId: req.userId,
      srcType: req.srcType,
      option,
      input,
      urls: playUrls(config, channelId, option.encode, option.rateTypes),
      hls: encodeHasHls(option.encode),
      state: 'starting',
      createdAt: now,
      cost,
      ...(option.rateTypes.includes(0) && !watermark ? { tracks } : {}),
      ...(watermark ? { watermark } : {}),
      ...(req.pushTargets?.length ? { pushTargets: req.pushTargets } : {}),
      ...(req.channelPassword !== undefined
        ? { passwordHash: hashChannelPassword(channelId, req.channelPassword) }
        : {}),
      history: [{ state: 'starting', at: now, reason: 'start requested' }],
    };
    return this.launch(ch, account, req);
  }

  /** The option with its watermark's placement, and the watermark (copied into the record); 50002 when unknown. */
  async watermarkOf(
    sdkAppId: string,
    option: StartRequest['option'],
  ): Promise<{ option: StartRequest['option']; watermark?: Channel['watermark'] }> {
    if (!option.waterMark) return { option };
    const wm = await this.d.watermarks.get(sdkAppId, option.waterMarkId!);
    if (!wm)
      throw new RelayError(50002, `unknown waterMarkId ${option.waterMarkId}`, {
        hint: 'list your watermarks with GET /v1/watermarks',
      });
    const file = this.d.watermarks.file(sdkAppId, wm.waterMarkId);
    const watermark = { id: wm.waterMarkId, file, width: wm.width, height: wm.height };
    return { option: { ...option, waterMarkPosition: wm.placement }, watermark };
  }

  /**
   * Admits a channel record (room and account limits, or the retained channel of its upstream, resumed), makes its
   * recording task, queues its job and waits for the worker's answer (a push, or a mix).
   */
  async launch(
    ch: Channel,
    account: Account,
    req: Omit<StartRequest, 'option' | 'channelPassword'>,
  ): Promise<StartResult> {
    const { config, store } = this.d;
    const { channelId, option, sdkAppId } = ch;
    const node = await this.d.placement?.place(channelId); // 50005 when every media node is full
    if (node) Object.assign(ch, placedOn(ch, node, config));
    const admission = await store.admit(ch, config.maxChannelsPerRoom, account.channelLimit);
    if (!admission.ok) await this.d.placement?.release(channelId);
    if (!admission.ok && admission.reason === 'resumable') return this.resume(admission.channelId);
    if (!admission.ok) throw admissionRefusal(admission, { ...req, account, maxPerRoom: config.maxChannelsPerRoom });
    if (option.record) {
      const task = await this.d.records.create(sdkAppId, channelId, option.recordFileType).catch(async (e: Error) => {
        await this.discard(ch, ch);
        throw e;
      });
      ch.recordTaskId = task.recordTaskId;
      await this.d.lifecycle.patch(channelId, { recordTaskId: task.recordTaskId });
    }
    let outcome: { channel: Channel | null; reached: boolean } = { channel: null, reached: false };
    try {
      await this.d.queue.add('push', { channelId }, { jobId: channelId });
      this.d.logger.info(
        { channelId, roomId: req.roomId, userId: req.userId, srcType: req.srcType, encode: option.encode },
        'push start queued',
      );
      outcome = await this.d.waiter.until(channelId, ['live', 'failed', 'stopped', 'stopping'], config.apiWaitMs);
    } catch (e) {
      await this.discard(ch, ch).catch(() => undefined);
      throw e;
    }
    const { channel, reached } = outcome;
    if (reached && channel?.state === 'live')
      return {
        channelId,
        urls: channel.urls,
        ...(ch.recordTaskId !== undefined ? { recordTaskId: ch.recordTaskId } : {}),
      };
    // A stop that arrived while starting wins; the record stays with its history.
    if (channel?.state === 'stopping' || channel?.state === 'stopped')
      throw new RelayError(40000413, `channel ${channelId} was stopped while it was starting`, {
        details: { channelId },
      });
    await this.discard(ch, channel);
    if (channel?.state === 'failed' && channel.error && isErrorCode(channel.error.code))
      throw new RelayError(channel.error.code, channel.error.message, hintOf(channel.error));
    if (!reached && channel?.worker === undefined)
      throw new RelayError(50005, 'back end timed out: no worker took the push job in time');
    throw new RelayError(6012);
  }

  // A start for an upstream whose channel is retained: the same channel, id and URLs, continues.
  private async resume(channelId: string): Promise<StartResult> {
    const ch = await this.d.store.get(channelId);
    if (!ch || !(await this.d.lifecycle.resume(ch, 'resumed by a start within the retention time')).ok)
      throw new RelayError(40000415, `channel ${channelId} of this upstream is changing state; retry`, {
        details: { channelId },
      });
    this.d.logger.info({ channelId }, 'retained channel resumed by start');
    const { channel, reached } = await this.d.waiter.until(
      channelId,
      ['live', 'failed', 'stopped', 'stopping', 'interrupted'],
      this.d.config.apiWaitMs,
    );
    if (reached && channel?.state === 'live')
      return {
        channelId,
        urls: channel.urls,
        ...(channel.recordTaskId !== undefined ? { recordTaskId: channel.recordTaskId } : {}),
      };
    if (channel?.state === 'failed' && channel.error && isErrorCode(channel.error.code))
      throw new RelayError(channel.error.code, channel.error.message, {
        ...hintOf(channel.error),
        details: { channelId },
      });
    // the channel stays retained (interrupted) for a later try
    throw new RelayError(6012, undefined, { details: { channelId } });
  }

  // Removes every trace of a start that did not go live: job, record, slots and files.
  private async discard(ch: Channel, seen: Channel | null): Promise<void> {
    const removed = await this.d.queue.remove(ch.channelId).catch(() => 0);
    if (!removed && seen && seen.state !== 'failed') {
      // A worker holds the job: tell it to stop; it finds the record gone and ends its ffmpeg.
      await this.d.lifecycle.requestStop(ch, 'start abandoned by the API');
      await this.stopMessage(ch.channelId);
    }
    await this.d.lifecycle.erase(ch);
    if (ch.recordTaskId !== undefined) {
      await this.d.records.remove(ch.recordTaskId);
      await fs.rm(taskDir(this.d.records.root, ch.sdkAppId, ch.recordTaskId), { recursive: true, force: true });
    }
  }

  /** Stops each channel; answers per id (0 stopped, 40000412 already stopped, 40000413 stopping, 50002 unknown). */
  async stop(sdkAppId: string | null, channelIds: readonly string[]): Promise<StopResult[]> {
    const ids = [...new Set(channelIds)];
    return Promise.all(
      ids.map((id) =>
        this.stopOne(sdkAppId, id).catch((e: Error): StopResult =>
          e instanceof RelayError
            ? { channelId: id, code: e.code, message: e.message }
            : { channelId: id, code: 50006, message: e.message },
        ),
      ),
    );
  }

  private async stopOne(sdkAppId: string | null, channelId: string): Promise<StopResult> {
    const { store, lifecycle } = this.d;
    const ch = await store.get(channelId);
    // an app stops its own channels; the operator (sdkAppId null) any channel
    if (!ch || (sdkAppId !== null && ch.sdkAppId !== sdkAppId))
      return { channelId, code: 50002, message: 'no such channel' };
    if (FINAL_STATES.includes(ch.state)) return { channelId, code: 40000412, message: `already stopped (${ch.state})` };
    if (ch.state === 'interrupted' && (await lifecycle.finishStop(ch, 'stopped by request while interrupted')).ok)
      return { channelId, code: 0, message: 'stopped' };
    const moved = await lifecycle.requestStop(ch, 'stop requested');
    if (!moved.ok)
      return { channelId, code: moved.state === 'stopping' ? 40000413 : 40000412, message: `already ${moved.state}` };
    if ((await this.d.queue.remove(channelId).catch(() => 0)) === 1) {
      // No worker holds the job: finish the stop here.
      await lifecycle.finishStop(ch, 'stopped by request (no worker held it)');
      return { channelId, code: 0, message: 'stopped' };
    }
    await this.stopMessage(channelId);
    const { channel } = await this.d.waiter.until(channelId, FINAL_STATES, STOP_WAIT_MS);
    return { channelId, code: 0, message: channel && FINAL_STATES.includes(channel.state) ? 'stopped' : 'stopping' };
  }

  private async stopMessage(channelId: string): Promise<void> {
    await this.d.bus.publish('control', { type: 'stop', channelId });
  }
}
