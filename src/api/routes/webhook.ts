import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Queue } from 'bullmq';
import { RelayError } from '../../errors/index.js';
import type { WebhookEvent, WebhookRegistry } from '../../webhooks/index.js';

/** What the webhook routes need. */
export interface WebhookDeps {
  hooks: WebhookRegistry;
  queue: Pick<Queue<WebhookEvent>, 'getFailed' | 'getCompleted'>;
}

const Body = Type.Object(
  { url: Type.String({ minLength: 8, maxLength: 2048 }) },
  { additionalProperties: false, examples: [{ url: 'https://example.com/relay-events' }] },
);

/** The app's callback URL (PUT/GET/DELETE /v1/webhook), with its recent and failed deliveries. */
export function webhookRoutes(deps: WebhookDeps): FastifyPluginAsync {
  return async (app) => {
    const r = app.withTypeProvider<TypeBoxTypeProvider>();
    r.put('/webhook', { schema: { body: Body } }, async (req) => {
      await deps.hooks.set(req.app.sdkAppId, req.body.url);
      return { code: 0, message: 'ok', url: req.body.url };
    });
    r.get('/webhook', async (req) => {
      const url = await deps.hooks.get(req.app.sdkAppId);
      const mine = (jobs: { data: WebhookEvent }[]) => jobs.filter((j) => j?.data?.sdkAppId === req.app.sdkAppId);
      const failed = mine(await deps.queue.getFailed(0, 500)) as unknown as {
        id?: string;
        data: WebhookEvent;
        attemptsMade: number;
        failedReason: string;
        finishedOn?: number;
      }[];
      // an event of an app without a callback URL completes as skipped: it was not delivered
      const delivered = (
        mine(await deps.queue.getCompleted(0, 500)) as unknown as {
          data: WebhookEvent;
          attemptsMade: number;
          finishedOn?: number;
          returnvalue?: { skipped?: boolean };
        }[]
      ).filter((j) => !j.returnvalue?.skipped);
      return {
        code: 0,
        message: 'ok',
        url,
        failed: failed.map((j) => ({
          eventId: j.data.eventId,
          type: j.data.type,
          channelId: j.data.channelId,
          attempts: j.attemptsMade,
          error: j.failedReason,
          at: j.finishedOn ?? null,
        })),
        delivered: delivered.slice(0, 50).map((j) => ({
          eventId: j.data.eventId,
          type: j.data.type,
          channelId: j.data.channelId,
          attempts: j.attemptsMade,
          at: j.finishedOn ?? null,
        })),
      };
    });
    r.delete('/webhook', async (req) => {
      if (!(await deps.hooks.remove(req.app.sdkAppId)))
        throw new RelayError(50002, 'no callback URL set', { status: 404 });
      return { code: 0, message: 'ok' };
    });
  };
}
