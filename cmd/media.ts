/** Entry point of the media server process (`npm run media`): RTMP ingest and output, HTTP-FLV, WS-FLV, HLS files. */
import { startMedia, type Part } from '../src/wiring/index.js';
import { announceFfmpeg, configOrExit, entryLogger, exitOnHelp, onShutdown, requireRedis } from './common.js';

exitOnHelp('media');
const config = configOrExit();
const logger = entryLogger(config, 'media');
// watched from the start: a node started by `npm run relay` ends with it even when the relay dies before it is ready
let media: Part | null = null;
onShutdown(logger, async () => media?.close(), config);
await requireRedis(config);
await announceFfmpeg(config, logger);
media = await startMedia(config, logger);
console.log(`MEDIA READY rtmp=${config.rtmpPort} http=${config.httpPort}`);
