import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, fixture, startStack, type Stack } from '../helpers/stack.js';

let stack: Stack;

beforeAll(async () => {
  // a worker that may fill 0.4 cores: one 900 tier (0.34) and a copy (0.0125) fit, a second 900 does not
  stack = await startStack({ env: { RELAY_WORKER_CAPACITY: '0.4', RELAY_START_RATE_LIMIT_MS: '0' } });
  for (const u of ['a', 'b', 'c'])
    await stack.publish({ roomId: 1001, userId: u, srcType: 0 }, fixture('bob-camera.mp4'));
});

afterAll(async () => {
  await stack?.close();
});

const start = (userId: string, option: Record<string, unknown>) =>
  stack.request('POST', '/v1/push/start', { roomId: 1001, userId, srcType: 0, option });

describe('CPU-cost admission', () => {
  it("takes channels while their costs fit the worker's capacity, refuses the next with 50005 and a hint, and shows the capacity in use", async () => {
    const hd = await start('a', { encode: 2, rateType: 20 });
    expect(hd.body.code).toBe(0);
    expect((await stack.request('GET', `/v1/push/${hd.body.channelId}`)).body.channel.cost).toBe(0.34);
    await eventually(
      async () =>
        (await stack.request('GET', '/admin/v1/workers', undefined, { authorization: stack.adminAuth })).body.workers[0]
          ?.load === 0.34,
    );
    const second = await start('b', { encode: 2, rateType: 20 });
    expect(second.status).toBe(503);
    expect(second.body).toMatchObject({
      code: 50005,
      cost: 0.34,
      message: expect.stringMatching(/no worker has room/),
    });
    expect(second.body.hint).toMatch(/retry/);
    const copy = await start('c', { encode: 2 });
    expect(copy.body.code).toBe(0);
    const metrics = await (await fetch(`${stack.api}/metrics`, { headers: { authorization: stack.adminAuth } })).text();
    expect(metrics).toMatch(/relay_worker_load_cores\{worker="[^"]+"\} 0\.35\d*/);
    expect(metrics).toMatch(/relay_worker_capacity\{worker="[^"]+"\} 0\.4\n/);
    await stack.request('POST', '/v1/push/stop', { channelIds: [hd.body.channelId] });
    const now = await eventually(
      async () => {
        const r = await start('b', { encode: 2, rateType: 20 });
        return r.body.code === 0 ? r : null;
      },
      10000,
      500,
    );
    await stack.request('POST', '/v1/push/stop', { channelIds: [now.body.channelId, copy.body.channelId] });
  });

  it('with no worker running, a start is refused at once with 50005', async () => {
    for (const p of stack.procs.filter((x) => x.name.startsWith('worker'))) await p.stop('SIGTERM');
    const t0 = Date.now();
    const r = await start('a', { encode: 2 });
    expect(r.body).toMatchObject({ code: 50005, message: 'no worker is running' });
    expect(Date.now() - t0).toBeLessThan(3000);
    // the workers' SIGTERM hands their channels over first (ffmpeg closes its files): seconds, outside the timing above
  }, 30_000);
});
