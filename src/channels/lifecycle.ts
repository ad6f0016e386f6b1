import fs from 'node:fs/promises';
import type { Queue } from 'bullmq';
import type { Logger } from '../log.js';
import type { PushJobData, PushJobResult } from '../queue/index.js';
import { endPlaylists } from '../media/hls.js';
import { RelayError } from '../errors/index.js';
import { webhookTypeOf, type WebhookEventType } from '../webhooks/index.js';
import type { ChannelEvent, MessageBus } from './messages.js';
import type { ChannelPatch, ChannelRecords, ChannelSlots, Moved } from './records.js';
import { CHANNEL_STATES, FINAL_STATES, type Channel, type ChannelState } from './types.js';
import { channelHlsRoot, channelPlaylists, type DataLayout } from './layout.js';

/** Where state events also go besides the events topic (the webhook outbox). */
export interface EventSink {
  emit(
    type: WebhookEventType,
    ch: { channelId: string; sdkAppId: string },
    data?: Record<string, unknown>,
  ): Promise<void>;
}

/**
 * The states a channel may move to from each state. live → live is a worker taking over a live channel (handover,
 * failover); stopped, failed and recycled are final.
 */
export const NEXT_STATES: Record<ChannelState, readonly ChannelState[]> = {
  starting: ['live', 'stopping', 'stopped', 'failed', 'interrupted'],
  live: ['live', 'stopping', 'stopped', 'failed', 'interrupted'],
  stopping: ['stopped', 'failed'],
  interrupted: ['starting', 'stopped', 'recycled'],
  stopped: [],
  failed: [],
  recycled: [],
};

/** The states from which a channel may move to `to` (the `from` of its compare-and-set). */
export function statesBefore(to: ChannelState): ChannelState[] {
  return CHANNEL_STATES.filter((s) => NEXT_STATES[s].includes(to));
}

/** Whether NEXT_STATES allows `from` → `to`. */
export function canMove(from: ChannelState, to: ChannelState): boolean {
  return NEXT_STATES[from].includes(to);
}

/** A channel as a move needs it: which one, and whose app hears of it. */
export type ChannelRef = Pick<Channel, 'channelId' | 'sdkAppId'>;

/** Dependencies of the lifecycle. */
export interface LifecycleDeps {
  records: ChannelRecords;
  /** Carries the state events (topic `events`). */
  bus: Pick<MessageBus, 'publish'>;
  /** Webhook outbox of state events and recording files; none in a process that sends no webhooks. */
  sink?: EventSink;
  layout: DataLayout;
  /** How long an interrupted channel keeps its id and URLs. */
  retentionMs: number;
  maxPerRoom: number;
  /** The push queue, for resume; a process that never resumes channels has none. */
  queue?: Pick<Queue<PushJobData, PushJobResult>, 'add'>;
  logger: Logger;
}

/**
 * The one owner of channel state. Each named move is one compare-and-set whose `from` states come from NEXT_STATES;
 * only when it moved does the move free slots, end or remove files, publish the event and queue the webhook — once.
 */
export class ChannelLifecycle {
  constructor(private readonly d: LifecycleDeps) {}

  private move(channelId: string, to: ChannelState, reason: string, patch: ChannelPatch = {}, gen?: number) {
    return this.d.records.transition(channelId, statesBefore(to), to, reason, patch, gen);
  }

  /**
   * A runner begins the channel: its run generation goes up by one (starting|live|stopping), which fences every
   * older runner (moves given its `gen` are refused as `fenced`). Returns the new generation; null without a record.
   */
  beginRun(channelId: string): Promise<number | null> {
    return this.d.records.beginRun(channelId);
  }

  /**
   * Media flows on `workerId` (starting|live → live); `resumed` after an interruption or a worker change. With `gen`
   * (as every move below that takes one): only while the channel's run generation is still `gen`.
   */
  async markLive(ch: Channel, run: { workerId: string; resumed: boolean; gen?: number }): Promise<Moved> {
    const reason = run.resumed ? `resumed on ${run.workerId}` : 'media flowing';
    const moved = await this.move(
      ch.channelId,
      'live',
      reason,
      { worker: run.workerId, ...(ch.startedAt ? {} : { startedAt: Date.now() }) },
      run.gen,
    );
    if (moved.ok)
      await this.announce(ch, { channelId: ch.channelId, state: 'live', ...(run.resumed ? { resumed: true } : {}) });
    return moved;
  }

