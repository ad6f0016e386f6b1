import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { Registry } from 'prom-client';
import type { Queue } from 'bullmq';
import { dashboard } from './dashboard.js';
import { metricsRefusal } from '../auth/index.js';
import { claimedApp, CredentialThrottle, guardAdmin } from '../auth/throttle.js';
import { isRedisUnavailable } from '../redis/index.js';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { readyzAnswer, type Readiness } from '../health/index.js';
import type { Logger } from '../log.js';
import { ERRORS, RelayError } from '../errors/index.js';
import type { App, AppRegistry } from '../tenants/apps.js';
import { genericValidationError, startValidationError, type ValidationIssue } from './validation.js';
import { targetRoutes } from './routes/targets.js';
import type { PushTargetControl } from '../targets/control.js';
import { pushRoutes } from './routes/push.js';
import { mixRoutes } from './routes/mix.js';
import { roomRoutes } from './routes/rooms.js';
import { mediaAssetRoutes } from './routes/media-assets.js';
import { adminRoutes, type AdminDeps } from './routes/admin.js';
import { webhookRoutes, type WebhookDeps } from './routes/webhook.js';
import type { WatermarkRegistry } from '../watermarks/registry.js';
import type { RecordStore } from '../records/index.js';
import type { PushService } from '../channels/service.js';
import type { MixService } from '../channels/mix.js';
import type { ChannelStore } from '../channels/store.js';
import type { RoomRegistry } from '../rooms/registry.js';
import type { RelayConfig } from '../config/index.js';
import type { BootMarker } from '../redis/boot.js';
import type { FfmpegInfo } from '../media/ffmpeg/capabilities.js';

/** Everything the HTTP API needs; built by the entry point, faked or real in tests. */
export interface ApiDeps {
  config: RelayConfig;
  apps: Pick<AppRegistry, 'authenticate'>;
  push: Pick<PushService, 'start' | 'stop'>;
  /** Mixes of a room's members; absent: no /v1/mix routes. */
  mix?: Pick<MixService, 'start' | 'updateLayout'>;
  store: Pick<ChannelStore, 'get' | 'activeIds'>;
  rooms: Pick<RoomRegistry, 'list' | 'get' | 'register' | 'remove' | 'rooms'>;
  watermarks: Pick<WatermarkRegistry, 'add' | 'get' | 'list' | 'remove'>;
  records: Pick<RecordStore, 'get' | 'files' | 'filePath'>;
  /** The app's callback URL and its deliveries; absent in tests of the control-plane API alone. */
  webhooks?: WebhookDeps;
  /** Prometheus registry served at /metrics; absent in tests of the control-plane API alone. */
  metrics?: Registry;
  /** Queues shown by the job dashboard at /admin/queues; absent in tests of the control-plane API alone. */
  dashboardQueues?: Queue[];
  /** The admin API (accounts, apps); absent in tests of the control-plane API alone. */
  admin?: AdminDeps;
  /** Whether Redis lost its data under this process (shown by /healthz); absent in tests of the API alone. */
  boot?: Pick<BootMarker, 'status'>;
  /** Push targets of running channels (issue 14); absent in tests of the control-plane API alone. */
  targets?: PushTargetControl;
  /** The relay's ffmpeg (version, capabilities): upstreams it cannot read are refused at registration (50008). */
  ffmpeg?: () => Promise<FfmpegInfo>;
  /** Failed credential attempts (apps and admin), counted in Redis for every API process; in memory when absent. */
  throttle?: CredentialThrottle;
  /** What `/readyz` checks (Redis, a live media node, a worker heartbeat); absent: ready while it runs. */
  readiness?: () => Promise<Readiness>;
  logger: Logger;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated app (set by the auth hook on /v1 routes). */
    app: App;
  }
  interface FastifyContextConfig {
    /** Which SPEC code mapping applies to schema errors of this route. */
    validation?: 'start';
    /** The Content-Type the route's body must have (named by its 415 hint); application/json when absent. */
    contentType?: string;
  }
}

