/** Entry point of a worker process (`npm run worker`): takes push jobs and runs one ffmpeg per channel. */
import { startWorker } from '../src/wiring/index.js';
import { announceFfmpeg, configOrExit, entryLogger, exitOnHelp, onShutdown, requireRedis } from './common.js';

exitOnHelp('worker');
const config = configOrExit();
const logger = entryLogger(config, 'worker');
await requireRedis(config);
await announceFfmpeg(config, logger);
const part = await startWorker(config, logger);
console.log(`WORKER READY ${part.worker.id}`);
onShutdown(logger, () => part.close(), config);
