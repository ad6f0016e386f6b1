/**
 * Operating the relay as documented (README "Operators: running it"): `npm run relay` through its real wrappers.
 * SIGTERM to the npm process alone, two SIGINTs 5 ms apart, or the wrapper shell killed, each end the whole relay
 * gracefully: the live channel is `stopped` in Redis, its playlist has ENDLIST, no process of it is left. A second
 * all-in-one on the same Redis prefix refuses to start (exit 4, naming RELAY_REDIS_PREFIX) and leaves the first's
 * channel and room intact. Ingest registrations carry their media node: a starting node clears its own and gone
 * nodes' entries, never a live node's. /livez and /readyz on each process.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { freePorts } from '../../src/dev/redis.js';
import { Keys } from '../../src/redis/index.js';
import { PrefixClaim, PrefixTaken, thisInstance } from '../../src/cluster/instance.js';
import { MediaNodes } from '../../src/cluster/nodes.js';
import { RoomRegistry } from '../../src/rooms/registry.js';
import { eventually, REDIS_URL, sleep, startStack } from '../helpers/stack.js';
import { launchRelay, type RelayProcess } from '../helpers/relay-process.js';

const redis = new Redis(REDIS_URL);
const dirs: string[] = [];
const groups: number[] = [];

afterAll(async () => {
  for (const g of groups)
    try {
      process.kill(-g, 'SIGKILL');
    } catch {
      /* gone */
    }
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  redis.disconnect();
});

async function privateEnv(prefix = `o${crypto.randomBytes(4).toString('hex')}`) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-ops-'));
  dirs.push(dataDir);
  const [api, http, rtmp] = (await freePorts(3)) as [number, number, number];
  return {
    dataDir,
    prefix,
    env: {
      RELAY_API_PORT: String(api),
      RELAY_HTTP_PORT: String(http),
      RELAY_RTMP_PORT: String(rtmp),
      RELAY_DATA_DIR: dataDir,
      RELAY_REDIS_PREFIX: prefix,
      RELAY_PUBLIC_HOST: '127.0.0.1',
      RELAY_BIND: '127.0.0.1',
      RELAY_LOG_LEVEL: 'warn',
      RELAY_MIN_FREE_MB: '16',
    },
  };
}

/** Starts `cmd` (argv) in its own process group, as a terminal or a process manager would. */
function launch(cmd: string, args: string[], env: Record<string, string>): RelayProcess {
  const run = launchRelay(cmd, args, env, { detached: true });
  groups.push(run.child.pid!);
  return run;
}

/** Processes whose command line or environment mentions `text` (the relay's private data folder). */
function processesMentioning(text: string): number[] {
  const out: number[] = [];
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)))
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const env = fs.readFileSync(`/proc/${pid}/environ`, 'utf8');
      if (cmd.includes(text) || env.includes(text)) out.push(Number(pid));
    } catch {
      /* gone or not ours */
    }
  return out.filter((p) => p !== process.pid);
}

async function groupGone(pgid: number, ms: number): Promise<boolean> {
  for (let t = 0; t < ms; t += 100) {
    try {
      process.kill(-pgid, 0);
    } catch {
      return true;
    }
    await sleep(100);
  }
  return false;
}

/** Starts a live HLS channel of the sample room on a READY relay; returns its id. */
async function startChannel(ready: Record<string, string>): Promise<string> {
  const res = await fetch(`${ready.api}/v1/push/start`, {
    method: 'POST',
    headers: { authorization: ready.authorization!, 'content-type': 'application/json' },
    body: JSON.stringify({ roomId: 1001, userId: 'alice', srcType: 0, option: { encode: 1 } }),
  });
  const body = (await res.json()) as { code: number; channelId: string };
  expect(body.code, JSON.stringify(body)).toBe(0);
  return body.channelId;
}