  /** Asks the worker that runs the channel to end it (starting|live → stopping); the worker then calls finishStop. */
  async requestStop(ch: ChannelRef, reason: string): Promise<Moved> {
    const moved = await this.move(ch.channelId, 'stopping', reason);
    if (moved.ok) await this.announce(ch, { channelId: ch.channelId, state: 'stopping' });
    return moved;
  }

  /**
   * Ends a channel (stopping|starting|live|interrupted → stopped): ENDLIST on its playlists, slots freed. `tell`: the
   * push.stopped webhook carries the reason (a stop nobody asked for).
   */
  async finishStop(ch: ChannelRef, reason: string, gen?: number, tell = false): Promise<Moved> {
    const cur = await this.d.records.get(ch.channelId);
    // A run whose ffmpeg outlived the stop (a stale runner, its ffmpeg stopped late) may have rewritten a playlist
    // since it was ended: end it again, so a stopped channel's playlists always end. Nothing else moves.
    if (cur?.state === 'stopped') await endPlaylists(channelPlaylists(cur, this.d.layout));
    if (!cur || !canMove(cur.state, 'stopped')) return { ok: false, state: cur?.state ?? '' };
    if (isStale(cur, gen)) return { ok: false, state: cur.state, fenced: true };
    // ENDLIST before the state: whoever sees `stopped` (an API stop answer, a viewer) finds the playlists ended.
    await endPlaylists(channelPlaylists(cur, this.d.layout));
    const moved = await this.move(cur.channelId, 'stopped', reason, { stoppedAt: Date.now() }, gen);
    if (!moved.ok) return moved;
    await this.d.records.release(cur);
    await this.announce(cur, { channelId: cur.channelId, state: 'stopped', ...(tell ? { message: reason } : {}) });
    return moved;
  }

  /**
   * A start or a run cannot go on (starting|live|stopping → failed). A channel never live leaves no HLS files; one
   * that was live keeps its playlists, ended.
   */
  async fail(ch: ChannelRef, error: { code: number; message: string; hint?: string }, gen?: number): Promise<Moved> {
    const cur = await this.d.records.get(ch.channelId);
    if (!cur || !canMove(cur.state, 'failed')) return { ok: false, state: cur?.state ?? '' };
    if (isStale(cur, gen)) return { ok: false, state: cur.state, fenced: true };
    // Files first, for the same reason as in finishStop: a refused start's answer finds nothing left.
    if (cur.startedAt === undefined)
      await fs.rm(channelHlsRoot(cur.channelId, this.d.layout), { recursive: true, force: true });
    else await endPlaylists(channelPlaylists(cur, this.d.layout));
    const moved = await this.move(cur.channelId, 'failed', error.message, { error, stoppedAt: Date.now() }, gen);
    if (!moved.ok) return moved;
    await this.d.records.release(cur);
    await this.announce(cur, { channelId: cur.channelId, state: 'failed', code: error.code, message: error.message });
    return moved;
  }

  /**
   * The upstream is gone (live|starting → interrupted): the channel keeps its id, URLs and playlist (no ENDLIST) for
   * the retention time.
   */
  async interrupt(ch: ChannelRef & Pick<Channel, 'roomId'>, reason: string, gen?: number): Promise<Moved> {
    const now = Date.now();
    const until = now + this.d.retentionMs;
    const patch = { interruptedAt: now, retainUntil: until };
    const moved = await this.move(ch.channelId, 'interrupted', reason, patch, gen);
    if (!moved.ok) return moved;
    await this.d.records.retain(ch, until);
    await this.announce(ch, { channelId: ch.channelId, state: 'interrupted', message: reason });
    return moved;
  }

  /**
   * Takes an interrupted channel back (interrupted → starting) and queues its job again; its outputs continue on the
   * same URLs (HLS numbering goes on, with a discontinuity). Throws 20101 when its room has no free slot meanwhile.
   * Fenced by the run generation `ch` was read with: nothing moves when a run has begun since.
   */
  async resume(ch: Channel, reason: string): Promise<Moved> {
    if (!canMove(ch.state, 'starting')) return { ok: false, state: ch.state };
    const { records, maxPerRoom, queue } = this.d;
    if (!queue) throw new Error('this process has no push queue: it cannot resume channels');
    if (!(await records.unretain(ch, maxPerRoom)))
      throw new RelayError(20101, `room ${ch.roomId} already has ${maxPerRoom} bypass channels`, {
        hint: "stop one of the room's channels first",
      });
    const patch = { interruptedAt: null, retainUntil: null, restarts: 0 };
    const moved = await this.move(ch.channelId, 'starting', reason, patch, ch.runGen ?? 0);
    if (!moved.ok) {
      // Another resume won: the slots are its own now. A channel that ended meanwhile gets back what unretain took.
      if (moved.state === '' || FINAL_STATES.includes(moved.state)) await records.release(ch);
      else if (moved.state === 'interrupted') await records.retain(ch, ch.retainUntil ?? Date.now());
      return moved;
    }
    await queue.add('push', { channelId: ch.channelId }, { jobId: ch.channelId });
    await this.announce(ch, { channelId: ch.channelId, state: 'starting' });
    return moved;
  }

