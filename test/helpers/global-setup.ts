import { ensureFixtures } from '../../fixtures/make.js';
import { redisAnswers } from '../../src/relay/redis.js';

/** Makes the fixtures once for the whole run and checks Redis is there (the integration tests need it). */
export default async function setup(): Promise<void> {
  await ensureFixtures();
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  if (!(await redisAnswers(url))) throw new Error(`the tests need Redis at ${url}: start it with \`redis-server --daemonize yes --port 6379 --save "" --appendonly no\``);
}
