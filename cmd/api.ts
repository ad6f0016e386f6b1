/**
 * Entry point of the control-plane API process (`npm run api`). With RELAY_DEV_APP_SECRET set it also registers the
 * development app (sdkAppId 1400000001) with that secret key.
 */
import { DEV_SDK_APP_ID } from '../src/tenants/apps.js';
import { startApi } from '../src/wiring/index.js';
import { announceFfmpeg, configOrExit, entryLogger, exitOnHelp, onShutdown, requireRedis } from './common.js';

exitOnHelp('api');
const config = configOrExit();
const logger = entryLogger(config, 'api');
await requireRedis(config);
await announceFfmpeg(config, logger);
const api = await startApi(config, logger);
const devSecret = process.env.RELAY_DEV_APP_SECRET;
if (devSecret) {
  const devApp = () => api.apps.ensure(DEV_SDK_APP_ID, 'development', devSecret);
  await devApp();
  api.boot.onLoss('the development app', devApp); // configured here: it comes back after Redis lost its data
}
console.log(`API READY ${api.url}`);
onShutdown(logger, () => api.close(), config);
