import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RelayApiError, RelayClient } from '../../src/client/index.js';
import { freePort } from '../../src/dev/redis.js';
import { readFlv } from '../helpers/media.js';
import { fixture, sleep, startStack, type Stack } from '../helpers/stack.js';

let stack: Stack;
let client: RelayClient;

beforeAll(async () => {
  stack = await startStack({ env: { RELAY_START_RATE_LIMIT_MS: '0' } });
  await stack.publish({ roomId: 1001, userId: 'alice', srcType: 0 }, fixture('alice-camera.mp4'));
  client = new RelayClient({ baseUrl: stack.api, sdkAppId: stack.sdkAppId, secretKey: stack.secretKey });
});

afterAll(async () => {
  await stack?.close();
});

/** Runs the CLI; resolves with its exit code and output. `onLine` sees stdout lines as they come. */
function cli(
  args: string[],
  env: Record<string, string> = {},
  onLine?: (l: string) => void,
): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.resolve('src/cli/relay.ts'), ...args], {
      env: {
        ...process.env,
        RELAY_API_URL: stack.api,
        RELAY_SDK_APP_ID: stack.sdkAppId,
        RELAY_SECRET_KEY: stack.secretKey,
        ...env,
      },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d;
      for (const l of d.toString().split('\n')) if (l) onLine?.(l);
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d;
    });
    child.on('close', (code) => resolve({ code: code ?? -1, out, err }));
  });
}

describe('RelayClient', () => {
  it('mirrors the SDK: startPushStream (encode defaults to RTMP), channel status, stopPushStream', async () => {
    const res = await client.startPushStream({ roomId: 1001, userId: 'alice', srcType: 0 }, { channelName: 'sdk' });
    expect(res.urls.map((u) => u.type)).toEqual([5]);
    const ch = await client.getChannel(res.channelId);
    expect(ch.state).toBe('live');
    expect(ch.option.channelName).toBe('sdk');
    expect(await client.stopPushStream([res.channelId])).toEqual([
      { channelId: res.channelId, code: 0, message: 'stopped' },
    ]);
    expect((await client.stopPushStream([res.channelId]))[0]!.code).toBe(40000412);
    expect(await client.listRooms()).toContain(1001);
  });

  it('rejects with a typed error carrying the SPEC code, message and hint', async () => {
    const err = await client.startPushStream({ roomId: 424242, userId: 'ghost', srcType: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RelayApiError);
    expect(err).toMatchObject({ code: 40000410, status: 404 });
    expect((err as RelayApiError).hint).toMatch(/room/);
    const bad = new RelayClient({ baseUrl: stack.api, sdkAppId: stack.sdkAppId, secretKey: 'wrong' });
    await expect(bad.listRooms()).rejects.toMatchObject({ code: 1001 });
  });
});

describe('the CLI', () => {
  it('starts, follows and stops a push; exit codes mean something', async () => {
    const start = await cli(['push', 'start', '--room', '1001', '--user', 'alice', '--encode', '2', '--json']);
    expect(start.code, start.err).toBe(0);
    const { channelId, urls } = JSON.parse(start.out) as { channelId: string; urls: { playUrl: string }[] };
    const viewer = await readFlv(urls[0]!.playUrl, { keepOpen: true });
    const lines: string[] = [];
    const follow = cli(['push', 'status', channelId, '--follow'], {}, (l) => lines.push(l));
    while (!lines.some((l) => /live\s+fps\s+[1-9]/.test(l) && /viewers 1/.test(l))) await sleep(200);
    viewer.destroy();
    const stop = await cli(['push', 'stop', channelId]);
    expect(stop.code).toBe(0);
    expect(stop.out).toMatch(new RegExp(`${channelId}\\s+0\\s+stopped`));
    const followed = await follow;
    expect(followed.code).toBe(0);
    expect(lines.at(-1)).toMatch(/stopped/);
    expect(lines.some((l) => /bitrate\s+\d+ kbit\/s/.test(l))).toBe(true);

    expect((await cli(['push', 'stop', channelId])).code).toBe(1);
    expect((await cli(['push', 'start', '--room', '1001'])).code).toBe(2);
    expect((await cli(['frobnicate'])).code).toBe(2);
    expect((await cli(['rooms'], { RELAY_API_URL: `http://127.0.0.1:${await freePort()}` })).code).toBe(3);
    const rooms = await cli(['rooms', '1001']);
    expect(rooms.out).toMatch(/^userId\s+srcTypeName\s+source/);
  });
});
