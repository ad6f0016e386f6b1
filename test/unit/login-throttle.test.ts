import { Registry } from 'prom-client';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApi, type Api } from '../../src/api/app.js';
import { CredentialThrottle, type ThrottleLimit } from '../../src/auth/throttle.js';
import { loadConfig } from '../../src/config/index.js';
import { RelayError } from '../../src/errors/index.js';
import { fakeApiDeps, FAKE_APP } from '../fakes/index.js';

/**
 * Failed credential attempts are throttled per client address and per sdkAppId (small limits here: 3 per address,
 * 5 per app), successful ones are never counted, and an address that knows an app's key passes that app's block.
 */
const limit = (failures: number): ThrottleLimit => ({ failures, windowSeconds: 60, blockSeconds: 60 });
const ADMIN_TOKEN = 'admin-token-0123456789';
const basic = (user: string, password: string) => 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');
const GOOD = basic(FAKE_APP.sdkAppId, FAKE_APP.secretKey);
const WRONG = basic(FAKE_APP.sdkAppId, 'not-the-key');

let api: Api;
afterEach(async () => {
  await api?.close();
});

function build(): Api {
  api = buildApi({
    ...fakeApiDeps(),
    config: loadConfig({ RELAY_FILE_UPSTREAM_DIR: '/tmp/fixtures', RELAY_ADMIN_TOKEN: ADMIN_TOKEN }),
    metrics: new Registry(),
    throttle: new CredentialThrottle({ address: limit(3), app: limit(5) }),
  });
  return api;
}

async function call(authorization: string | undefined, address = '198.51.100.7', url = '/v1/rooms') {
  const res = await api.inject({
    method: 'GET',
    url,
    remoteAddress: address,
    headers: authorization ? { authorization } : {},
  });
  return {
    status: res.statusCode,
    body: (String(res.headers['content-type']).includes('json') ? res.json() : {}) as Record<string, unknown>,
    retryAfter: res.headers['retry-after'],
  };
}

describe('throttling failed credentials', () => {
  it('an address past its failures is refused with 429, code, message, hint and Retry-After; others are not', async () => {
    build();
    for (let i = 0; i < 10; i++) expect((await call(GOOD)).status).toBe(200); // successes are never counted
    for (let i = 0; i < 3; i++) expect((await call(WRONG)).status).toBe(401);
    expect((await call(WRONG)).status).toBe(401); // the attempt that reaches the limit is still answered
    const refused = await call(WRONG);
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({
      code: 1001,
      message: expect.stringMatching(/too many failed credential attempts from this address: retry in \d+ s/),
      hint: expect.stringContaining('Retry-After'),
      retryAfterMs: expect.any(Number),
    });
    expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(59);
    // blocked before the credentials are looked at: the right key from that address waits too
    expect((await call(GOOD)).status).toBe(429);
    // another address, and requests that present no credential at all, are not affected
    expect((await call(GOOD, '203.0.113.9')).status).toBe(200);
    expect((await call(undefined, '203.0.113.10')).status).toBe(401);
  });

  it('requests without an Authorization header are neither counted nor refused with 429', async () => {
    build();
    for (let i = 0; i < 8; i++) expect((await call(undefined)).status).toBe(401);
    expect((await call(GOOD)).status).toBe(200);
  });

  it('an sdkAppId guessed at from many addresses is blocked, except from an address that presented its key', async () => {
    build();
    expect((await call(GOOD, '192.0.2.1')).status).toBe(200); // a working client of the app
    for (let i = 0; i < 6; i++) expect((await call(WRONG, `198.51.100.${i + 1}`)).status).toBe(401);
    const fresh = await call(GOOD, '198.51.100.99');
    expect(fresh.status).toBe(429);
    expect(fresh.body.message).toMatch(/for this sdkAppId/);
    expect((await call(GOOD, '192.0.2.1')).status).toBe(200);
    expect((await call(basic('1400000002', 'x'), '198.51.100.99')).status).toBe(401); // other apps are not affected
  });

  it('an unknown sdkAppId is counted and blocked like a known one: the throttle tells nothing about which exist', async () => {
    build();
    const answers = async (user: string) => {
      const out: number[] = [];
      for (let i = 0; i < 7; i++) out.push((await call(basic(user, 'guess'), `198.51.100.${i + 1}`)).status);
      return out;
    };
    expect(await answers('999999')).toEqual(await answers(FAKE_APP.sdkAppId));
  });

  it('wrong admin tokens (here at /metrics) are throttled per address', async () => {
    build();
    for (let i = 0; i < 4; i++)
      expect((await call('Bearer wrong-admin-token', undefined, '/metrics')).status).toBe(401);
    expect((await call('Bearer wrong-admin-token', undefined, '/metrics')).status).toBe(429);
    expect((await call(`Bearer ${ADMIN_TOKEN}`, undefined, '/metrics')).status).toBe(429);
    expect((await call(`Bearer ${ADMIN_TOKEN}`, '203.0.113.9', '/metrics')).status).toBe(200);
  });
});

describe('the throttle without Redis', () => {
  const clients: Redis[] = [];
  afterEach(() => {
    for (const c of clients.splice(0)) c.disconnect();
  });

  it('counts in memory while Redis does not answer (fail-open to a per-process count, never an error)', async () => {
    // a closed port and no offline queue: every command fails at once, as with the relay's fail-fast clients
    const dead = new Redis('redis://127.0.0.1:1', {
      enableOfflineQueue: false,
      lazyConnect: true,
      retryStrategy: () => null,
    });
    dead.on('error', () => undefined);
    clients.push(dead);
    const t = new CredentialThrottle({ redis: dead, prefix: 'tdead', address: limit(2) });
    const attempt = (key: string) =>
      t.guard({ address: '198.51.100.1' }, `Bearer ${key}`, () => {
        if (key !== 'right') throw new RelayError(1001, 'wrong');
        return 'ok';
      });
    expect(await attempt('right')).toBe('ok');
    for (let i = 0; i < 3; i++) await expect(attempt('wrong')).rejects.toMatchObject({ status: 401 });
    await expect(attempt('right')).rejects.toMatchObject({ code: 1001, status: 429 });
  });
});
