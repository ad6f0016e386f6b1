import crypto from 'node:crypto';
import { Queue, UnrecoverableError, Worker, type ConnectionOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import type { RelayConfig } from '../config/index.js';
import { redact } from '../log.js';
import type { Keys } from '../redis/index.js';
import { bullPrefix } from '../queue/index.js';
import { RelayError } from '../errors/index.js';
import { assertEgressAllowed, type EgressPolicy } from '../egress/index.js';
import type { AppRegistry } from '../tenants/apps.js';

/** Events an app's callback URL receives. */
export type WebhookEventType =
  | 'push.started'
  | 'push.interrupted'
  | 'push.resumed'
  | 'push.stopped'
  | 'push.failed'
  | 'record.file_ready'
  | 'channel.recycled'
  /** A push target that was live dropped (`final: false`), or gave up after its retries (`final: true`). */
  | 'target.failed'
  /** A push target is live again after a target.failed. */
  | 'target.recovered';

/** One event as delivered (the JSON body of the POST). */
export interface WebhookEvent {
  eventId: string;
  type: WebhookEventType;
  /** When it happened, ms since the epoch. */
  time: number;
  sdkAppId: string;
  channelId: string;
  data: Record<string, unknown>;
}

export const WEBHOOK_QUEUE = 'webhooks';
/** Header carrying `sha256=<hex HMAC-SHA256 of the raw body with the app's secret key>`. */
export const SIGNATURE_HEADER = 'x-relay-signature';
const DELIVERY_TIMEOUT_MS = 5000;

/** The signature of a body for an app secret. */
export function signBody(secretKey: string, body: string): string {
  return 'sha256=' + crypto.createHmac('sha256', secretKey).update(body).digest('hex');
}

/** Opens the webhook queue: at-least-once, retried with exponential backoff; failed deliveries stay visible. */
export function webhookQueue(
  connection: ConnectionOptions,
  cfg: Pick<RelayConfig, 'redisPrefix' | 'webhookAttempts' | 'webhookBackoffMs'>,
): Queue<WebhookEvent> {
  return new Queue<WebhookEvent>(WEBHOOK_QUEUE, {
    connection,
    prefix: bullPrefix(cfg.redisPrefix),
    defaultJobOptions: {
      attempts: cfg.webhookAttempts,
      backoff: { type: 'exponential', delay: cfg.webhookBackoffMs },
      removeOnComplete: { count: 1000 },
      removeOnFail: { count: 5000 },
    },
  });
}

/**
 * The id of an event. A recording file's `record.file_ready` has one id derived from the app, the recording task and
 * the file name, so announcing it again (a worker restart or handover announces a task's files anew) is deduplicated by
 * the queue's job id while the first job is kept, and receivers see one id for one file. Other events are each new.
 */
export function eventIdOf(type: WebhookEventType, sdkAppId: string, data: Record<string, unknown>): string {
  if (type === 'record.file_ready' && data.recordTaskId !== undefined && typeof data.name === 'string') {
    const key = JSON.stringify([type, sdkAppId, String(data.recordTaskId), data.name]);
    return `ev_${crypto.createHash('sha256').update(key).digest('hex').slice(0, 20)}`;
  }
  return `ev_${crypto.randomBytes(10).toString('hex')}`;
}

/** Puts events on the webhook queue; a slow or dead receiver never holds up the caller. */
export class WebhookOutbox {
  constructor(private readonly queue: Pick<Queue<WebhookEvent>, 'add'>) {}

  /** Queues an event for the channel's app (dropped at delivery if the app has no callback URL). */
  async emit(
    type: WebhookEventType,
    ch: { channelId: string; sdkAppId: string },
    data: Record<string, unknown> = {},
  ): Promise<void> {
    const ev: WebhookEvent = {
      eventId: eventIdOf(type, ch.sdkAppId, data),
      type,
      time: Date.now(),
      sdkAppId: ch.sdkAppId,
      channelId: ch.channelId,
      data,
    };
    await this.queue.add(type, ev, { jobId: ev.eventId });
  }
}

/** Callback URLs of apps (Redis hash `<prefix>:webhooks`: sdkAppId → URL). */
export class WebhookRegistry {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    /** Where callback URLs may point (no internal addresses unless allow-listed). */
    readonly egress: EgressPolicy,
  ) {}

  /** Sets an app's callback URL (http or https, on a public address: the egress policy). */
  async set(sdkAppId: string, url: string): Promise<void> {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new RelayError(50002, 'callback url is not a URL');
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:')
      throw new RelayError(50002, 'callback url must be http:// or https://');
    await assertEgressAllowed(url, this.egress, 'callback url');
    await this.redis.hset(this.keys.webhooks(), sdkAppId, url);
  }

  async get(sdkAppId: string): Promise<string | null> {
    return this.redis.hget(this.keys.webhooks(), sdkAppId);
  }

  async remove(sdkAppId: string): Promise<boolean> {
    return (await this.redis.hdel(this.keys.webhooks(), sdkAppId)) > 0;
  }
}

/**
 * Delivers queued events: POSTs the signed JSON to the app's URL; a non-2xx answer or a timeout is retried with
 * backoff.
 */
export function startWebhookDelivery(
  connection: ConnectionOptions,
  redisPrefix: string,
  apps: Pick<AppRegistry, 'get'>,
  hooks: WebhookRegistry,
  logger: Logger,
): Worker<WebhookEvent> {
  const worker = new Worker<WebhookEvent>(
    WEBHOOK_QUEUE,
    async (job) => {
      const ev = job.data;
      const url = await hooks.get(ev.sdkAppId);
      const app = await apps.get(ev.sdkAppId);
      if (!url || !app) return { skipped: true };
      // checked again at each delivery: the host may resolve elsewhere now than when the URL was set
      await assertEgressAllowed(url, hooks.egress, 'callback url').catch((e: Error) => {
        throw new UnrecoverableError(e.message);
      });
      const body = JSON.stringify(ev);
      const res = await fetch(url, {
        redirect: 'error', // a redirect could lead anywhere, the egress policy included
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          [SIGNATURE_HEADER]: signBody(app.secretKey, body),
          'x-relay-event': ev.type,
          'x-relay-delivery': ev.eventId,
        },
        body,
        signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
      });
      if (!res.ok) throw new Error(`receiver answered HTTP ${res.status}`);
      logger.debug({ eventId: ev.eventId, type: ev.type, url: redact(url) }, 'webhook delivered');
      return { status: res.status };
    },
    { connection, prefix: bullPrefix(redisPrefix), concurrency: 16 },
  );
  worker.on('failed', (job, err) =>
    logger.warn({ eventId: job?.id, attempt: job?.attemptsMade, err: err.message }, 'webhook delivery failed'),
  );
  worker.on('error', (e) => logger.warn({ err: e.message }, 'webhook worker error'));
  return worker;
}

/** Maps channel state events to webhook events, for the channel store's publisher. */
export function webhookTypeOf(state: string, resumed: boolean): WebhookEventType | null {
  switch (state) {
    case 'live':
      return resumed ? 'push.resumed' : 'push.started';
    case 'interrupted':
      return 'push.interrupted';
    case 'stopped':
      return 'push.stopped';
    case 'failed':
      return 'push.failed';
    case 'recycled':
      return 'channel.recycled';
    default:
      return null;
  }
}
