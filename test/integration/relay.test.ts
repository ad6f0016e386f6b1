import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, freePorts } from '../../src/dev/redis.js';
import { readFlv } from '../helpers/media.js';
import { launchRelay } from '../helpers/relay-process.js';
import { eventually, ffmpegsMentioning, portAccepts, REDIS_URL } from '../helpers/stack.js';

/** Runs cmd/relay.ts like `npm run relay` does (tied to this process's life); READY or exit. */
function runRelay(env: Record<string, string>) {
  return launchRelay(
    '/usr/bin/setpriv',
    ['--pdeathsig', 'SIGKILL', '--', process.execPath, '--import', 'tsx', 'cmd/relay.ts'],
    { RELAY_LOG_LEVEL: 'warn', ...env },
  );
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

async function privateEnv() {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-run-'));
  dirs.push(dataDir);
  const [api, http, rtmp] = (await freePorts(3)) as [number, number, number];
  const ports = { api, http, rtmp };
  return {
    dataDir,
    ports,
    env: {
      RELAY_API_PORT: String(ports.api),
      RELAY_HTTP_PORT: String(ports.http),
      RELAY_RTMP_PORT: String(ports.rtmp),
      RELAY_DATA_DIR: dataDir,
      RELAY_REDIS_PREFIX: `r${crypto.randomBytes(4).toString('hex')}`,
      RELAY_PUBLIC_HOST: '127.0.0.1',
    },
  };
}

describe('npm run relay', () => {
  it('prints READY with api, sdkAppId, authorization, ingest and the sample upstreams; the printed credentials start a push; SIGTERM ends its channels and leaves no ffmpeg and no port', async () => {
    const { env, dataDir, ports } = await privateEnv();
    const run = runRelay({ ...env, REDIS_URL });
    let channelId = '';
    let mediaNodes: { rtmpPort: number; httpPort: number }[] = [];
    try {
      const ready = await run.ready;
      expect(ready, run.output()).toBeTruthy();
      expect(ready!.api).toBe(`http://127.0.0.1:${ports.api}`);
      expect(ready!.sdkAppId).toBe('1400000001');
      expect(ready!.authorization).toMatch(/^Basic /);
      expect(ready!.ingest).toContain(`rtmp://127.0.0.1:${ports.rtmp}/ingest/`);
      // one media node per core, on consecutive ports (README "Scaling out")
      mediaNodes = ready!.mediaNodes;
      expect(mediaNodes).toEqual(
        Array.from({ length: os.availableParallelism() }, (_, i) => ({
          rtmpPort: ports.rtmp + i,
          httpPort: ports.http + i,
        })),
      );
      expect(ready!.upstreams).toEqual([
        { roomId: 1001, userId: 'alice', srcType: 0 },
        { roomId: 1001, userId: 'bob', srcType: 0 },
        { roomId: 1001, userId: 'bob', srcType: 1 },
      ]);
      await eventually(async () => /curl -s -X POST/.test(run.output()), 3000);
      const res = await fetch(`${ready!.api}/v1/push/start`, {
        method: 'POST',
        headers: { authorization: ready!.authorization, 'content-type': 'application/json' },
        body: JSON.stringify({ roomId: 1001, userId: 'bob', srcType: 1, option: { encode: 2 } }),
      });
      const body = (await res.json()) as { code: number; channelId: string; urls: { playUrl: string }[] };
      channelId = body.channelId;
      expect(body.code).toBe(0);
      expect((await readFlv(body.urls[0]!.playUrl)).summary.keyframe).toBe(true);
      expect(ffmpegsMentioning(dataDir).length + ffmpegsMentioning(`:${ports.rtmp}/`).length).toBeGreaterThan(0);
    } finally {
      run.child.kill('SIGTERM');
      expect(await run.exited).toBe(0);
    }
    await eventually(
      async () => ffmpegsMentioning(`:${ports.rtmp}/`).length === 0 && ffmpegsMentioning(dataDir).length === 0,
      5000,
    );
    for (const p of Object.values(ports)) expect(await portAccepts(p), `port ${p}`).toBe(false);
    for (const n of mediaNodes) for (const p of [n.rtmpPort, n.httpPort]) expect(await portAccepts(p)).toBe(false);
    const r = new Redis(REDIS_URL);
    // the whole relay went down: its channels ended rather than waiting for a worker that will not come
    const record = JSON.parse((await r.get(`${env.RELAY_REDIS_PREFIX}:channel:${channelId}`)) ?? '{}') as {
      state?: string;
      history?: { reason: string }[];
    };
    expect(record.state).toBe('stopped');
    expect(record.history?.map((h) => h.reason)).toContain('the relay shut down');
    await r.del(...(await r.keys(`${env.RELAY_REDIS_PREFIX}:*`)), 'nothing');
    r.disconnect();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('starts a private Redis when none answers at REDIS_URL, and stops it on SIGTERM', async () => {
    const { env, dataDir } = await privateEnv();
    const run = runRelay({ ...env, REDIS_URL: `redis://127.0.0.1:${await freePort()}` });
    const ready = await run.ready;
    expect(ready, run.output()).toBeTruthy();
    const m = /started a private one at redis:\/\/127\.0\.0\.1:(\d+)/.exec(run.output());
    expect(m, run.output()).toBeTruthy();
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    expect(await portAccepts(Number(m![1]))).toBe(false);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('exits with a clear message when there is no Redis and no redis-server to start', async () => {
    const { env, dataDir } = await privateEnv();
    const run = runRelay({ ...env, REDIS_URL: `redis://127.0.0.1:${await freePort()}`, PATH: '/nonexistent' });
    expect(await run.exited).toBe(3);
    expect(run.output()).toMatch(/Redis does not answer.*apt-get install -y redis-server/s);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('invalid configuration stops start-up with a message naming the variable', async () => {
    const run = runRelay({ RELAY_HTTP_PORT: 'http' });
    expect(await run.exited).toBe(2);
    expect(run.output()).toMatch(/RELAY_HTTP_PORT must be an integer/);
  });
});