/** Largest request body accepted, in bytes. */
export const BODY_LIMIT = 64 * 1024;

export type Api = FastifyInstance<
  import('node:http').Server,
  import('node:http').IncomingMessage,
  import('node:http').ServerResponse,
  Logger,
  TypeBoxTypeProvider
>;

/** Builds the control-plane HTTP API (not listening): JSON, per-app authentication, SPEC error bodies. */
export function buildApi(deps: ApiDeps): Api {
  const app = Fastify({
    loggerInstance: deps.logger,
    bodyLimit: BODY_LIMIT,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: true, allErrors: false } },
    // URLs the router refuses before any route (a parameter over maxParamLength, bad percent-encoding) answer in
    // the SPEC's shape too, without echoing the URL back.
    frameworkErrors: (err, _req, reply) => {
      const body = new RelayError(50002, `malformed request URL (${err.code})`, { hint: 'check the ids in the path' });
      void (reply as unknown as FastifyReply).code(400).send(body.toBody());
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  const throttle = deps.throttle ?? new CredentialThrottle();
  app.decorateRequest('app', null as unknown as App);
  app.setErrorHandler((err: FastifyError, req, reply) => {
    const relay = toRelayError(err, req);
    if (relay.status >= 500 && !(err instanceof RelayError)) req.log.error({ err }, 'request failed');
    if (relay.log) req.log.warn({ code: relay.code, ...relay.log }, relay.message); // the operator's figures
    const retryAfterMs = relay.details.retryAfterMs;
    if (typeof retryAfterMs === 'number') void reply.header('Retry-After', String(Math.ceil(retryAfterMs / 1000)));
    void reply.status(relay.status).send(relay.toBody());
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({
      code: 50002,
      message: `no route ${req.method} ${req.url.split('?')[0]}`,
      hint: 'see the README for the API routes',
    });
  });

  // The OpenAPI document is generated from the route schemas; /docs serves it with an interactive page.
  void app.register(swagger, {
    openapi: {
      info: {
        title: 'Bypass live relay API',
        version: '1',
        description:
          "Start and stop bypass pushes of room members' upstreams; rooms, watermarks, recordings; admin.\n\n" +
          errorTable(),
      },
      components: {
        securitySchemes: {
          app: { type: 'http', scheme: 'basic', description: 'sdkAppId:secretKey' },
          admin: { type: 'http', scheme: 'bearer', description: 'RELAY_ADMIN_TOKEN' },
        },
      },
      security: [{ app: [] }],
    },
  });
  void app.register(swaggerUi, { routePrefix: '/docs' });

  // in a plugin: registered once swagger's route hook is in place, so the OpenAPI document lists them
  void app.register(async (root) => {
    const health = { tags: ['health'], security: [] };
    root.get(
      '/livez',
      { schema: { ...health, summary: 'Liveness: 200 while the process runs (restart it when this fails)' } },
      async () => ({ code: 0, live: true }),
    );
    root.get(
      '/readyz',
      {
        schema: {
          ...health,
          summary: 'Readiness: 200 when Redis, a media node and a worker answer; 503 naming what does not',
        },
      },
      async (_req, reply) => {
        const a = readyzAnswer(await deps.readiness?.());
        return reply.code(a.status).send(a.body);
      },
    );
    root.get(
      '/healthz',
      { schema: { ...health, summary: 'Kept for older probes: 200 and Redis data-loss figures' } },
      async () => ({ code: 0, ok: true, ...(deps.boot ? { redis: deps.boot.status() } : {}) }),
    );
  });
  const metrics = deps.metrics;
  if (metrics) {
    app.get('/metrics', { schema: { hide: true } }, async (req, reply) => {
      // it lists every tenant's channel ids: operators only
      const token = deps.config.adminToken;
      const { message, hint } = metricsRefusal(token);
      await guardAdmin(throttle, req.ip, req.headers.authorization, token, new RelayError(1001, message, { hint }));
      return reply.header('Content-Type', metrics.contentType).send(await metrics.metrics());
    });
  }
  void app.register(
    async (v1) => {
      v1.addHook('onRequest', async (req) => {
        const header = req.headers.authorization;
        const who = { address: req.ip, sdkAppId: claimedApp(header) };
        req.app = await throttle.guard(who, header, () => deps.apps.authenticate(header));
      });
      await v1.register(pushRoutes(deps));
      if (deps.targets) await v1.register(targetRoutes(deps.targets));
      await v1.register(mixRoutes(deps));
      await v1.register(roomRoutes(deps));
      await v1.register(mediaAssetRoutes(deps));
      if (deps.webhooks) await v1.register(webhookRoutes(deps.webhooks));
    },
    { prefix: '/v1' },
  );
  if (deps.admin) void app.register(adminRoutes(deps.admin, throttle), { prefix: '/admin/v1' });
  if (deps.dashboardQueues)
    void app.register(dashboard(deps.dashboardQueues, deps.admin?.adminToken ?? null, throttle));
  return app;
}

/** The error codes as a Markdown table for the OpenAPI description: every refusal is `{code, message, hint}`. */
export function errorTable(): string {
  const rows = Object.entries(ERRORS).map(([code, e]) => `| ${code} | ${e.status} | ${e.message} | ${e.hint} |`);
  return [
    'Every refusal is `{code, message, hint}`:',
    '',
    '| code | HTTP | meaning | hint |',
    '|---|---|---|---|',
    ...rows,
  ].join('\n');
}

/** A body limit for messages: "1 MiB (1048576 bytes)", "64 KiB (65536 bytes)". */
function sizeOf(bytes: number): string {
  const unit = bytes % (1024 * 1024) === 0 ? ['MiB', 1024 * 1024] : bytes % 1024 === 0 ? ['KiB', 1024] : null;
  return unit ? `${bytes / (unit[1] as number)} ${unit[0]} (${bytes} bytes)` : `${bytes} bytes`;
}

// Every failure leaves as {code, message, hint}: SPEC codes for ours, the closest SPEC code for fastify's own.
function toRelayError(err: FastifyError, req: FastifyRequest): RelayError {
  if (err instanceof RelayError) return err;
  if (err.validation) {
    const issue = err.validation[0] as ValidationIssue | undefined;
    if (err.validationContext === 'body' && req.routeOptions.config.validation === 'start')
      return startValidationError(issue, req.body);
    return genericValidationError(issue, req.body, err.validationContext === 'body');
  }
  switch (err.code) {
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new RelayError(40000001);
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new RelayError(50002, 'request body is not valid JSON');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new RelayError(50002, `request body larger than ${sizeOf(req.routeOptions.bodyLimit ?? BODY_LIMIT)}`, {
        status: 413,
        hint: 'send a smaller body',
      });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new RelayError(50002, 'unsupported Content-Type', {
        status: 415,
        hint: `send Content-Type: ${req.routeOptions.config.contentType ?? 'application/json'}`,
      });
    case 'FST_STATIC_FORBIDDEN_PATH': // a dot segment under /docs/static: nothing is there
      return new RelayError(50002, 'not found', { status: 404, hint: 'the API description is at /docs' });
    default:
      break;
  }
  if (err instanceof SyntaxError || err.statusCode === 400) return new RelayError(50002, err.message);
  if (err.statusCode !== undefined && err.statusCode > 400 && err.statusCode < 500)
    return new RelayError(50002, err.message, { status: err.statusCode });
  if (isRedisUnavailable(err)) return new RelayError(50006, 'back end timed out: the state store is unreachable');
  return new RelayError(50006, 'internal error', { status: 500, hint: 'retry; if it persists, check the relay logs' });
}
