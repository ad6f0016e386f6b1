import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findRedisServer, freePort } from '../../src/dev/redis.js';
import { redisAnswers } from '../../src/redis/index.js';
import { authorizationFor } from '../../src/auth/index.js';
import { readFlv } from '../helpers/media.js';
import { eventually, ffmpegsMentioning, fixture, sleep, startStack, type Stack } from '../helpers/stack.js';

/*
 * A private Redis without persistence restarts empty under a running relay (issue 10, item 8): every process notices
 * (boot marker), says so once, puts back what it owns, and the relay works again without a channel failing later.
 */

let stack: Stack;
let port: number;
let redis: ChildProcess | null = null;

async function startRedis(): Promise<void> {
  redis = spawn(
    findRedisServer()!,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  await eventually(() => redisAnswers(`redis://127.0.0.1:${port}`, 200), 10000);
}

async function stopRedis(): Promise<void> {
  const r = redis;
  if (!r || r.exitCode !== null) return;
  const exited = new Promise((res) => r.once('exit', res));
  r.kill('SIGTERM');
  await exited;
}

beforeAll(async () => {
  port = await freePort();
  await startRedis();
  const url = `redis://127.0.0.1:${port}`;
  stack = await startStack({ env: { REDIS_URL: url, RELAY_START_RATE_LIMIT_MS: '0' }, redisUrl: url });
  await stack.publish({ roomId: 1001, userId: 'alice', srcType: 0 }, fixture('alice-camera.mp4'));
});

afterAll(async () => {
  await stack?.close();
  await stopRedis();
});

const logged = (name: string, re: RegExp) =>
  stack.procs.filter((p) => p.name.startsWith(name)).some((p) => p.output.some((l) => re.test(l)));

describe('Redis restarted without its data', () => {
  it('each process logs it and restores what it owns; a channel started afterwards goes live on a new worker and stays live', async () => {
    const admin = (method: string, route: string, body?: unknown) =>
      stack.request(method, route, body, { authorization: stack.adminAuth });
    const other = (await admin('POST', '/admin/v1/apps', { accountId: 'default', name: 'other' })).body;
    expect(other.code).toBe(0);
    const before = await stack.request('POST', '/v1/push/start', {
      roomId: 1001,
      userId: 'alice',
      srcType: 0,
      option: { encode: 2 },
    });
    expect(before.body.code).toBe(0);
    const lost = before.body.channelId as string;
    const secret = await stack.redis.get(`${stack.prefix}:internal-secret`);
    expect(secret).toMatch(/^[0-9a-f]{64}$/);

    await stopRedis();
    await sleep(1000);
    await startRedis(); // empty: no persistence
    const t0 = Date.now();
    await eventually(
      async () => ['api', 'media', 'worker'].every((n) => logged(n, /Redis lost its data \(boot marker/)),
      20000,
    ).catch((e: Error) => {
      for (const p of stack.procs)
        console.log(
          p.name,
          p.output
            .filter((l) => /lost|boot|error/i.test(l))
            .slice(-8)
            .join('\n'),
        );
      throw e;
    });
    console.log(`every process noticed the data loss within ${Date.now() - t0} ms of the restart`);
    for (const n of ['api', 'media', 'worker'])
      expect(
        stack.procs
          .find((p) => p.name.startsWith(n))!
          .output.filter((l) => /Redis lost its data \(boot marker/.test(l)),
      ).toHaveLength(1);

    // restored: the marker, the secret every process signs with, the configured app and account, the ingest member
    await eventually(async () => (await stack.redis.get(`${stack.prefix}:internal-secret`)) === secret, 10000);
    expect(await stack.redis.get(`${stack.prefix}:boot`)).toMatch(/^boot_[0-9a-f]{16}$/);
    await eventually(async () => (await stack.request('GET', '/v1/rooms/1001')).body.code === 0, 10000);
    expect(JSON.stringify((await stack.request('GET', '/v1/rooms/1001')).body)).toMatch(/alice/);
    const health = (await (await fetch(`${stack.api}/healthz`)).json()) as { redis: { dataLosses: number } };
    expect(health.redis.dataLosses).toBe(1);
    const mediaHealth = (await (await fetch(`http://127.0.0.1:${stack.httpPort}/healthz`)).json()) as typeof health;
    expect(mediaHealth.redis.dataLosses).toBe(1);

    // what is gone is refused clearly: an app nobody configured (1001, as an unknown app), the channel record (404),
    // and the vanished channel's ffmpeg ends
    const gone = await stack.request('GET', '/v1/rooms', undefined, { authorization: other.authorization });
    expect(gone.body.code).toBe(1001);
    expect((await stack.request('GET', `/v1/push/${lost}`)).status).toBe(404);
    await eventually(async () => ffmpegsMentioning(lost).length === 0, 15000);
    // the app comes back when re-created
    const again = (await admin('POST', '/admin/v1/apps', { accountId: 'default', sdkAppId: other.app.sdkAppId })).body;
    expect(again.code).toBe(0);
    expect((await stack.request('GET', '/v1/rooms', undefined, { authorization: again.authorization })).body.code).toBe(
      0,
    );
    expect(again.authorization).toBe(authorizationFor(again.app));

    // a worker started after the loss reads the restored secret: its publish is the media server's
    const old = stack.procs.find((p) => p.name.startsWith('worker'))!;
    await stack.startWorker();
    await old.stop('SIGTERM');
    const r = await stack.request('POST', '/v1/push/start', {
      roomId: 1001,
      userId: 'alice',
      srcType: 0,
      option: { encode: 2 },
    });
    expect(r.body.code, JSON.stringify(r.body)).toBe(0);
    await sleep(20000);
    const ch = (await stack.request('GET', `/v1/push/${r.body.channelId}`)).body.channel;
    expect(ch.state).toBe('live');
    expect(ch.restarts).toBe(0);
    expect((await readFlv(r.body.urls[0].playUrl, { timeoutMs: 8000 })).summary.keyframe).toBe(true);
    expect(
      (await stack.request('POST', '/v1/push/stop', { channelIds: [r.body.channelId] })).body.results[0].code,
    ).toBe(0);
  });
});
