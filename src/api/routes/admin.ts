import crypto from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { RelayError } from '../../errors/index.js';
import { authorizationFor } from '../../auth/index.js';
import type { App, AppRegistry } from '../../tenants/apps.js';
import { ACCOUNT_ID_PATTERN, type Account, type AccountRegistry } from '../../tenants/accounts.js';
import type { Redis } from 'ioredis';
import type { Keys } from '../../redis/index.js';
import { liveWorkers } from '../../queue/heartbeat.js';
import { guardAdmin, type CredentialThrottle } from '../../auth/throttle.js';
import type { FastifyInstance } from 'fastify';
import { adminChannelRoutes, tenantChannels, type AdminChannelDeps } from './admin-channels.js';
import type { StoragePolicy } from '../../records/storage.js';

/** What the admin API needs. */
export interface AdminDeps {
  adminToken: string | null;
  redis: Redis;
  keys: Keys;
  accounts: AccountRegistry;
  apps: Pick<AppRegistry, 'create' | 'get' | 'list' | 'remove'>;
  /** Channels of every tenant (list, stop); absent where the admin API is tested alone. */
  channels?: AdminChannelDeps;
  /** Recording storage in use per account; absent where the admin API is tested alone. */
  storage?: Pick<StoragePolicy, 'usageBytes'>;
}

