import fs from 'node:fs/promises';
import type { Queue } from 'bullmq';
import type { Logger } from '../log.js';
import type { PushJobData, PushJobResult } from '../queue/index.js';
import { endPlaylists } from '../media/hls.js';
import { RelayError } from '../errors/index.js';
import type { ChannelStore } from './store.js';
import type { Channel } from './types.js';
import { channelHlsRoot, channelPlaylists, type DataLayout } from './layout.js';

/** The upstream is gone: the channel keeps its id, URLs and HLS playlist (no ENDLIST) for `retentionMs`. */
export async function interruptChannel(store: ChannelStore, ch: Channel, reason: string, retentionMs: number): Promise<boolean> {
  const now = Date.now();
  const moved = await store.transition(ch.channelId, ['live', 'starting'], 'interrupted', reason, { interruptedAt: now, retainUntil: now + retentionMs });
  if (!moved.ok) return false;
  await store.retain(ch, now + retentionMs);
  await store.publish({ channelId: ch.channelId, state: 'interrupted', message: reason }, ch.sdkAppId);
  return true;
}

/**
 * Takes an interrupted channel back to starting and queues its job again; its outputs continue on the same URLs
 * (HLS numbering goes on, with a discontinuity). Throws 20101 when its room has no free slot meanwhile.
 */
export async function resumeChannel(store: ChannelStore, queue: Pick<Queue<PushJobData, PushJobResult>, 'add'>, ch: Channel, reason: string, maxPerRoom: number): Promise<boolean> {
  if (!(await store.unretain(ch, maxPerRoom))) throw new RelayError(20101, `room ${ch.roomId} already has ${maxPerRoom} bypass channels`, { hint: 'stop one of the room\'s channels first' });
  // null clears the fields in the stored record
  const moved = await store.transition(ch.channelId, ['interrupted'], 'starting', reason, { interruptedAt: null, retainUntil: null, restarts: 0 } as unknown as Partial<Channel>);
  if (!moved.ok) {
    await store.retain(ch, ch.retainUntil ?? Date.now());
    return false;
  }
  await queue.add('push', { channelId: ch.channelId }, { jobId: ch.channelId });
  return true;
}

/** Ends a channel whose retention has run out: its URLs answer 404, its live HLS files go, its slot is freed. */
export async function recycleChannel(store: ChannelStore, channelId: string, layout: DataLayout, logger: Logger): Promise<boolean> {
  const ch = await store.get(channelId);
  if (!ch) return false;
  const moved = await store.transition(channelId, ['interrupted'], 'recycled', 'retention ended');
  if (!moved.ok) return false;
  await store.release(ch);
  await fs.rm(channelHlsRoot(channelId, layout), { recursive: true, force: true });
  await store.publish({ channelId, state: 'recycled' }, ch.sdkAppId);
  logger.info({ channelId }, 'channel recycled');
  return true;
}

/** Stops a channel no worker runs (interrupted, or queued without a worker): ENDLIST, stopped, slots freed. */
export async function stopIdleChannel(store: ChannelStore, ch: Channel, layout: DataLayout, reason: string): Promise<boolean> {
  const moved = await store.transition(ch.channelId, ['interrupted', 'stopping'], 'stopped', reason, { stoppedAt: Date.now() });
  if (!moved.ok) return false;
  await endPlaylists(channelPlaylists(ch, layout));
  await store.release(ch);
  await store.publish({ channelId: ch.channelId, state: 'stopped' }, ch.sdkAppId);
  return true;
}

/** Recycles retained channels whose time is up, every `intervalMs`, in any process that runs it; returns a stopper. */
export function startRecycler(store: ChannelStore, layout: DataLayout, logger: Logger, intervalMs = 2000): () => void {
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    void (async () => {
      for (const id of await store.dueForRecycling(Date.now())) await recycleChannel(store, id, layout, logger);
    })().catch((e: Error) => logger.warn({ err: e.message }, 'recycling failed')).finally(() => { busy = false; });
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
