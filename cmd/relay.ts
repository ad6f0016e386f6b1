/**
 * `npm run relay`: the whole relay in one process (media server, API, a worker) with the sample room 1001 whose
 * members publish fixtures into the built-in ingest. Prints `READY {json}` and a short guide; Ctrl-C stops it all.
 * `--help` prints its usage and settings and exits.
 */
import crypto from 'node:crypto';
import { DEV_SDK_APP_ID } from '../src/tenants/apps.js';
import { authorizationFor } from '../src/auth/index.js';
import { loadConfig } from '../src/config/index.js';
import { redact } from '../src/log.js';
import { connectRedis, Keys } from '../src/redis/index.js';
import { RoomRegistry } from '../src/rooms/registry.js';
import { PrefixClaim, PrefixTaken, thisInstance } from '../src/cluster/instance.js';
import { ingestUrlTemplate } from '../src/rooms/ingest.js';
import { findRedisServer, startPrivateRedis } from '../src/dev/redis.js';
import { REDIS_HELP, redisAnswers } from '../src/redis/index.js';
import { startApi, startMedia, startWorker, type Part } from '../src/wiring/index.js';
import { SampleRoom, sampleMembers } from '../src/dev/sample-room.js';
import { startMediaChildren } from '../src/dev/media-nodes.js';
import { ensureFixtures } from '../fixtures/make.js';
import { announceFfmpeg, configOrExit, entryLogger, exitOnHelp, onShutdown } from './common.js';

exitOnHelp('relay');
process.env.RELAY_LOG_LEVEL ??= 'warn';
// the development relay always has an admin API; its token is printed in the READY line
process.env.RELAY_ADMIN_TOKEN ||= crypto.randomBytes(18).toString('base64url');
let config = configOrExit();
const logger = entryLogger(config, 'relay');
const parts: Part[] = [];
let privateRedis: { url: string; stop(): Promise<void> } | null = null;
let sample: SampleRoom | null = null;

let worker: Part | null = null;

// The whole relay goes down: its channels end (ENDLIST, stopped) before their members and the media server go.
async function shutdown(): Promise<void> {
  await worker?.close().catch((e: Error) => logger.warn({ err: e.message }, 'worker close failed'));
  await sample?.close();
  for (const p of parts.reverse()) await p.close().catch((e: Error) => logger.warn({ err: e.message }, 'close failed'));
  await privateRedis?.stop();
}
/** The exit code of a relay refused because another all-in-one holds its Redis prefix. */
const EXIT_PREFIX_TAKEN = 4;
onShutdown(logger, shutdown, config);

try {
  if (!(await redisAnswers(config.redisUrl))) {
    const bin = findRedisServer();
    if (!bin) {
      console.error(
        `Redis does not answer at REDIS_URL=${redact(config.redisUrl)} and redis-server is not on PATH: ${REDIS_HELP}.`,
      );
      process.exit(3);
    }
    privateRedis = await startPrivateRedis(bin);
    config = loadConfig({ ...process.env, REDIS_URL: privateRedis.url });
    console.log(
      `Redis did not answer at ${redact(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')}; started a private one at ${privateRedis.url} for this run.`,
    );
  }
  // one all-in-one per prefix: a second one would clear the first's rooms and take its jobs
  const claimRedis = connectRedis(config.redisUrl, 'relay-claim');
  const claim = new PrefixClaim(claimRedis, new Keys(config.redisPrefix), thisInstance('relay'));
  await claim.acquire().catch((e: Error) => {
    if (!(e instanceof PrefixTaken)) throw e;
    console.error(`relay refused to start: ${e.message}`);
    process.exit(EXIT_PREFIX_TAKEN);
  });
  parts.push({ close: async () => void (await claim.release(), claimRedis.disconnect()) });
  await announceFfmpeg(config, logger, true);
  const fixtureDir = await ensureFixtures();
  parts.push(await startMedia(config, logger));
  // the other media nodes start while the API does (one per core by default: README "Scaling out")
  const children = startMediaChildren(config, config.cluster.mediaNodes, (line) => console.warn(`WARNING: ${line}`));
  parts.push({ close: async () => (await children).close() }); // stopped on every way out, a failed start too
  const api = await startApi(config, logger);
  parts.push(api);
  const nodes = await children;
  worker = await startWorker(config, logger, 'stop');
  const app = await api.apps.ensure(DEV_SDK_APP_ID, 'development', process.env.RELAY_DEV_APP_SECRET || undefined);
  api.boot.onLoss('the development app', () => api.apps.ensure(app.sdkAppId, app.name, app.secretKey));
  const redis = connectRedis(config.redisUrl, 'relay-sample');
  parts.push({
    close: async () => {
      redis.disconnect();
    },
  });
  const members = sampleMembers(fixtureDir);
  sample = new SampleRoom(config, app, logger);
  await sample.start(members, new RoomRegistry(redis, new Keys(config.redisPrefix)));

  const authorization = authorizationFor(app);
  const ready = {
    api: api.url,
    sdkAppId: app.sdkAppId,
    secretKey: app.secretKey, // the development app's only (npm run cli reads it as RELAY_SECRET_KEY)
    authorization,
    ingest: ingestUrlTemplate(config.publicHost, config.rtmpPort),
    upstreams: members.map(({ roomId, userId, srcType }) => ({ roomId, userId, srcType })),
    mediaNodes: [
      { rtmpPort: config.rtmpPort, httpPort: config.httpPort },
      ...nodes.nodes.map(({ rtmpPort, httpPort }) => ({ rtmpPort, httpPort })),
    ],
    adminAuthorization: `Bearer ${config.adminToken}`,
  };
  // one write: a script reading READY finds the guide in the same chunk
  process.stdout.write(`READY ${JSON.stringify(ready)}

Bypass live relay is running with ${ready.mediaNodes.length} media node(s). Sample room 1001: alice (camera), bob (camera + screen).

Start a push of alice's camera as HLS + HTTP-FLV:
  curl -s -X POST ${api.url}/v1/push/start -H 'Authorization: ${authorization}' -H 'Content-Type: application/json' \\
    -d '{"roomId":1001,"userId":"alice","srcType":0,"option":{"encode":3}}'
Watch a returned URL:   ffplay <playUrl>      (or VLC; HLS plays in any HLS player)
Measure what a viewer gets:   npm run cli -- play <playUrl> --for 30s   (fps, bit rates, A/V drift, latency, stalls)
Status:                 curl -s ${api.url}/v1/push/<channelId> -H 'Authorization: ${authorization}'
Stop:                   curl -s -X POST ${api.url}/v1/push/stop -H 'Authorization: ${authorization}' -H 'Content-Type: application/json' -d '{"channelIds":["<channelId>"]}'
Ctrl-C stops everything.
`);
} catch (e) {
  console.error(`relay failed to start: ${(e as Error).message}`);
  await shutdown();
  process.exit(1);
}