  /** Retention ran out (interrupted → recycled): its URLs answer 404, its live HLS files go, its slots are freed. */
  async recycle(channelId: string): Promise<Moved> {
    const ch = await this.d.records.get(channelId);
    if (!ch) return { ok: false, state: '' };
    const moved = await this.move(channelId, 'recycled', 'retention ended');
    if (!moved.ok) return moved;
    await this.d.records.release(ch);
    await fs.rm(channelHlsRoot(channelId, this.d.layout), { recursive: true, force: true });
    await this.announce(ch, { channelId, state: 'recycled' });
    this.d.logger.info({ channelId }, 'channel recycled');
    return moved;
  }

  /** Removes a start that never went live: its slots, its record and its HLS files (no state, no event). */
  async erase(ch: ChannelSlots): Promise<void> {
    await this.d.records.release(ch, true);
    await fs.rm(channelHlsRoot(ch.channelId, this.d.layout), { recursive: true, force: true });
  }

  /**
   * Merges fields (stats, restarts, recordTaskId, resumeOnReturn) without a move, only while the channel is in one of
   * `onlyIn` (any state when left out). Returns whether it was, so a stats write also notices a stop.
   */
  async patch(channelId: string, fields: ChannelPatch, onlyIn: readonly ChannelState[] = []): Promise<boolean> {
    return (await this.d.records.transition(channelId, onlyIn, null, '', fields)).ok;
  }

  /** patch() for a runner: only while the channel's run generation is `gen` (else `fenced`, nothing written). */
  patchRun(channelId: string, gen: number, fields: ChannelPatch, onlyIn: readonly ChannelState[] = []): Promise<Moved> {
    return this.d.records.transition(channelId, onlyIn, null, '', fields, gen);
  }

  /** Queues a webhook that moves nothing (a push target failed or recovered: issue 14). */
  async notify(type: WebhookEventType, ch: ChannelRef, data: Record<string, unknown>): Promise<void> {
    await this.webhook(type, ch, data);
  }

  /** Queues the webhook of a complete recording file. */
  async recordFileReady(
    ch: ChannelRef,
    file: { recordTaskId: number; name: string; format: string; bytes: number },
  ): Promise<void> {
    await this.webhook('record.file_ready', ch, file);
  }

  /** Recycles retained channels whose time is up, every `intervalMs` (any process may run it); returns a stopper. */
  startRecycler(intervalMs = 2000): () => void {
    let busy = false;
    const timer = setInterval(() => {
      if (busy) return;
      busy = true;
      void (async () => {
        for (const id of await this.d.records.dueForRecycling(Date.now())) await this.recycle(id);
      })()
        .catch((e: Error) => this.d.logger.warn({ err: e.message }, 'recycling failed'))
        .finally(() => {
          busy = false;
        });
    }, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  // Announces a state change to API waiters and media servers, and queues it for the app's webhook.
  private async announce(ch: ChannelRef, ev: ChannelEvent): Promise<void> {
    await this.d.bus.publish('events', ev);
    const type = webhookTypeOf(ev.state, !!ev.resumed);
    if (type)
      await this.webhook(type, ch, {
        state: ev.state,
        ...(ev.code !== undefined ? { code: ev.code } : {}),
        ...(ev.message ? { reason: ev.message } : {}),
      });
  }

  // A webhook that cannot be queued must not undo a move that happened: it is logged, not thrown.
  private async webhook(type: WebhookEventType, ch: ChannelRef, data: Record<string, unknown>): Promise<void> {
    if (!this.d.sink) return;
    await this.d.sink
      .emit(type, { channelId: ch.channelId, sdkAppId: ch.sdkAppId }, data)
      .catch((e: Error) =>
        this.d.logger.warn({ channelId: ch.channelId, type, err: e.message }, 'webhook event not queued'),
      );
  }
}

/** Whether a move given run generation `gen` comes from a stale runner (never without a `gen`). */
export function isStale(ch: Pick<Channel, 'runGen'>, gen: number | undefined): boolean {
  return gen !== undefined && (ch.runGen ?? 0) !== gen;
}
