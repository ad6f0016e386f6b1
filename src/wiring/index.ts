import type { AddressInfo } from 'node:net';
import type { Redis } from 'ioredis';
import type { Queue } from 'bullmq';
import type { RelayConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import { connectRedis, Keys, PATIENT, redisReady } from '../redis/index.js';
import { AppRegistry } from '../tenants/apps.js';
import { RoomRegistry } from '../rooms/registry.js';
import { ChannelStore } from '../channels/store.js';
import { ChannelWaiter } from '../channels/waiter.js';
import { MixService } from '../channels/mix.js';
import { PushService, redisStartRateLimit } from '../channels/service.js';
import { ChannelLifecycle } from '../channels/lifecycle.js';
import { AutoResume } from '../channels/auto-resume.js';
import { MessageBus } from '../channels/messages.js';
import { pushQueue, type PushJobData, type PushJobResult } from '../queue/index.js';
import { liveWorkers } from '../queue/heartbeat.js';
import { internalSecret, keepSecret } from '../auth/index.js';
import { CredentialThrottle } from '../auth/throttle.js';
import { BootMarker } from '../redis/boot.js';
import { redisLock } from '../redis/lock.js';
import { buildApi } from '../api/app.js';
import { addBootMetric, controlPlaneMetrics } from '../api/metrics.js';
import {
  startWebhookDelivery,
  WebhookOutbox,
  webhookQueue,
  WebhookRegistry,
  type WebhookEvent,
} from '../webhooks/index.js';
import { AccountRegistry, DEFAULT_ACCOUNT_ID } from '../tenants/accounts.js';
import { WatermarkRegistry } from '../watermarks/registry.js';
import { RecordStore } from '../records/index.js';
import { StoragePolicy } from '../records/storage.js';
import { liveMediaNodes, MediaNodes } from '../cluster/nodes.js';
import { Placement } from '../cluster/placement.js';
import { ffmpegCheck, readiness, redisCheck, serveHealth, someAlive } from '../health/index.js';
import { PushWorker } from '../worker/index.js';
import { PushTargetControl } from '../targets/control.js';
import { probeFfmpeg } from '../media/ffmpeg/capabilities.js';

/** A running part of the relay. */
export interface Part {
  close(): Promise<void>;
}

/**
 * The message bus and the one owner of channel state of a process that changes channels (API, worker). With a push
 * queue the lifecycle can resume channels (the control plane); without one it cannot (workers).
 */
function channelPlane(
  config: RelayConfig,
  redis: Redis,
  subscriber: Redis,
  keys: Keys,
  store: ChannelStore,
  hooksQueue: Queue<WebhookEvent>,
  logger: Logger,
  queue?: Queue<PushJobData, PushJobResult>,
): { bus: MessageBus; lifecycle: ChannelLifecycle } {
  const bus = new MessageBus(redis, subscriber, keys);
  const lifecycle = new ChannelLifecycle({
    records: store,
    bus,
    sink: new WebhookOutbox(hooksQueue),
    layout: config,
    retentionMs: config.retentionMs,
    maxPerRoom: config.maxChannelsPerRoom,
    ...(queue ? { queue } : {}),
    logger,
  });
  return { bus, lifecycle };
}

/** Free-space admission and account storage quotas over the data folders (README "Security": disk policy). */
function storagePolicy(config: RelayConfig, apps: AppRegistry, accounts: AccountRegistry): StoragePolicy {
  return new StoragePolicy({
    ...config,
    appsOf: async (accountId) => (await apps.list()).filter((a) => a.accountId === accountId).map((a) => a.sdkAppId),
    account: (accountId) => accounts.get(accountId),
  });
}

/** Starts the control-plane API; resolves with its base URL. */
export async function startApi(
  config: RelayConfig,
  logger: Logger,
): Promise<Part & { url: string; apps: AppRegistry; boot: BootMarker }> {
  const redis = connectRedis(config.redisUrl, 'relay-api', { failFast: true });
  await redisReady(redis);
  const subscriber = connectRedis(config.redisUrl, 'relay-api-sub');
  const keys = new Keys(config.redisPrefix);
  const hooksQueue = webhookQueue(redis.duplicate({ connectionName: 'relay-api-webhooks' }), config);
  const store = new ChannelStore(redis, keys);
  const rooms = new RoomRegistry(redis, keys);
  const apps = new AppRegistry(redis, keys);
  const hooks = new WebhookRegistry(redis, keys, config.egress);
  const delivery = startWebhookDelivery(
    redis.duplicate({ connectionName: 'relay-api-webhook-delivery', ...PATIENT }),
    config.redisPrefix,
    apps,
    hooks,
    logger,
  );
  const queue = pushQueue(redis.duplicate({ connectionName: 'relay-api-queue' }), config.redisPrefix);
  const records = new RecordStore(redis, keys, config.recordsDir);
  const accounts = new AccountRegistry(redis, keys);
  const storage = storagePolicy(config, apps, accounts);
  const watermarks = new WatermarkRegistry(redis, keys, config.watermarksDir, {
    maxPerApp: config.maxWatermarksPerApp,
    storage,
  });
  const defaultAccount = () => accounts.ensure({ accountId: DEFAULT_ACCOUNT_ID, name: 'default' });
  await defaultAccount();
  const boot = new BootMarker(redis, keys, logger).onLoss('the default account', defaultAccount);
  await boot.start();
  const { bus, lifecycle } = channelPlane(config, redis, subscriber, keys, store, hooksQueue, logger, queue);
  const waiter = new ChannelWaiter(bus, store);
  const ffmpeg = () => probeFfmpeg(config.ffmpegPath);
  const pushDeps = {
    config,
    ffmpeg,
    store,
    lifecycle,
    bus,
    rooms,
    queue,
    waiter,
    accounts,
    watermarks,
    records,
    storage,
    logger,
    rateLimit: redisStartRateLimit(redis, keys),
    workers: () => liveWorkers(redis, keys),
    placement: new Placement(redis, keys, new MediaNodes(redis, keys), config.cluster.nodeMaxChannels),
  };
  const push = new PushService(pushDeps);
  const targets = new PushTargetControl({ store, redis, keys, lifecycle, bus, egress: config.egress, ffmpeg });
  const metrics = controlPlaneMetrics(store, redis, keys, queue);
  addBootMetric(metrics, () => boot.status());
  const api = buildApi({
    config,
    apps,
    push,
    targets,
    mix: new MixService(pushDeps, push, { run: redisLock(redis), key: (id) => keys.mixLock(id) }),
    store,
    rooms,
    watermarks,
    records,
    metrics,
    webhooks: { hooks, queue: hooksQueue },
    dashboardQueues: [queue, hooksQueue],
    boot,
    admin: { adminToken: config.adminToken, accounts, apps, redis, keys, channels: { store, push }, storage },
    throttle: new CredentialThrottle({ redis, prefix: config.redisPrefix }),
    ffmpeg,
    readiness: () =>
      readiness({
        redis: redisCheck(redis),
        media: someAlive('media node', liveMediaNodes(redis, keys)),
        workers: someAlive('worker', async () => (await liveWorkers(redis, keys)).length),
      }),
    logger,
  });
  await api.listen({ port: config.apiPort, host: config.bind });
  const stopRecycler = lifecycle.startRecycler();
  const autoResume = new AutoResume({ bus, redis, keys, store, lifecycle, logger });
  await autoResume.start();
  const port = (api.server.address() as AddressInfo).port;
  const url = `http://${config.publicHost}:${port}`;
  logger.info({ url }, 'api listening');
  return {
    url,
    apps,
    boot,
    async close() {
      boot.close();
      stopRecycler();
      await autoResume.close();
      await api.close();
      await waiter.close();
      await queue.close();
      await delivery.close();
      await hooksQueue.close();
      redis.disconnect();
      subscriber.disconnect();
    },
  };
}

/** Starts a worker taking push jobs; on close it hands its channels over (`handover`) or ends them (`stop`). */
export async function startWorker(
  config: RelayConfig,
  logger: Logger,
  onClose: 'handover' | 'stop' = 'handover',
): Promise<Part & { worker: PushWorker }> {
  const redis = connectRedis(config.redisUrl, 'relay-worker');
  const subscriber = connectRedis(config.redisUrl, 'relay-worker-sub');
  const keys = new Keys(config.redisPrefix);
  const hooksQueue = webhookQueue(redis.duplicate({ connectionName: 'relay-worker-webhooks' }), config);
  const store = new ChannelStore(redis, keys);
  // A worker never resumes channels (the control plane does): its lifecycle has no push queue.
  const { bus, lifecycle } = channelPlane(config, redis, subscriber, keys, store, hooksQueue, logger);
  const secret = await internalSecret(redis, keys);
  const nodes = new MediaNodes(redis, keys);
  const boot = new BootMarker(redis, keys, logger).onLoss(
    'the internal secret',
    keepSecret(redis, keys, secret, logger),
  );
  await boot.start();
  const worker = new PushWorker({
    config,
    redis,
    store,
    lifecycle,
    rooms: new RoomRegistry(redis, keys),
    bus,
    secret,
    storage: storagePolicy(config, new AppRegistry(redis, keys), new AccountRegistry(redis, keys)),
    cluster: { nodes, placement: new Placement(redis, keys, nodes, config.cluster.nodeMaxChannels) },
    logger,
  });
  await worker.start();
  // a worker has no other HTTP port: /livez and /readyz on RELAY_WORKER_HEALTH_PORT when set
  const health = config.workerHealthPort
    ? await serveHealth(config.workerHealthPort, config.bind, () =>
        readiness({
          redis: redisCheck(redis),
          ffmpeg: ffmpegCheck(config.ffmpegPath),
          media: someAlive('media node', liveMediaNodes(redis, keys)),
        }),
      )
    : null;
  return {
    worker,
    async close() {
      boot.close();
      await health?.close();
      await worker.close(onClose);
      await bus.close();
      await hooksQueue.close();
      redis.disconnect();
      subscriber.disconnect();
    },
  };
}

export { startMedia } from './media.js';
