/** Entry point of the media server process (`npm run media`): RTMP ingest and output, HTTP-FLV, WS-FLV, HLS files. */
import { startMedia } from '../src/wiring/index.js';
import { announceFfmpeg, configOrExit, entryLogger, exitOnHelp, onShutdown, requireRedis } from './common.js';

exitOnHelp('media');
const config = configOrExit();
const logger = entryLogger(config, 'media');
await requireRedis(config);
await announceFfmpeg(config, logger);
const media = await startMedia(config, logger);
console.log(`MEDIA READY rtmp=${config.rtmpPort} http=${config.httpPort}`);
onShutdown(logger, () => media.close(), config);