const State = Type.Union([Type.Literal('active'), Type.Literal('not-enabled'), Type.Literal('arrears')]);
const StorageQuota = Type.Union([Type.Integer({ minimum: 0, maximum: 1_000_000_000 }), Type.Null()], {
  description:
    "Storage of all the account's apps (recordings and watermark images), in MiB; null = unlimited (default). At " +
    'or over it, starts with record are refused with 20102 and running recordings stop (the channel stays live); ' +
    'a watermark upload that would pass it is refused with 20102.',
});
const AccountBody = Type.Object(
  {
    accountId: Type.String({ pattern: ACCOUNT_ID_PATTERN.source }),
    name: Type.Optional(Type.String({ maxLength: 100 })),
    channelLimit: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
    storageQuotaMB: Type.Optional(StorageQuota),
    state: Type.Optional(State),
  },
  { additionalProperties: false },
);
const AccountPatch = Type.Object(
  {
    name: Type.Optional(Type.String({ maxLength: 100 })),
    channelLimit: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
    storageQuotaMB: Type.Optional(StorageQuota),
    state: Type.Optional(State),
  },
  { additionalProperties: false, minProperties: 1 },
);
const AppBody = Type.Object(
  {
    accountId: Type.String({ pattern: ACCOUNT_ID_PATTERN.source }),
    name: Type.Optional(Type.String({ maxLength: 100 })),
    sdkAppId: Type.Optional(Type.String({ pattern: '^[0-9]{1,20}$' })),
  },
  { additionalProperties: false },
);
const IdParams = Type.Object({ id: Type.String({ maxLength: 40 }) });
const DeleteAppQuery = Type.Object(
  { stopChannels: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')])) },
  { additionalProperties: false },
);

/**
 * Operators' API under /admin/v1: accounts (limit, state) and their apps, behind `Authorization: Bearer
 * <RELAY_ADMIN_TOKEN>`; failed tokens are throttled per client address (`throttle`: 1001 with HTTP 429).
 */
export function adminRoutes(deps: AdminDeps, throttle: CredentialThrottle): FastifyPluginAsync {
  return async (app) => {
    const r = app.withTypeProvider<TypeBoxTypeProvider>();
    r.addHook('onRequest', async (req) => {
      if (!deps.adminToken)
        throw new RelayError(1001, 'the admin API is disabled', {
          status: 403,
          hint: 'set RELAY_ADMIN_TOKEN on the API process',
        });
      const refused = new RelayError(1001, 'admin credential missing or wrong', {
        hint: 'send Authorization: Bearer <RELAY_ADMIN_TOKEN>',
      });
      await guardAdmin(throttle, req.ip, req.headers.authorization, deps.adminToken, refused);
    });

    /**
     * An account with its channels in use, its storage in use (recordings and watermark images, bytes; null where not
     * measured) and its apps (`apps`: every app, read once by the caller).
     */
    const withUsage = async (acc: Account, apps: readonly App[]) => ({
      ...acc,
      storageQuotaMB: acc.storageQuotaMB ?? null,
      channelsInUse: await deps.accounts.usage(acc.accountId),
      storageUsedBytes: deps.storage ? await deps.storage.usageBytes(acc.accountId) : null,
      apps: apps.filter((a) => a.accountId === acc.accountId).map((a) => ({ sdkAppId: a.sdkAppId, name: a.name })),
    });
    const accountOrThrow = async (id: string) => {
      const acc = await deps.accounts.get(id);
      if (!acc) throw new RelayError(1002, `no account ${id}`, { status: 404 });
      return acc;
    };

    r.get('/accounts', async () => {
      const [accounts, apps] = await Promise.all([deps.accounts.list(), deps.apps.list()]);
      return { code: 0, message: 'ok', accounts: await Promise.all(accounts.map((a) => withUsage(a, apps))) };
    });
    r.get('/accounts/:id', { schema: { params: IdParams } }, async (req) => ({
      code: 0,
      message: 'ok',
      account: await withUsage(await accountOrThrow(req.params.id), await deps.apps.list()),
    }));
    r.post('/accounts', { schema: { body: AccountBody } }, async (req, reply) => {
      // the write decides: of concurrent creates of one id, only the one whose write happened answers 201
      const acc = await deps.accounts.create(req.body);
      if (!acc)
        throw new RelayError(50002, `account ${req.body.accountId} exists`, {
          status: 409,
          hint: `change it with PATCH /admin/v1/accounts/${req.body.accountId}, or choose another accountId`,
        });
      void reply.status(201);
      return { code: 0, message: 'ok', account: acc };
    });
    r.patch('/accounts/:id', { schema: { params: IdParams, body: AccountPatch } }, async (req) => ({
      code: 0,
      message: 'ok',
      account: await deps.accounts.update(req.params.id, req.body),
    }));

    r.get('/workers', async () => ({ code: 0, message: 'ok', workers: await liveWorkers(deps.redis, deps.keys) }));
    r.get('/apps', async () => ({
      code: 0,
      message: 'ok',
      apps: (await deps.apps.list()).map(({ sdkAppId, name, accountId }) => ({ sdkAppId, name, accountId })),
    }));
    r.post('/apps', { schema: { body: AppBody } }, async (req, reply) => {
      if (!(await deps.accounts.get(req.body.accountId)))
        throw new RelayError(1002, `no account ${req.body.accountId}`, { status: 404 });
      const sdkAppId = req.body.sdkAppId ?? String(1400000000 + crypto.randomInt(1, 99_999_999));
      const created = await deps.apps.create(sdkAppId, req.body.name ?? sdkAppId, undefined, req.body.accountId);
      if (!created)
        throw new RelayError(50002, `app ${sdkAppId} exists`, {
          status: 409,
          hint: 'choose another sdkAppId, or leave it out to have one made',
        });
      void reply.status(201);
      // the only time the secret key is shown
      return { code: 0, message: 'ok', app: created, authorization: authorizationFor(created) };
    });
    // An app with channels is not deleted under them (they would run on, counted against the account, with nobody
    // able to stop them): the operator stops them first, or asks for it with ?stopChannels=true.
    r.delete('/apps/:id', { schema: { params: IdParams, querystring: DeleteAppQuery } }, async (req, reply) => {
      if (!(await deps.apps.get(req.params.id))) throw new RelayError(1002, `no app ${req.params.id}`, { status: 404 });
      const held = deps.channels ? await tenantChannels(deps.channels.store, { sdkAppId: req.params.id }) : [];
      if (held.length && req.query.stopChannels !== 'true') {
        const channelIds = held.map((ch) => ch.channelId);
        throw new RelayError(50002, `app ${req.params.id} has ${held.length} channels that hold resources`, {
          status: 409,
          hint: 'stop them first (POST /admin/v1/channels/stop), or delete with ?stopChannels=true',
          details: { channelIds },
        });
      }
      const stopped = held.length
        ? await deps.channels!.push.stop(
            null,
            held.map((ch) => ch.channelId),
          )
        : [];
      await deps.apps.remove(req.params.id);
      void reply.status(200);
      return { code: 0, message: 'ok', stopped };
    });
    if (deps.channels) adminChannelRoutes(r as unknown as FastifyInstance, deps.channels);
  };
}
