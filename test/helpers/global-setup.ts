import crypto from 'node:crypto';
import { ensureFixtures } from '../../fixtures/make.js';
import { redisAnswers } from '../../src/redis/index.js';
import { ffmpegsOfRun, sleep, TEST_RUN_ENV } from './stack.js';

/**
 * Makes the fixtures once for the whole run, checks Redis is there (the integration tests need it) and marks the run:
 * `RELAY_TEST_RUN=<random id>` in the environment, which the test workers, the relay processes they start and every
 * ffmpeg of those inherit, so the teardown finds this run's ffmpegs and no other checkout's or test run's.
 */
export default async function setup(): Promise<() => Promise<void>> {
  const runId = crypto.randomBytes(8).toString('hex');
  process.env[TEST_RUN_ENV] = runId;
  await ensureFixtures();
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  if (!(await redisAnswers(url)))
    throw new Error(
      `the tests need Redis at ${url}: start it with \`redis-server --daemonize yes --port 6379 --save "" --appendonly no\``,
    );
  // After the suite: no ffmpeg of this run may remain. vitest only logs an error thrown by a global teardown ("error
  // during close") and exits 0, so a leftover sets the exit code itself.
  return async () => {
    let left: number[] = [];
    for (let i = 0; i < 30; i++) {
      left = ffmpegsOfRun(runId);
      if (left.length === 0) return;
      await sleep(100);
    }
    process.exitCode = 1;
    console.error(
      `\nFAIL: ffmpeg processes left behind by the tests (${TEST_RUN_ENV}=${runId}): pids ${left.join(', ')}\n`,
    );
  };
}
