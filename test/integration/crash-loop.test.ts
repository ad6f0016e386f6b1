/**
 * A poison job must not crash-loop the relay: a channel whose runs keep ending their worker (here: SIGKILL, as a crash
 * would) is failed with 6012 after RELAY_MAX_RUN_STARTS starts within the window, and no worker runs it again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, ffmpegsMentioning, fixture, sleep, startStack, type Proc, type Stack } from '../helpers/stack.js';

let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ workers: 1, env: { RELAY_MAX_RUN_STARTS: '2' } });
  await stack.publish({ roomId: 1001, userId: 'alice', srcType: 0 }, fixture('alice-camera.mp4'));
});

afterAll(async () => {
  await stack?.close();
});

const channel = async (id: string) => (await stack.request('GET', `/v1/push/${id}`)).body.channel;

describe('a channel whose runs kill their worker', () => {
  it('is failed with 6012 (crash loop) after RELAY_MAX_RUN_STARTS starts, and a new worker does not run it', async () => {
    const r = await stack.request('POST', '/v1/push/start', {
      roomId: 1001,
      userId: 'alice',
      srcType: 0,
      option: { encode: 2 },
    });
    expect(r.body.code).toBe(0);
    const id = r.body.channelId as string;
    let worker = stack.procs.find((p) => p.name.startsWith('worker'))!;
    // runs 1 and 2 are started and killed; the third start fails the channel instead of running it
    for (let run = 1; run <= 2; run++) {
      const ch = await eventually(async () => {
        const c = await channel(id);
        return c.state === 'live' && c.worker?.endsWith(`:${worker.child.pid}`) ? c : null;
      }, 20000);
      expect(ch.state).toBe('live');
      await worker.stop('SIGKILL');
      worker = await stack.startWorker();
    }
    const failed = await eventually(async () => {
      const c = await channel(id);
      return c.state === 'failed' ? c : null;
    }, 20000);
    expect(failed.error.code).toBe(6012);
    expect(failed.error.message).toMatch(/crash loop: the channel's run was started 3 times/);
    const extra: Proc = await stack.startWorker();
    await sleep(3000);
    expect((await channel(id)).state).toBe('failed');
    expect(ffmpegsMentioning(id)).toHaveLength(0);
    expect(extra.child.exitCode).toBeNull();
  });
});
