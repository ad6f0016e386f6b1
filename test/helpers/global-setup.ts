import { ensureFixtures } from '../../fixtures/make.js';
import { redisAnswers } from '../../src/redis/index.js';
import { ffmpegsMentioning, sleep } from './stack.js';

/** Makes the fixtures once for the whole run and checks Redis is there (the integration tests need it). */
export default async function setup(): Promise<() => Promise<void>> {
  await ensureFixtures();
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  if (!(await redisAnswers(url))) throw new Error(`the tests need Redis at ${url}: start it with \`redis-server --daemonize yes --port 6379 --save "" --appendonly no\``);
  // After the suite: no ffmpeg of the relay (all of them report -progress on pipe:1) may remain.
  return async () => {
    let left: number[] = [];
    for (let i = 0; i < 30; i++) {
      left = ffmpegsMentioning('pipe:1');
      if (left.length === 0) return;
      await sleep(100);
    }
    throw new Error(`ffmpeg processes left behind by the tests: ${left.join(', ')}`);
  };
}
