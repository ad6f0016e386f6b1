import type { RelayConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import { connectRedis, Keys, redisReady } from '../redis/index.js';
import { AppRegistry } from '../tenants/apps.js';
import { RoomRegistry } from '../rooms/registry.js';
import { ChannelStore } from '../channels/store.js';
import { MessageBus } from '../channels/messages.js';
import { internalSecret, keepSecret } from '../auth/index.js';
import { CredentialThrottle } from '../auth/throttle.js';
import { BootMarker } from '../redis/boot.js';
import { mediaNodeId, thisInstance } from '../cluster/instance.js';
import { MediaNodes } from '../cluster/nodes.js';
import { listeningCheck, probeHost, readiness, redisCheck } from '../health/index.js';
import { MediaServer } from '../media-server/index.js';
import type { Part } from './index.js';

/** Starts a media node (node-media-server + HLS files) and announces it, with its addresses and load, to the cluster. */
export async function startMedia(config: RelayConfig, logger: Logger): Promise<Part & { node: string }> {
  const redis = connectRedis(config.redisUrl, 'relay-media', { failFast: true });
  await redisReady(redis);
  const subscriber = connectRedis(config.redisUrl, 'relay-media-sub');
  const keys = new Keys(config.redisPrefix);
  const bus = new MessageBus(redis, subscriber, keys);
  const secret = await internalSecret(redis, keys);
  const boot = new BootMarker(redis, keys, logger);
  const node = mediaNodeId(config.rtmpPort);
  const nodes = new MediaNodes(redis, keys);
  const { rtmpPort, httpPort } = config;
  const media = await MediaServer.start({
    config,
    logger,
    node,
    aliveNodes: () => nodes.alive(),
    readiness: () =>
      readiness({
        redis: redisCheck(redis),
        rtmp: listeningCheck(probeHost(config.bind), config.rtmpPort, 'the RTMP listener'),
      }),
    bus,
    channels: new ChannelStore(redis, keys),
    rooms: new RoomRegistry(redis, keys),
    apps: new AppRegistry(redis, keys),
    secret,
    boot,
    throttle: new CredentialThrottle({ redis, prefix: config.redisPrefix }),
    cluster: {
      self: node,
      nodes,
      fallback: {
        internal: { host: config.mediaInternalHost, rtmpPort, httpPort },
        public: { host: config.publicHost, rtmpPort, httpPort },
      },
    },
  });
  boot
    .onLoss('the internal secret', keepSecret(redis, keys, secret, logger))
    .onLoss('the ingest members', () => media.reregisterMembers());
  await boot.start();
  const { nodeHost, nodePublicHost, nodeMaxChannels } = config.cluster;
  await nodes.beat(node, thisInstance('media'), () => ({
    ...(nodeHost ? { internalHost: nodeHost } : {}),
    ...(nodePublicHost ? { publicHost: nodePublicHost } : {}),
    rtmpPort,
    httpPort,
    maxChannels: nodeMaxChannels,
    load: media.load(),
  }));
  return {
    node,
    async close() {
      boot.close();
      await nodes.stop(node);
      await media.close();
      await bus.close();
      redis.disconnect();
      subscriber.disconnect();
    },
  };
}
