import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from '../helpers/stack.js';

/**
 * Failed credential attempts are counted in Redis per client address and per sdkAppId, so every relay process sees
 * the same counts: failures at the API block that address at the media server's /metrics too.
 */
let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ workers: 0 });
});

afterAll(async () => {
  await stack?.close();
});

const wrong = 'Basic ' + Buffer.from('1400000001:not-the-key').toString('base64');

describe('failed logins', () => {
  it('are throttled per address after 30 failures, across the API and the media server, with Retry-After', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 31; i++)
      statuses.push((await stack.request('GET', '/v1/rooms', undefined, { authorization: wrong })).status);
    expect(statuses).toEqual(Array(31).fill(401));
    const res = await fetch(`${stack.api}/v1/rooms`, { headers: { authorization: wrong } });
    expect(res.status).toBe(429);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(500);
    expect(await res.json()).toMatchObject({
      code: 1001,
      message: expect.stringMatching(/too many failed credential attempts from this address/),
      hint: expect.any(String),
      retryAfterMs: expect.any(Number),
    });
    // the right key from the blocked address waits too, at the API and at the media server's /metrics
    expect((await stack.request('GET', '/v1/rooms')).status).toBe(429);
    const media = await fetch(`http://127.0.0.1:${stack.httpPort}/metrics`, {
      headers: { authorization: stack.adminAuth },
    });
    expect(media.status).toBe(429);
    expect(media.headers.get('retry-after')).toBeTruthy();
    // the counts live in Redis under the deployment's prefix: an operator lifts a block by deleting them
    const keys = await stack.redis.keys(`${stack.prefix}:authfail:*`);
    expect(keys.some((k) => k.includes('addr'))).toBe(true);
    expect(keys.some((k) => k.includes('1400000001'))).toBe(true);
    await stack.redis.del(...keys);
    expect((await stack.request('GET', '/v1/rooms')).status).toBe(200);
  });
});