async function expectEndedGracefully(prefix: string, dataDir: string, channelId: string): Promise<void> {
  const record = JSON.parse((await redis.get(`${prefix}:channel:${channelId}`))!) as { state: string };
  expect(record.state).toBe('stopped');
  const playlist = path.join(dataDir, 'hls', channelId, 'index.m3u8');
  expect(fs.readFileSync(playlist, 'utf8')).toMatch(/#EXT-X-ENDLIST\s*$/);
  await eventually(async () => (processesMentioning(dataDir).length === 0 ? true : null), 5000);
}

describe('npm run relay under its wrappers', () => {
  it('SIGTERM to the npm process alone ends the whole relay gracefully; a second all-in-one on its prefix refuses', async () => {
    const a = await privateEnv();
    const relay = launch('npm', ['run', 'relay'], a.env);
    const ready = await relay.ready;
    expect(ready, `exit ${await Promise.race([relay.exited, 'running'])} ${relay.output()}`).not.toBeNull();
    const channelId = await startChannel(ready!);

    const b = await privateEnv(a.prefix);
    const second = launch('npm', ['run', 'relay'], b.env);
    expect(await second.exited).toBe(4);
    expect(second.output()).toMatch(/RELAY_REDIS_PREFIX=/);
    const view = await fetch(`${ready!.api}/v1/push/${channelId}`, {
      headers: { authorization: ready!.authorization! },
    });
    expect(((await view.json()) as { state: string }).state).toBe('live');
    expect(await new RoomRegistry(redis, new Keys(a.prefix)).list('1400000001', 1001)).not.toHaveLength(0);

    process.kill(relay.child.pid!, 'SIGTERM'); // npm only, as a container runtime or a process manager sends it
    expect(await groupGone(relay.child.pid!, 20_000)).toBe(true);
    await expectEndedGracefully(a.prefix, a.dataDir, channelId);
    expect(await redis.exists(`${a.prefix}:all-in-one`)).toBe(0);
  }, 90_000);

  it('two SIGINTs 5 ms apart (Ctrl-C twice) still finish the channel: stopped, ENDLIST', async () => {
    const a = await privateEnv();
    const relay = launch('npm', ['run', 'relay'], a.env);
    const ready = await relay.ready;
    expect(ready, relay.output()).not.toBeNull();
    const channelId = await startChannel(ready!);
    process.kill(-relay.child.pid!, 'SIGINT'); // the terminal signals the whole foreground group
    await sleep(5);
    process.kill(-relay.child.pid!, 'SIGINT');
    expect(await groupGone(relay.child.pid!, 20_000)).toBe(true);
    await expectEndedGracefully(a.prefix, a.dataDir, channelId);
  }, 90_000);

  it('a wrapper shell killed without passing the signal on: the relay notices and ends gracefully', async () => {
    const a = await privateEnv();
    // `; true` keeps sh from exec-ing node: sh stays the parent, and dies of the SIGTERM without passing it on
    const relay = launch('sh', ['-c', `${process.execPath} --import tsx cmd/relay.ts; true`], a.env);
    const ready = await relay.ready;
    expect(ready, relay.output()).not.toBeNull();
    const channelId = await startChannel(ready!);
    process.kill(relay.child.pid!, 'SIGTERM');
    expect(await groupGone(relay.child.pid!, 20_000)).toBe(true);
    await expectEndedGracefully(a.prefix, a.dataDir, channelId);
  }, 90_000);
});

describe('cluster identity on one prefix', () => {
  it('one all-in-one claim per prefix; a holder on this host whose process is gone is taken over', async () => {
    const keys = new Keys(`o${crypto.randomBytes(4).toString('hex')}`);
    const first = new PrefixClaim(redis, keys, thisInstance('relay'));
    await first.acquire();
    const err = await new PrefixClaim(redis, keys, thisInstance('relay')).acquire().catch((e: Error) => e);
    expect(err).toBeInstanceOf(PrefixTaken);
    expect((err as Error).message).toContain(`RELAY_REDIS_PREFIX=${keys.prefix}`);
    await first.release();
    // a holder killed with SIGKILL: its pid is gone
    const dead = { ...thisInstance('relay'), pid: 2 ** 22 + 7, id: 'x' };
    await redis.set(keys.allInOne(), JSON.stringify(dead), 'PX', 15_000);
    const next = new PrefixClaim(redis, keys, thisInstance('relay'), (pid) => pid !== dead.pid);
    await next.acquire();
    await next.release();
    expect(await redis.exists(keys.allInOne())).toBe(0);
  });

  it("a starting media node clears its own and gone nodes' ingest entries, never a live node's", async () => {
    const keys = new Keys(`o${crypto.randomBytes(4).toString('hex')}`);
    const rooms = new RoomRegistry(redis, keys);
    const nodes = new MediaNodes(redis, keys);
    const other = new MediaNodes(redis, keys);
    await other.beat('host-b:1935', thisInstance('media'));
    const member = (userId: string, node?: string) =>
      rooms.register({
        sdkAppId: '1',
        roomId: 5,
        userId,
        srcType: 0,
        source: 'ingest',
        registeredAt: 1,
        ...(node ? { node } : {}),
      });
    await member('mine', 'host-a:1935');
    await member('theirs', 'host-b:1935');
    await member('gone', 'host-c:1935');
    await member('legacy');
    await rooms.register({
      sdkAppId: '1',
      roomId: 5,
      userId: 'ext',
      srcType: 0,
      source: 'external',
      url: 'x.mp4',
      registeredAt: 1,
    });
    const alive = await nodes.alive();
    const removed = await rooms.removeStaleIngest((u) => !u.node || u.node === 'host-a:1935' || !alive.has(u.node));
    expect(removed).toBe(3);
    expect((await rooms.list('1', 5)).map((u) => u.userId)).toEqual(['ext', 'theirs']);
    // the node that left: its entries are another node's to clear
    await other.stop('host-b:1935');
    expect((await nodes.alive()).has('host-b:1935')).toBe(false);
    await redis.del(keys.room('1', 5), keys.rooms(), keys.mediaNodes());
  });
});

describe('liveness and readiness', () => {
  it('/livez and /readyz on the API, media and worker ports; /readyz says what is missing', async () => {
    const [healthPort] = (await freePorts(1)) as [number];
    const stack = await startStack({ env: { RELAY_WORKER_HEALTH_PORT: String(healthPort) } });
    try {
      const media = `http://127.0.0.1:${stack.httpPort}`;
      const worker = `http://127.0.0.1:${healthPort}`;
      for (const base of [stack.api, media, worker]) expect((await fetch(`${base}/livez`)).status).toBe(200);
      const api = await eventually(async () => {
        const r = await fetch(`${stack.api}/readyz`);
        return r.status === 200 ? ((await r.json()) as { checks: Record<string, string> }) : null;
      }, 10_000);
      expect(api.checks).toEqual({ redis: 'ok', media: 'ok', workers: 'ok' });
      expect(((await (await fetch(`${media}/readyz`)).json()) as { checks: unknown }).checks).toEqual({
        redis: 'ok',
        rtmp: 'ok',
      });
      expect(((await (await fetch(`${worker}/readyz`)).json()) as { checks: unknown }).checks).toEqual({
        redis: 'ok',
        ffmpeg: 'ok',
        media: 'ok',
      });
      // no worker left: the API is not ready, and says why
      await stack.procs.find((p) => p.name.startsWith('worker'))!.stop();
      const res = await fetch(`${stack.api}/readyz`);
      expect(res.status).toBe(503);
      const body = (await res.json()) as { ready: boolean; checks: Record<string, string> };
      expect(body.ready).toBe(false);
      expect(body.checks.workers).toMatch(/no live worker/);
      const openapi = (await (await fetch(`${stack.api}/docs/json`)).json()) as { paths: Record<string, unknown> };
      expect(Object.keys(openapi.paths)).toEqual(expect.arrayContaining(['/livez', '/readyz']));
    } finally {
      await stack.close();
    }
  }, 90_000);
});
