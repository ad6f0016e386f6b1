import { ConfigError, loadConfig, type RelayConfig } from '../src/config/index.js';
import { createLogger, redact, type Logger } from '../src/log.js';

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

/** Runs `stop` once on SIGINT/SIGTERM, then exits; a second signal exits at once. */
export function onShutdown(logger: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (sig: NodeJS.Signals) => {
    if (stopping) process.exit(1);
    stopping = true;
    logger.info({ signal: sig }, 'shutting down');
    stop().then(
      () => process.exit(0),
      (e: Error) => {
        logger.error({ err: e.message }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
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
