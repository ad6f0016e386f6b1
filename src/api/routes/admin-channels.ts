import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { PushService } from '../../channels/service.js';
import type { ChannelStore } from '../../channels/store.js';
import { CHANNEL_STATES, type Channel } from '../../channels/types.js';
import { publicChannel } from '../../channels/view.js';
import { StopBody } from '../schemas.js';

/** What the operators' channel routes need. */
export interface AdminChannelDeps {
  store: Pick<ChannelStore, 'getMany' | 'activeIds' | 'retainedIds'>;
  push: Pick<PushService, 'stop'>;
}

/** Every channel that holds resources (starting, live, stopping, or interrupted and retained), of one app or account. */
export async function tenantChannels(
  store: AdminChannelDeps['store'],
  of: { sdkAppId?: string; accountId?: string },
): Promise<Channel[]> {
  const ids = [...new Set([...(await store.activeIds()), ...(await store.retainedIds())])];
  return (await store.getMany(ids)).filter(
    (ch) =>
      (of.sdkAppId === undefined || ch.sdkAppId === of.sdkAppId) &&
      (of.accountId === undefined || ch.accountId === of.accountId),
  );
}

const ChannelQuery = Type.Object(
  {
    sdkAppId: Type.Optional(Type.String({ pattern: '^[0-9]{1,20}$' })),
    accountId: Type.Optional(Type.String({ maxLength: 40 })),
    state: Type.Optional(Type.Union(CHANNEL_STATES.map((s) => Type.Literal(s)))),
  },
  { additionalProperties: false },
);

/**
 * Operators' channel routes (inside the admin API, behind its credential): `GET /channels` lists the channels that
 * hold resources, of every tenant or of one app or account; `POST /channels/stop` stops any tenant's channels, with the
 * answers of `POST /v1/push/stop`.
 */
export function adminChannelRoutes(app: FastifyInstance, deps: AdminChannelDeps): void {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  r.get('/channels', { schema: { querystring: ChannelQuery } }, async (req) => {
    const { sdkAppId, accountId, state } = req.query;
    const channels = (
      await tenantChannels(deps.store, { ...(sdkAppId ? { sdkAppId } : {}), ...(accountId ? { accountId } : {}) })
    )
      .filter((ch) => state === undefined || ch.state === state)
      .sort((a, b) => a.createdAt - b.createdAt)
      .map((ch) => ({ sdkAppId: ch.sdkAppId, accountId: ch.accountId, ...publicChannel(ch) }));
    return { code: 0, message: 'ok', channels };
  });
  r.post('/channels/stop', { schema: { body: StopBody } }, async (req) => ({
    code: 0,
    message: 'ok',
    results: await deps.push.stop(null, req.body.channelIds),
  }));
}
