import { ConfigError, loadConfig, type RelayConfig } from '../src/config/index.js';
import { createLogger, redact, type Logger } from '../src/log.js';
import { locateFfmpeg } from '../src/media/ffmpeg/locate.js';
import { killAllFfmpegs } from '../src/media/ffmpeg/process.js';
import { Shutdown } from '../src/wiring/shutdown.js';
import { probeCapabilities } from '../src/media/ffmpeg/capabilities.js';
import { startupReport } from '../src/media/ffmpeg/needs.js';
import { entryHelp, wantsHelp, type EntryName } from '../src/cli/entries.js';

/** `--help`: prints what the entry point runs and the settings it reads, and exits 0 before anything starts. */
export function exitOnHelp(name: EntryName, argv: readonly string[] = process.argv.slice(2)): void {
  if (!wantsHelp(argv)) return;
  console.log(entryHelp(name));
  process.exit(0);
}

/** Loads the configuration or exits with a message naming the bad variable. */
export function configOrExit(): RelayConfig {
  try {
    return loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      process.exit(2);
    }
    throw e;
  }
}

/**
 * Stops the process gracefully on SIGTERM, SIGINT or SIGHUP, or when its parent (an npm/npx/sh wrapper) exits
 * without passing the signal on; a second signal hurries the stop, a third exits at once (see `Shutdown`).
 */
export function onShutdown(logger: Logger, stop: () => Promise<void>, config: Pick<RelayConfig, 'shutdownGraceMs'>) {
  return new Shutdown({
    logger,
    stop,
    graceMs: config.shutdownGraceMs,
    hurry: () => {
      const killed = killAllFfmpegs();
      if (killed) logger.warn({ killed }, 'ffmpegs killed to hurry the shutdown');
    },
  }).install();
}

/** The process logger for an entry point. */
export function entryLogger(config: RelayConfig, name: string): Logger {
  return createLogger(config.logLevel, name);
}

/** Exits with a clear message when Redis does not answer at REDIS_URL. */
export async function requireRedis(config: RelayConfig): Promise<void> {
  const { redisAnswers, REDIS_HELP } = await import('../src/redis/index.js');
  if (await redisAnswers(config.redisUrl)) return;
  console.error(`Redis does not answer at REDIS_URL=${redact(config.redisUrl)}: ${REDIS_HELP}.`);
  process.exit(3);
}

/**
 * Says which ffmpeg this process runs (path, version, where it was found) and, one line each, what it lacks and what
 * that disables; probes its capabilities once (cached for the process). `toConsole`: plain lines on stdout/stderr
 * (`npm run relay`, whose log level hides info), else JSON log lines (info, and warn for each lack).
 */
export async function announceFfmpeg(config: RelayConfig, logger: Logger, toConsole = false): Promise<void> {
  const located = locateFfmpeg();
  const choice = located.path === config.ffmpegPath ? located : locateFfmpeg({ FFMPEG_PATH: config.ffmpegPath });
  const { summary, warnings } = startupReport(choice, await probeCapabilities(choice.path));
  const v = choice.version;
  logger.info(
    { ffmpeg: choice.path, version: v?.text ?? null, source: choice.source, ffprobe: choice.ffprobePath },
    summary,
  );
  if (!toConsole) {
    for (const w of warnings) logger.warn({ ffmpeg: choice.path }, w);
    return;
  }
  console.log(`ffmpeg: ${summary}`);
  for (const w of warnings) console.warn(`WARNING: ${w}`);
}
