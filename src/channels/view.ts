import { redact } from '../log.js';
import { SRC_TYPE_NAMES } from '../rooms/model.js';
import type { Channel } from './types.js';

/** The channel as the API shows it: no secrets (external URLs redacted, internal fields dropped). */
export function publicChannel(ch: Channel): Record<string, unknown> {
  return {
    channelId: ch.channelId,
    roomId: ch.roomId,
    userId: ch.userId,
    srcType: ch.srcType,
    srcTypeName: SRC_TYPE_NAMES[ch.srcType],
    state: ch.state,
    option: ch.option,
    urls: ch.urls,
    recordTaskId: ch.recordTaskId ?? null,
    waterMarkId: ch.watermark?.id ?? null,
    upstream: ch.input.kind === 'ingest' ? { source: 'ingest', streamName: ch.input.streamName } : { source: 'external', url: redact(ch.input.url) },
    createdAt: ch.createdAt,
    startedAt: ch.startedAt ?? null,
    stoppedAt: ch.stoppedAt ?? null,
    error: ch.error ?? null,
    interruptedAt: ch.interruptedAt ?? null,
    retainUntil: ch.retainUntil ?? null,
    restarts: ch.restarts ?? 0,
    cost: ch.cost ?? null,
    worker: ch.worker ?? null,
    stats: ch.stats ?? null,
    history: ch.history,
  };
}
